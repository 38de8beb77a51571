"""The agent's configuration: the customer's `.env`, the environment and flags (flags win).

The customer's only configuration is `VIGINT_API_KEY` (and optionally `VIGINT_SERVER_URL`) in a `.env`
file; everything else has a default. Problems are found here, before any connection is made.
"""

import io
import logging
import os
import re
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv.parser import parse_stream

from vigint import keys, protocol
from vigint.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "ws://127.0.0.1:5002"
TEST_SOURCE = "test"


@dataclass(frozen=True)
class Camera:
    """One source and the name the server knows it by."""

    source: str = field(repr=False)  # an RTSP URL may hold the camera's password
    name: str

    def __repr__(self) -> str:
        return f"Camera({redact(self.source)!r}, {self.name!r})"


@dataclass(frozen=True)
class AgentSettings:
    """Everything one agent run needs."""

    api_key: str = field(repr=False)
    server_url: str
    cameras: tuple[Camera, ...]
    ca_cert: Path | None = None
    loop: bool = False  # play video files again and again
    bitrate: int = 2_000_000  # when a source must be re-encoded to H.264
    max_width: int = 1280  # re-encoded video is scaled down to this width at most
    stall_seconds: float = 10.0  # a source silent this long is reopened
    max_backlog_seconds: float = 4.0  # unsent video beyond this goes to the spool, whole GOPs at a time
    spool_dir: Path = Path("spool")  # footage not sent live waits here for the backfill (see spool.py)
    # 2 GB holds about 2.5 hours of one 2 Mbit/s camera: a night's outage for a small shop, on any disk.
    spool_max_mb: int = 2048
    # A key that worked and is refused (a revoked client) is tried this often, so that reactivation brings the
    # cameras back within a minute: two refused hellos a minute, far under the server's limit per address.
    refused_retry_seconds: float = 30.0


def redact(url: str) -> str:
    """Return `url` with any user name and password removed, for logs and the status view."""
    parts = urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `.env` file as python-dotenv does: `NAME=value` lines, `export`, single or double quotes
    (double quotes take escapes such as `\\n`), `#` comments, quoted values over several lines. Values are
    taken as written: `${NAME}` is not expanded. Warns if others can read the file.

    Raises:
        ConfigError: the file cannot be read, or a line is not `NAME=value` (the message names the line).
    """
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, 'strerror', None) or 'it is not UTF-8 text'
        raise ConfigError(f"cannot read {path}: {reason}") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("%s is readable by other users and holds your API key: run chmod 600 %s", path, path)
    if committable(path):
        log.warning("%s holds your API key and sits in a git work tree without being ignored: a commit would "
                    "publish it; add it to .gitignore (echo %s >> .gitignore), and if it is tracked already, "
                    "git rm --cached %s and ask your Vigint operator for a new key",
                    path, path.name, path.name)
    values = {}
    # dotenv_values() would log and skip a line it cannot parse; its parser tells which line, to say so here.
    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key is not None and binding.value is None):
            raise ConfigError(f"{path}, line {binding.original.line}: expected NAME=value")
        if binding.key is not None:  # else a comment or a blank line
            values[binding.key] = binding.value
    return values


def committable(path: Path) -> bool:
    """Whether `path` is in a git work tree and not ignored (tracked files never are): one `git check-ignore`.
    False where git is not installed, or the folder is no work tree."""
    try:
        checked = subprocess.run(["git", "check-ignore", "-q", path.name], cwd=path.parent,
                                 capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return checked.returncode == 1  # 0: ignored; 128: not a work tree, or git failed


def stream_url(server_url: str) -> str:
    """Return the WebSocket URL of the stream endpoint for a server URL given as ws(s)://host:port[/path]."""
    parts = urlsplit(server_url)
    if parts.scheme not in {"ws", "wss"} or not parts.hostname:
        raise ConfigError("the server URL must look like wss://vigint.example.com:5002, "
                          f"not {redact(server_url)!r}")
    path = parts.path if parts.path not in {"", "/"} else protocol.PATH
    return urlunsplit(parts._replace(path=path))


def _camera_names(sources: list[str], names: list[str | None]) -> tuple[Camera, ...]:
    """Pair each source with its name (None: derive one from the source, never taking a given name)."""
    names = names + [None] * (len(sources) - len(names))
    cameras = []
    taken = {name for name in names if name}
    for index, (source, name) in enumerate(zip(sources, names)):
        name = name or _default_name(source, index, taken)
        taken.add(name)
        if not protocol.is_camera_name(name):
            raise ConfigError(f"camera name {name!r}: use 1-{protocol.MAX_CAMERA_NAME} letters, digits, "
                              "spaces, '.', '_' or '-'")
        cameras.append(Camera(source, name))
    if len({c.name for c in cameras}) != len(cameras):
        raise ConfigError("two cameras have the same name: give each --source its own --camera")
    return tuple(cameras)


def _default_name(source: str, index: int, taken: set[str]) -> str:
    parts = urlsplit(source)
    base = "test-pattern" if source == TEST_SOURCE else parts.hostname if parts.scheme and parts.hostname \
        else Path(parts.path).stem
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._")[:protocol.MAX_CAMERA_NAME - 4]
    name = slug or f"camera-{index + 1}"
    candidate = name
    number = 2
    while candidate in taken:
        candidate = f"{name}-{number}"
        number = number + 1
    return candidate


def _check_source(source: str) -> None:
    if source == TEST_SOURCE or "://" in source or source.startswith("/dev/"):
        return  # network cameras and devices may come up later: the agent keeps retrying them
    if not Path(source).is_file():
        raise ConfigError(f"video file {source} does not exist")


def load_agent_settings(flags: Mapping[str, object], environ: Mapping[str, str] | None = None,
                        cwd: Path | None = None) -> AgentSettings:
    """Build the agent's settings from `.env` (``flags['env_file']`` or ./.env), the environment and flags.

    Raises:
        ConfigError: no API key, a key that fails its checksum, a bad server URL, a missing file source or
            --ca-cert file.
    """
    environ = os.environ if environ is None else environ
    env_file = flags.get("env_file") or (cwd or Path.cwd()) / ".env"
    from_file = read_env_file(Path(env_file)) if flags.get("env_file") or Path(env_file).is_file() else {}

    def pick(flag: str, variable: str) -> str | None:
        return flags.get(flag) or environ.get(variable) or from_file.get(variable)

    api_key = pick("api_key", "VIGINT_API_KEY")
    if not api_key:
        raise ConfigError("no API key: put VIGINT_API_KEY=vig_… in a .env file here (see .env.example), "
                          "or pass --api-key")
    if not keys.is_well_formed(api_key):
        raise ConfigError(f"the API key {keys.display_prefix(api_key)}… is mistyped "
                          "(its checksum does not match): copy it again from your Vigint operator")
    sources = list(flags.get("sources") or [])
    if not sources:
        raise ConfigError("no camera: add --source (an rtsp:// URL, a video file, /dev/video0, or 'test')")
    for source in sources:
        _check_source(source)
    optional = {name: flags[name] for name in ("ca_cert", "loop", "bitrate", "max_width", "stall_seconds",
                                               "max_backlog_seconds", "spool_max_mb", "refused_retry_seconds")
                if flags.get(name) is not None}
    if optional.get("spool_max_mb", 1) <= 0:
        raise ConfigError("--spool-max-mb must be a positive number of megabytes")
    if optional.get("refused_retry_seconds", 1) < 1:
        raise ConfigError("--refused-retry-seconds must be at least 1: every try counts against your address")
    if "ca_cert" in optional and not Path(optional["ca_cert"]).is_file():  # else every connection would fail
        raise ConfigError(f"--ca-cert {optional['ca_cert']} does not exist: "
                          "copy the server's certificate there")
    # Beside the .env that was read (or would have been): the agent's files stay together wherever it is
    # started.
    spool_dir = Path(flags.get("spool_dir") or Path(env_file).parent / "spool")
    server_url = stream_url(pick("api_url", "VIGINT_SERVER_URL") or DEFAULT_SERVER_URL)
    cameras = _camera_names(sources, list(flags.get("cameras") or []))
    return AgentSettings(api_key=api_key, server_url=server_url, cameras=cameras, spool_dir=spool_dir,
                         **optional)
