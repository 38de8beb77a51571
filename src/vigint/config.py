"""Settings: one immutable object, built once at start.

Layers, later ones winning: the defaults embedded here, then ``config.ini`` (``--config``, ``VIGINT_CONFIG``
or ``./config.ini`` when present), then ``VIGINT_<SECTION>_<KEY>`` environment variables, then
command-line flags. Every setting is declared once, below, with its default and the reason for it;
``config.example.ini`` is the same list for operators.
"""

import configparser
import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from vigint.errors import ConfigError

# Customer-side and bootstrap variables that share the VIGINT_ prefix but are not settings.
NON_SETTING_VARIABLES = frozenset({"VIGINT_API_KEY", "VIGINT_SERVER_URL", "VIGINT_CONFIG", "VIGINT_DB"})
DEFAULT_CONFIG_FILE = Path("config.ini")
# Settings that once existed: a config file that still sets one starts, with a warning, rather than fail.
RETIRED = {("buffers", "short_buffer_seconds"): "analysis keeps no decoded frames beyond its motion background"}

log = logging.getLogger(__name__)


def setting(default, doc: str, *, minimum: float | None = None, maximum: float | None = None,
            choices: tuple[str, ...] | None = None, secret: bool = False):
    """Declare one setting: its default, a one-line reason for that default, its allowed values.

    A `secret` setting (password, API key) never appears in a repr, so never in a log line.
    """
    return field(default=default, repr=not secret,
                 metadata={"doc": doc, "minimum": minimum, "maximum": maximum, "choices": choices})


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the SQLite database lives."""

    path: Path = setting(Path("vigint.db"), "SQLite file with clients, key hashes, usage and incidents; "
                         "relative paths start from the working directory")


@dataclass(frozen=True)
class ServerSettings:
    """How `vigint serve` listens and treats connections."""

    host: str = setting("127.0.0.1", "address to listen on; 0.0.0.0 accepts agents from other hosts "
                        "(the safe default serves this machine only)")
    port: int = setting(5002, "TCP port for WebSocket streams and HTTP (/healthz, /metrics)",
                        minimum=0, maximum=65535)
    tls_cert: Path | None = setting(None, "PEM certificate chain; with tls_key, serves wss:// "
                                    "(`vigint cert` makes a self-signed pair)")
    tls_key: Path | None = setting(None, "PEM private key for tls_cert")
    auth_timeout_seconds: float = setting(5.0, "a connection must say hello within this time: agents do at "
                                          "once, so a silent connection is only holding a socket", minimum=0.1)
    max_streams_per_client: int = setting(16, "cameras one client may stream at once: a shop has a few, "
                                          "16 leaves room while stopping a leaked key from eating the server",
                                          minimum=1)
    max_auth_failures: int = setting(10, "refused keys and malformed hellos from one address within "
                                     "auth_failure_window_seconds before its wrong keys get 4429 (a valid key "
                                     "is still welcomed): enough for a customer's typos, too few to guess keys",
                                     minimum=1)
    auth_failure_window_seconds: float = setting(60.0, "the window over which failed hellos are counted, "
                                                 "and so how long a blocked address waits", minimum=1)
    revocation_check_seconds: float = setting(0.25, "how often the database is polled for revoked or "
                                              "expired keys; revocation must reach open streams within 1 s",
                                              minimum=0.05, maximum=1)
    usage_flush_seconds: float = setting(5.0, "how often usage counters and last-seen times are written: "
                                         "batched, never a write per frame", minimum=0.1)
    decode_threads: int = setting(0, "worker threads decoding video; 0 means one per CPU core", minimum=0)
    max_bad_packets: int = setting(150, "consecutive undecodable media messages before a stream is closed "
                                   "with 4415 (about 10 s of a 15 fps camera)", minimum=1)
    decode_batch_seconds: float = setting(0.2, "packets are handed to the decoder threads in batches this "
                                          "long: fewer hand-offs, less CPU; analysis needs no faster", minimum=0,
                                          maximum=1)
    max_decode_backlog: int = setting(60, "packets waiting for the decoder before analysis skips ahead to "
                                      "the next keyframe, so an overloaded server stays real-time", minimum=1)
    max_decode_backlog_bytes: int = setting(8388608, "encoded video waiting for the decoder (8 MiB) before "
                                            "analysis skips ahead: bounds memory whatever the message sizes; "
                                            "the packet buffer holds the same packets", minimum=1048576)
    shutdown_timeout_seconds: float = setting(5.0, "how long a graceful shutdown waits for streams and "
                                              "incidents in progress before cancelling them", minimum=0.1)
    max_pending_hellos: int = setting(256, "connections not yet authenticated, server-wide; past it the oldest "
                                      "is closed: agents say hello at once, so only idle sockets are lost, and "
                                      "the file descriptors left serve authenticated streams", minimum=1)
    max_pending_hellos_per_address: int = setting(32, "connections not yet authenticated from one address; past "
                                                  "it new ones are closed at once: a shop's cameras reconnecting "
                                                  "together fit, one host cannot hold the whole allowance",
                                                  minimum=1)
    max_picture_width: int = setting(3840, "widest picture a stream's SPS may declare (4K UHD); a larger one is "
                                     "closed with 4415 before it reaches the decoder. A 4K stream's decoder holds "
                                     "about 260 MiB (720p: 12 MiB): 1920 and 1080 suit a fleet without 4K cameras",
                                     minimum=16, maximum=16384)
    max_picture_height: int = setting(2160, "tallest picture a stream's SPS may declare (4K UHD)", minimum=16,
                                      maximum=16384)
    max_macroblocks: int = setting(36864, "16x16 macroblocks per picture (4096x2304, H.264 level 5.1): bounds "
                                   "decoder memory whatever the picture's shape", minimum=1)
    max_nal_units: int = setting(256, "NAL units in one access unit: one slice per macroblock row of a 4K "
                                 "picture is 135, plus parameter sets and SEI; a million empty ones is an attack",
                                 minimum=8)


@dataclass(frozen=True)
class BufferSettings:
    """What each stream keeps in memory."""

    long_buffer_seconds: float = setting(10.0, "encoded video kept per stream for clips: pre-roll plus "
                                         "margin, about 2.5 MB at 720p 2 Mbps", minimum=1)
    analysis_width: int = setting(320, "longer side frames are scaled to for analysis (the width of a landscape "
                                  "camera): enough to see a person, small enough to cost 0.1-0.6 ms a frame", minimum=32, maximum=3840)
    analysis_fps: float = setting(5.0, "frames per second analysed: motion is visible at 5 fps and it "
                                  "costs a third of 15", minimum=0.5, maximum=60)
    max_packet_buffer_bytes: int = setting(8388608, "memory cap on one stream's encoded video (8 MiB): 10 s "
                                           "up to about 6 Mbps; a higher bitrate keeps a shorter span. With the "
                                           "720p decoder (12 MB) it keeps a stream within 24 MiB whatever it sends",
                                           minimum=1048576)


@dataclass(frozen=True)
class StorageSettings:
    """Where files live."""

    data_dir: Path = setting(Path("vigint-data"), "clips go to data_dir/clips/<client>/<incident>.mp4; "
                             "relative paths start from the working directory")
    min_free_mb: int = setting(500, "clips stop being written while the disk has less free space than this, "
                               "so the database and the system keep room", minimum=0)
    retention_days: float = setting(30.0, "clips and incidents older than this are deleted", minimum=0.01)


@dataclass(frozen=True)
class MotionSettings:
    """The built-in motion detector and what makes an incident."""

    threshold: float = setting(25.0, "gray levels a pixel must change by: above sensor noise, below a person",
                               minimum=1, maximum=255)
    sensitivity: float = setting(1.0, "scales the threshold: 2 sees fainter changes, 0.5 only strong ones",
                                 minimum=0.1, maximum=10)
    min_cells: int = setting(2, "grid cells (of 16x16 analysed pixels) that must change at once; one cell is "
                             "too easily an insect or noise", minimum=1)
    max_area_fraction: float = setting(0.5, "a change over more of the picture than this is lighting "
                                       "(lights, auto-exposure), not motion", minimum=0.05, maximum=1)
    min_motion_seconds: float = setting(1.0, "motion must last this long to be an incident: a passing "
                                        "shadow is not", minimum=0)
    cooldown_seconds: float = setting(60.0, "motion again within this time extends the open incident "
                                      "instead of opening another", minimum=1)
    pre_roll_seconds: float = setting(5.0, "video kept in a clip before the motion started", minimum=0)
    post_roll_seconds: float = setting(5.0, "video kept in a clip after the motion stopped; a clip also "
                                       "ends when the packet buffer would lose its start", minimum=0)


@dataclass(frozen=True)
class AlertSettings:
    """How customers are told about incidents."""

    language: str = setting("en", "language of alert emails", choices=("en", "fr"))
    public_url: str = setting("", "base of clip links in alerts, e.g. https://vigint.example.com:5002; "
                              "empty: this server's own address")
    link_ttl_hours: float = setting(168.0, "how long a clip link works: a week to look at it, not forever",
                                    minimum=0.01)
    link_secret: str = setting("", "HMAC key signing clip links; empty: one is generated and kept in "
                               "data_dir/link-secret", secret=True)
    webhook_url: str = setting("", "optional: every incident is also POSTed here as JSON")
    webhook_secret: str = setting("", "HMAC-SHA256 key for the X-Vigint-Signature header of webhooks",
                                  secret=True)
    retry_seconds: float = setting(10.0, "first retry delay of an undelivered alert; doubles each time",
                                   minimum=0.1)
    max_retry_seconds: float = setting(3600.0, "longest wait between two delivery attempts", minimum=1)
    camera_down_minutes: float = setting(10.0, "a camera that streamed and has been gone this long is reported "
                                         "down to its client, once; its return is reported too", minimum=0.01)
    operator_email: str = setting("", "where unusual-usage flags (leaked keys, spikes, hello floods) are emailed")
    max_addresses_per_key: int = setting(2, "a key streaming from more addresses at once than this is flagged: "
                                         "one site has one address, a second site should get its own key",
                                         minimum=1)
    usage_spike_factor: float = setting(5.0, "a key receiving this many times its trailing 7-day hourly "
                                        "average within the last hour is flagged", minimum=1)
    usage_spike_min_mb: float = setting(500.0, "spikes below this many MB an hour are never flagged (new keys, "
                                        "small cameras)", minimum=0)
    monitor_seconds: float = setting(30.0, "how often cameras down and unusual usage are checked", minimum=0.05)


@dataclass(frozen=True)
class EmailSettings:
    """The SMTP server that sends alert emails."""

    smtp_host: str = setting("", "SMTP server; empty: alerts are recorded and webhooks sent, but no email")
    smtp_port: int = setting(587, "587 for STARTTLS, 465 for SSL, 25 without encryption", minimum=1,
                             maximum=65535)
    security: str = setting("starttls", "how the SMTP connection is encrypted",
                            choices=("starttls", "ssl", "none"))
    username: str = setting("", "SMTP login; empty: no authentication")
    password: str = setting("", "SMTP password", secret=True)
    sender: str = setting("vigint@localhost", "the From address of alert emails")
    timeout_seconds: float = setting(30.0, "an SMTP exchange taking longer is retried later", minimum=1)
    capture_dir: Path | None = setting(None, "write alert emails as .eml files in this folder instead of "
                                       "sending them (trials, `vigint demo`); empty: send through smtp_host")


@dataclass(frozen=True)
class AiSettings:
    """Optional verification of motion by a vision model."""

    provider: str = setting("none", "none: every motion event is an incident; openai: any OpenAI-compatible "
                            "chat-completions endpoint; gemini: Google's generateContent",
                            choices=("none", "openai", "gemini"))
    url: str = setting("", "the endpoint's base URL, e.g. https://api.openai.com/v1 or "
                       "https://generativelanguage.googleapis.com")
    api_key: str = setting("", "the endpoint's API key", secret=True)
    model: str = setting("", "the model name, e.g. gpt-4o-mini or gemini-2.0-flash")
    frames: int = setting(3, "JPEG frames from the event sent per check: enough to see what moved",
                          minimum=1, maximum=10)
    timeout_seconds: float = setting(20.0, "a check taking longer counts as unreachable", minimum=1)
    max_concurrent: int = setting(4, "checks in flight at once, server-wide", minimum=1)
    max_calls_per_client_per_hour: int = setting(60, "beyond this a client's events are treated as "
                                                 "unreachable: caps the bill of a camera facing a busy street",
                                                 minimum=1)
    when_unreachable: str = setting("motion", "if the AI cannot answer: motion = alert as a motion incident; "
                                    "record = keep the incident without alerting",
                                    choices=("motion", "record"))


@dataclass(frozen=True)
class BillingSettings:
    """The price table and seller details of invoices. Amounts are decimal, never floats."""

    currency: str = setting("EUR", "ISO 4217 code printed on invoices")
    vat_rate: Decimal = setting(Decimal("0.20"), "VAT as a fraction of the subtotal (0.20 = 20 %)")
    price_per_camera_hour: Decimal = setting(Decimal("0.01"), "per hour one camera streamed")
    price_per_gb: Decimal = setting(Decimal("0.05"), "per gigabyte (10^9 bytes) of video received")
    price_per_ai_call: Decimal = setting(Decimal("0.002"), "per AI verification")
    price_per_1k_tokens: Decimal = setting(Decimal("0.001"), "per thousand AI tokens")
    price_per_alert: Decimal = setting(Decimal("0.01"), "per alert delivered (email or webhook)")
    seller_name: str = setting("Vigint operator", "who issues the invoices")
    seller_address: str = setting("", "the seller's postal address, on one line")
    seller_vat_id: str = setting("", "the seller's VAT number, if any")


Rectangle = tuple[float, float, float, float]  # x, y, width, height as fractions of the picture
CAMERA_SECTION = re.compile(r"camera (\d+)/(.+)")


@dataclass(frozen=True)
class CameraSettings:
    """One camera's own motion tuning: a `[camera CLIENT_ID/NAME]` section of config.ini."""

    client_id: int
    camera: str
    sensitivity: float = 1.0
    masks: tuple[Rectangle, ...] = ()  # regions ignored by motion detection (a road, a flag, a TV)


@dataclass(frozen=True)
class Settings:
    """All settings, by section. Build it with `load_settings`."""

    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    buffers: BufferSettings = BufferSettings()
    storage: StorageSettings = StorageSettings()
    motion: MotionSettings = MotionSettings()
    alerts: AlertSettings = AlertSettings()
    email: EmailSettings = EmailSettings()
    ai: AiSettings = AiSettings()
    billing: BillingSettings = BillingSettings()
    cameras: tuple[CameraSettings, ...] = ()
    # The config file that was read, if any: shown at start so operators know which one is in force.
    source: Path | None = None

    def camera(self, client_id: int, name: str) -> CameraSettings:
        """Return a camera's own tuning, or the [motion] defaults for it."""
        for camera in self.cameras:
            if (camera.client_id, camera.camera) == (client_id, name):
                return camera
        return CameraSettings(client_id, name, self.motion.sensitivity)


def sections() -> dict[str, type]:
    """Return each section's name and its dataclass, in declaration order."""
    return {f.name: f.type for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(f.type)}


def _field_types(section_type: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(section_type)}


def _parse(raw: str, f: dataclasses.Field):
    """Convert one raw text value to the field's type, checking its range; raise ValueError with why."""
    kind = f.type
    text = raw.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{raw!r} is not a yes/no value")
    if kind is Path:
        if not text:
            raise ValueError("a path is required")
        return Path(text).expanduser()
    if kind == Path | None:
        return Path(text).expanduser() if text else None
    if kind is str:
        choices = f.metadata["choices"]
        if choices and text not in choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
        return text
    if kind is Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{raw!r} is not a decimal number") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"{raw!r} must be a finite amount, zero or more")
        return value
    if kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise ValueError(f"{raw!r} is not {noun}") from None
        low, high = f.metadata["minimum"], f.metadata["maximum"]
        if low is not None and value < low:
            raise ValueError(f"{value} is below the minimum {low}")
        if high is not None and value > high:
            raise ValueError(f"{value} is above the maximum {high}")
        return value
    raise TypeError(f"unsupported setting type {kind!r}")  # a programming error, not user input


def _apply(values: dict[str, dict[str, object]], section: str, key: str, raw: str, origin: str) -> None:
    if (section, key) in RETIRED:
        log.warning("%s: [%s] %s is ignored: %s", origin, section, key, RETIRED[section, key])
        return
    known = sections()
    if section not in known:
        raise ConfigError(f"{origin}: unknown section [{section}] (known: {', '.join(known)})")
    fields = _field_types(known[section])
    if key not in fields:
        raise ConfigError(f"{origin}: unknown key {key!r} in section [{section}] "
                          f"(known: {', '.join(fields)})")
    try:
        values[section][key] = _parse(raw, fields[key])
    except ValueError as error:
        raise ConfigError(f"{origin}: [{section}] {key}: {error}") from None


def _masks(text: str) -> tuple[Rectangle, ...]:
    """Parse "x,y,w,h; x,y,w,h" (fractions of the picture) into rectangles."""
    rectangles = []
    for part in filter(None, (piece.strip() for piece in text.split(";"))):
        try:
            numbers = tuple(float(number) for number in part.split(","))
        except ValueError:
            numbers = ()
        if len(numbers) != 4 or not all(0 <= number <= 1 for number in numbers):
            raise ValueError(f"{part!r} is not x,y,width,height as fractions between 0 and 1")
        rectangles.append(numbers)
    return tuple(rectangles)


def _camera(path: Path, section: str, items: list[tuple[str, str]]) -> CameraSettings:
    match = CAMERA_SECTION.fullmatch(section)
    camera = CameraSettings(int(match[1]), match[2])
    for key, raw in items:
        try:
            if key == "sensitivity":
                value = float(raw)
                if not 0.1 <= value <= 10:
                    raise ValueError(f"{value} is outside 0.1-10")
                camera = dataclasses.replace(camera, sensitivity=value)
            elif key == "masks":
                camera = dataclasses.replace(camera, masks=_masks(raw))
            else:
                raise ConfigError(f"{path}: unknown key {key!r} in section [{section}] (known: sensitivity, masks)")
        except ValueError as error:
            raise ConfigError(f"{path}: [{section}] {key}: {error}") from None
    return camera


def _read_file(path: Path, values: dict[str, dict[str, object]]) -> list[CameraSettings]:
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_default_section__")
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except configparser.Error as error:
        raise ConfigError(f"{path}: {error.message.splitlines()[0]}") from None
    cameras = []
    for section in parser.sections():
        if CAMERA_SECTION.fullmatch(section):
            cameras.append(_camera(path, section, parser.items(section)))
            continue
        if section not in sections():
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(sections())}, "
                              "camera CLIENT_ID/NAME)")
        for key, raw in parser.items(section):
            _apply(values, section, key, raw, str(path))
    return cameras


def _read_environment(environ: Mapping[str, str], values: dict[str, dict[str, object]]) -> None:
    for name, raw in environ.items():
        if not name.startswith("VIGINT_") or name in NON_SETTING_VARIABLES:
            continue
        section, _, key = name[len("VIGINT_"):].lower().partition("_")
        if section in sections():
            _apply(values, section, key, raw, f"environment variable {name}")


def config_path(flag: Path | None, environ: Mapping[str, str]) -> Path | None:
    """Return the config file to read: the flag, else VIGINT_CONFIG, else ./config.ini if it exists."""
    if flag is not None:
        return flag
    if environ.get("VIGINT_CONFIG"):
        return Path(environ["VIGINT_CONFIG"])
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None,
                  overrides: Mapping[tuple[str, str], object] | None = None) -> Settings:
    """Build the settings from defaults, `config_file`, the environment and `overrides`.

    Args:
        config_file: an explicit config file (``--config``); it must exist.
        environ: the environment (default ``os.environ``).
        overrides: values from command-line flags, keyed by (section, key), already typed; None skips.
    Raises:
        ConfigError: naming the file or variable, the section and the key at fault.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, dict[str, object]] = {name: {} for name in sections()}
    path = config_path(config_file, environ)
    cameras = _read_file(path, values) if path is not None else []
    if environ.get("VIGINT_DB"):
        _apply(values, "database", "path", environ["VIGINT_DB"], "environment variable VIGINT_DB")
    _read_environment(environ, values)
    for (section, key), value in (overrides or {}).items():
        if value is not None:
            values[section][key] = value
    built = {name: kind(**values[name]) for name, kind in sections().items()}
    return Settings(**built, cameras=tuple(cameras), source=path)
