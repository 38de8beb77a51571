"""The links in alerts: the incident on the customer's page, signed clip links, and the secret that signs
them.

Clip links are `GET /clips/<id>?exp=…&sig=…`, where sig is an HMAC of the incident, its client and the expiry
with the server's secret: an expired, tampered or re-targeted link is refused (403). Whoever knows the
secret can open every clip, so it is long, kept owner-only and never empty (`load_link_secret`).
The page link carries no secret: the page asks for a sign-in first when the browser has none.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from vigint.errors import ConfigError
from vigint.files import write_private
from vigint.store import Incident

# 32 characters: a generated secret is 64 hex digits (256 bits); a configured one shorter than 32 is more
# likely a placeholder or a password than a key, and an HMAC key is only as strong as it is unguessable.
MIN_LINK_SECRET_LENGTH = 32
LINK_SECRET_FILE = "link-secret"
# An expiry is Unix seconds: 12 digits reach the year 33658. Longer, signed or non-ASCII values are refused
# before int(), which would otherwise raise on thousands of digits (and answer 500 instead of 403).
EXPIRY_PATTERN = re.compile(r"[0-9]{1,12}")
SIGNATURE_PATTERN = re.compile(r"[0-9a-f]{64}")  # hex SHA-256; compare_digest raises on non-ASCII text
# incidents without a clip: a camera left or returned
CAMERA_EVENTS = frozenset({"camera_down", "camera_back"})


@dataclass(frozen=True)
class AlertLinks:
    """Where an alert points: the customer's page (`page_link`), the incident's signed clip link, and the
    links that mute its camera."""

    page: str
    clip: str
    clip_expires: int  # Unix seconds
    # (choice, signed link) of each way to mute the camera (alerts.mutes)
    mutes: tuple[tuple[str, str], ...] = ()


def page_link(page_url: str, incident: Incident) -> str:
    """Return the page an alert opens (the customer's page asks for a sign-in first if needed): the incident's
    own, `<page_url>/incidents/<id>`, or for a camera going down or coming back the cameras',
    `<page_url>/cameras`."""
    base = page_url.rstrip("/")
    return f"{base}/cameras" if incident.type in CAMERA_EVENTS else f"{base}/incidents/{incident.id}"


def load_link_secret(configured: str, data_dir: Path, shared: bool = False) -> str:
    """Return the secret that signs clip links: `configured` ([alerts] link_secret) if set, else the one kept
    in `data_dir/link-secret`, generated there (64 hex digits, owner-only) the first time. Nodes sharing a
    database (`shared`) must be configured with one: a link must open on whichever node gets it.

    Raises ConfigError, with one line that never shows the secret, when the configured secret is shorter
    than MIN_LINK_SECRET_LENGTH, when the file cannot be written (nothing partial is left behind) or read,
    or when it holds fewer than MIN_LINK_SECRET_LENGTH characters (an empty or truncated file).
    """
    if shared and not configured:
        raise ConfigError("several nodes share this database: set [alerts] link_secret (or "
                          "VIGINT_ALERTS_LINK_SECRET) to the same value on every node, "
                          "e.g. `openssl rand -hex 32`")
    if configured:
        if len(configured.strip()) < MIN_LINK_SECRET_LENGTH:
            raise ConfigError(f"[alerts] link_secret must be at least {MIN_LINK_SECRET_LENGTH} characters "
                              "(for example 64 hex digits from `openssl rand -hex 32`), or empty to have one "
                              f"generated and kept in {data_dir / LINK_SECRET_FILE}")
        return configured
    path = data_dir / LINK_SECRET_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError):  # the latter: data_dir is a file; writing says so
        return _generate_link_secret(path)
    except (OSError, UnicodeDecodeError) as error:
        reason = (error.strerror or str(error)) if isinstance(error, OSError) else "not ASCII text"
        message = (f"cannot read the clip-link secret {path}: {reason}; fix its permissions, or delete it so "
                   "that a new one is generated (links already sent stop working)")
        raise ConfigError(message) from None
    if len(text) < MIN_LINK_SECRET_LENGTH:
        raise ConfigError(f"the clip-link secret {path} is {'empty' if not text else 'too short'} (at least "
                          f"{MIN_LINK_SECRET_LENGTH} characters needed): delete it so that a new one is "
                          "generated (links already sent stop working)")
    return text


def _generate_link_secret(path: Path) -> str:
    """Write a new secret to `path` atomically and owner-only; return it. Raises ConfigError."""
    secret = secrets.token_hex(32)
    try:
        write_private(path, secret.encode("ascii"))  # a failed write leaves no secret, generated next start
    except OSError as error:
        raise ConfigError(f"cannot write the clip-link secret {path}: {error.strerror or error}") from None
    return secret


def _signature(secret: str, incident_id: int, client_id: int, expires: int) -> str:
    message = f"{incident_id}:{client_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def clip_link(base_url: str, secret: str, incident: Incident, expires: int) -> str:
    """Return the signed link to an incident's clip, valid until `expires` (Unix seconds)."""
    query = urlencode({"exp": expires, "sig": _signature(secret, incident.id, incident.client_id, expires)})
    return f"{base_url.rstrip('/')}/clips/{incident.id}?{query}"


def link_is_valid(secret: str, incident: Incident, expires: str, signature: str, now: float) -> bool:
    """Tell whether a link's expiry and signature open this incident's clip now.

    Malformed values (an expiry that is not 1-12 ASCII digits, a signature that is not 64 hex digits)
    make the link invalid: they never raise.
    """
    well_formed = EXPIRY_PATTERN.fullmatch(expires) and SIGNATURE_PATTERN.fullmatch(signature)
    if not well_formed or int(expires) < now:
        return False
    return hmac.compare_digest(_signature(secret, incident.id, incident.client_id, int(expires)), signature)
