"""Settings: one immutable object, built once at start (by `configfile.load_settings`).

Every setting is declared once, with its default and the reason for it: below, and the stream path's
sections ([server], [buffers], [analysis]) in `vigint.streaming`; ``config.example.ini`` is the same list for
operators.
"""

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from vigint.locations import clips_location, endpoint_url
from vigint.networks import parse_networks
from vigint.setting import setting
from vigint.streaming import AnalysisSettings, BufferSettings, ServerSettings


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the database lives: a SQLite file (one machine) or a PostgreSQL server (several nodes)."""

    # secret: a postgresql:// URL may carry a password (`vigint.store.describe` masks it for messages)
    path: str = setting(
        "vigint.db", "SQLite file with clients, key hashes, usage and incidents (relative: from this file's "
        "folder, or the current one for --db and $VIGINT_DB), or a postgresql://user:password@host/db URL "
        "shared by several nodes", secret=True)


@dataclass(frozen=True)
class StorageSettings:
    """Where files live."""

    data_dir: Path = setting(
        Path("vigint-data"), "clips go to data_dir/clips/<client>/<incident>.mp4 unless `clips` says "
        "otherwise; this and every relative path start from the database file's folder (PostgreSQL: this "
        "file's), whatever folder a command runs in")
    clips: str = setting(
        "", "where clips go: empty for data_dir/clips, another folder, or s3://bucket/prefix (object "
        "<prefix>/<client>/<incident>.mp4 on any S3-compatible storage; needs the s3 extra: pip install "
        "'vigint[s3]')", check=clips_location)
    s3_endpoint: str = setting(
        "", "the S3 endpoint, e.g. http://127.0.0.1:9000 for MinIO or Garage; empty: $AWS_ENDPOINT_URL_S3, "
        "$AWS_ENDPOINT_URL, else AWS S3", check=endpoint_url)
    s3_region: str = setting(
        "", "the bucket's region; empty: $AWS_REGION, $AWS_DEFAULT_REGION, else asked of the endpoint")
    s3_access_key_id: str = setting("", "empty: $AWS_ACCESS_KEY_ID (neither: anonymous requests)",
                                    secret=True)
    s3_secret_access_key: str = setting("", "empty: $AWS_SECRET_ACCESS_KEY", secret=True)
    s3_session_token: str = setting("", "temporary credentials' token; empty: $AWS_SESSION_TOKEN",
                                    secret=True)
    min_free_mb: int = setting(
        500, "clips stop being written while the disk they grow on (the clips folder; "
        "data_dir/clips-growing for S3) has less free space than this, so the database and the system keep "
        "room", minimum=0)
    retention_days: float = setting(30.0, "clips and incidents older than this are deleted", minimum=0.01)


@dataclass(frozen=True)
class MotionSettings:
    """The built-in motion detector and what makes an incident."""

    threshold: float = setting(25.0, "gray levels a pixel must change by: above sensor noise, below a person",
                               minimum=1, maximum=255)
    sensitivity: float = setting(1.0, "scales the threshold: 2 sees fainter changes, 0.5 only strong ones",
                                 minimum=0.1, maximum=10)
    min_cells: int = setting(
        2, "grid cells (of 16x16 analysed pixels) that must change at once; one cell is too easily an "
        "insect or noise", minimum=1)
    max_area_fraction: float = setting(
        0.5, "a change over more of the picture than this is lighting (lights, auto-exposure), not motion",
        minimum=0.05, maximum=1)
    min_motion_seconds: float = setting(
        1.0, "motion must last this long to be an incident: a passing shadow is not", minimum=0)
    cooldown_seconds: float = setting(
        60.0, "motion again within this time extends the open incident instead of opening another", minimum=1)
    pre_roll_seconds: float = setting(5.0, "video kept in a clip before the motion started", minimum=0)
    post_roll_seconds: float = setting(5.0, "video kept in a clip after the motion stopped", minimum=0)
    max_clip_seconds: float = setting(
        300.0, "longest clip of one incident (pre-roll, event, post-roll): a longer event's clip shows its "
        "first this many seconds", minimum=1)


@dataclass(frozen=True)
class AlertSettings:
    """How customers are told about incidents."""

    language: str = setting(
        "en", "language of alert emails and of the page for clients without their own "
        "(`vigint client update --language`)", choices=("en", "fr"))
    public_url: str = setting(
        "", "base of clip links in alerts, e.g. https://vigint.example.com:5002; empty: this server's own "
        "address")
    link_ttl_hours: float = setting(
        0.0, "how long a clip link works; 0: as long as the clip is kept ([storage] retention_days after "
        "the incident)", minimum=0)
    link_secret: str = setting(
        "", "HMAC key signing clip links; empty: one is generated and kept in data_dir/link-secret",
        secret=True)
    webhook_url: str = setting("", "optional: every incident is also POSTed here as JSON")
    webhook_secret: str = setting("", "HMAC-SHA256 key for the X-Vigint-Signature header of webhooks",
                                  secret=True)
    retry_seconds: float = setting(10.0, "first retry delay of an undelivered alert; doubles each time",
                                   minimum=0.1)
    max_retry_seconds: float = setting(3600.0, "longest wait between two delivery attempts", minimum=1)
    max_attempts: int = setting(
        60, "an alert failing this often (about two days) is given up, kept and emailed to operator_email; "
        "a refusal for good (SMTP 5xx, webhook 4xx) at once", minimum=1)
    camera_down_minutes: float = setting(
        10.0, "a camera that streamed and has been gone this long is reported down to its client, once; its "
        "return is reported too", minimum=0.01)
    operator_email: str = setting(
        "", "where unusual-usage flags (leaked keys, spikes, hello floods), alerts given up and keys about "
        "to expire are emailed")
    key_expiry_warning_days: float = setting(
        3.0, "a key that streamed in the last 7 days and expires within this many days is emailed to "
        "operator_email, once: time to rotate it", minimum=0)
    max_addresses_per_key: int = setting(
        2, "a key streaming from more addresses at once than this is flagged: one site has one address, a "
        "second site should get its own key", minimum=1)
    usage_spike_factor: float = setting(
        5.0, "a key receiving this many times its trailing 7-day hourly average within the last hour is "
        "flagged", minimum=1)
    usage_spike_min_mb: float = setting(
        500.0, "spikes below this many MB an hour are never flagged (new keys, small cameras)", minimum=0)
    monitor_seconds: float = setting(30.0, "how often cameras down and unusual usage are checked",
                                     minimum=0.05)


@dataclass(frozen=True)
class WebSettings:
    """The customers' own page, served by `vigint serve` on the [server] host with its TLS pair."""

    port: int = setting(5003, "TCP port of the customers' page", minimum=0, maximum=65535)
    public_url: str = setting(
        "", "base of the page's links (emails, `vigint client link`); empty: this server's")
    sign_in_minutes: float = setting(15.0, "how long a sign-in link works; it works once", minimum=1)
    session_days: float = setting(30.0, "how long a browser stays signed in (revoking ends it at once)",
                                  minimum=0.01)
    handover_hours: float = setting(48.0, "how long a key's hand-over link works, once (the key too)",
                                    minimum=0.01)
    header_timeout_seconds: float = setting(
        10.0, "a connection must send a whole request (TLS, headers, form) in this: browsers do at once; a "
        "silent one holds a descriptor", minimum=1)
    keepalive_seconds: float = setting(15.0, "idle connections close then: browsers reuse one in seconds",
                                       minimum=1)
    max_idle_connections: int = setting(
        256, "connections waiting for a request; past it the oldest is closed, so the descriptors left "
        "serve streams and evidence", minimum=1)
    max_idle_connections_per_address: int = setting(
        32, "the same per address (past it new ones close): a NAT's browsers fit; a trusted proxy's count "
        "in the total", minimum=1)
    reserve_descriptors: int = setting(
        128, "descriptors kept for clips, stills, database and streams: nearer the open-file limit than "
        "this, the page refuses new connections", minimum=32)
    trusted_proxies: str = setting("", "proxies believed in X-Forwarded-For: 10.0.0.2,10.0.0.0/8",
                                   check=parse_networks)
    max_clip_streams: int = setting(
        32, "clips streamed from S3 at once (each holds a bucket connection and about 0.2 MiB while its "
        "reader takes it); more: 503", minimum=1)
    max_clip_streams_per_client: int = setting(
        8, "of those, one client's (page and emailed links): a leaked link never takes every place; more: "
        "429", minimum=1)
    max_clip_streams_per_link: int = setting(
        4, "of those, one incident's clip: a phone's player asks for two or three ranges at once; more: 429",
        minimum=1)
    clip_send_timeout_seconds: float = setting(
        30.0, "a clip answer whose reader takes nothing this long is cut: a paused player asks again with a "
        "range", minimum=1)
    node_url: str = setting(
        "", "this node's own page address, where the other nodes' pages send the viewers of a camera "
        "streaming here; empty: http(s)://[server] host:port")
    max_live_viewers: int = setting(
        100, "live views this node sends at once: each sends its camera's bitrate (100 × 2 Mbit/s fills a "
        "200 Mbit/s uplink) and holds a socket; more: the page says so", minimum=1)
    max_live_viewers_per_client: int = setting(
        8, "of those, one client's: a shop's screen and a few phones; a leaked session never takes every "
        "place", minimum=1)
    max_live_queue_bytes: int = setting(
        8 * 1024 * 1024, "what may wait for one viewer's socket: a new viewer gets its camera's whole GOP at "
        "once (10 s at 4 Mbit/s is 5 MB); more: the viewer is dropped", minimum=1024 * 1024)
    max_live_queue_seconds: float = setting(
        5.0, "a viewer whose oldest waiting fragment is this old has stopped reading: it is dropped (the "
        "page jumps to live past 3 s behind anyway)", minimum=1)


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
    capture_dir: Path | None = setting(
        None, "write alert emails as .eml files in this folder instead of sending them (trials, `vigint "
        "demo`); empty: send through smtp_host")


@dataclass(frozen=True)
class AiSettings:
    """Optional verification of motion by a vision model."""

    provider: str = setting(
        "none", "none: every motion event is an incident; openai: any OpenAI-compatible chat-completions "
        "endpoint; gemini: Google's generateContent", choices=("none", "openai", "gemini"))
    url: str = setting(
        "", "the endpoint's base URL, e.g. https://api.openai.com/v1 or "
        "https://generativelanguage.googleapis.com")
    api_key: str = setting("", "the endpoint's API key", secret=True)
    model: str = setting("", "the model name, e.g. gpt-4o-mini or gemini-2.0-flash")
    frames: int = setting(3, "JPEG frames from the event sent per check: enough to see what moved", minimum=1,
                          maximum=10)
    timeout_seconds: float = setting(20.0, "a check taking longer counts as unreachable", minimum=1)
    max_concurrent: int = setting(4, "checks in flight at once, server-wide", minimum=1)
    max_calls_per_client_per_hour: int = setting(
        60, "beyond this a client's events are treated as unreachable: caps the bill of a camera facing a "
        "busy street", minimum=1)
    when_unreachable: str = setting(
        "motion", "if the AI cannot answer: motion = alert as a motion incident; record = keep the incident "
        "without alerting", choices=("motion", "record"))


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
    price_per_live_hour: Decimal = setting(
        Decimal("0"), "per hour of a camera watched live on the customer's page, per viewer; 0: not "
        "priced (it is remuxed, not decoded: its cost is the upload)")
    seller_name: str = setting("", "who issues the invoices (required before the first one)")
    seller_address: str = setting(
        "", "the seller's postal address, on one line (required before the first invoice)")
    seller_vat_id: str = setting("", "the seller's VAT number, if any")
    payment_terms_days: int = setting(30, "an invoice is due this many days after it is issued", minimum=0)
    payment_details: str = setting(
        "", "how to pay, printed on every invoice: e.g. IBAN FR76 …, BIC …, with the invoice number as "
        "reference (required before the first invoice)")


Rectangle = tuple[float, float, float, float]  # x, y, width, height as fractions of the picture


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
    analysis: AnalysisSettings = AnalysisSettings()
    storage: StorageSettings = StorageSettings()
    motion: MotionSettings = MotionSettings()
    alerts: AlertSettings = AlertSettings()
    web: WebSettings = WebSettings()
    email: EmailSettings = EmailSettings()
    ai: AiSettings = AiSettings()
    billing: BillingSettings = BillingSettings()
    cameras: tuple[CameraSettings, ...] = ()
    # The config file that was read, if any: shown at start so operators know which one is in force.
    source: Path | None = None
    # (section, key, where from) of each setting that is not at its default: a file, a variable or a flag.
    origins: tuple[tuple[str, str, str], ...] = ()
    # The folder relative paths were resolved against and its name ("the database's folder"), for the banner.
    paths_from: tuple[Path, str] | None = None

    def camera(self, client_id: int, name: str) -> CameraSettings:
        """Return a camera's own tuning, or the [motion] defaults for it."""
        for camera in self.cameras:
            if (camera.client_id, camera.camera) == (client_id, name):
                return camera
        return CameraSettings(client_id, name, self.motion.sensitivity)


def sections() -> dict[str, type]:
    """Return each section's name and its dataclass, in declaration order."""
    return {f.name: f.type for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(f.type)}
