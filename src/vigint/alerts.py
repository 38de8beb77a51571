"""Alerts: signed clip links, email and webhook messages, and their delivery (blocking: worker threads).

Links are `GET /clips/<id>?exp=…&sig=…`, where sig is an HMAC of the incident, its client and the expiry
with the server's secret: an expired, tampered or re-targeted link is refused (403). Whoever knows the
secret can open every clip, so it is long, kept owner-only and never empty (`load_link_secret`).
"""

import hashlib
import hmac
import json
import re
import secrets
import smtplib
import ssl
import time
import urllib.request
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

from vigint.config import AlertSettings, EmailSettings
from vigint.errors import ConfigError
from vigint.files import write_private
from vigint.store import Flag, Incident

# 32 characters: a generated secret is 64 hex digits (256 bits); a configured one shorter than 32 is more
# likely a placeholder or a password than a key, and an HMAC key is only as strong as it is unguessable.
MIN_LINK_SECRET_LENGTH = 32
LINK_SECRET_FILE = "link-secret"
# An expiry is Unix seconds: 12 digits reach the year 33658. Longer, signed or non-ASCII values are refused
# before int(), which would otherwise raise on thousands of digits (and answer 500 instead of 403).
EXPIRY_PATTERN = re.compile(r"[0-9]{1,12}")
SIGNATURE_PATTERN = re.compile(r"[0-9a-f]{64}")  # hex SHA-256; compare_digest raises on non-ASCII text
CAMERA_EVENTS = frozenset({"camera_down", "camera_back"})  # incidents without a clip: a camera left or returned

TEMPLATES = {
    "en": {
        "subject": "[Vigint] {kind} at {camera}, {when}",
        "event_subject": "[Vigint] {camera}: {kind}",
        "body": ("Hello {name},\n\nVigint saw {kind} on camera \"{camera}\" at {when} (UTC).\n{description}"
                 "Threat level: {threat}/2.\n\n{clip}\n\n— Vigint\n"),
        "clip": "Watch the clip (link valid until {expires} UTC):\n{link}",
        "no_clip": "No clip could be saved for this incident.",
        "kinds": {"motion": "motion", "camera_down": "camera down", "camera_back": "camera back"},
        "event_body": "Hello {name},\n\n{description}\n\n— Vigint\n",
    },
    "fr": {
        "subject": "[Vigint] {kind} sur {camera}, {when}",
        "event_subject": "[Vigint] {camera} : {kind}",
        "body": ("Bonjour {name},\n\nVigint a détecté {kind} sur la caméra « {camera} » le {when} (UTC).\n"
                 "{description}Niveau de menace : {threat}/2.\n\n{clip}\n\n— Vigint\n"),
        "clip": "Voir la séquence (lien valable jusqu'au {expires} UTC) :\n{link}",
        "no_clip": "Aucune séquence n'a pu être enregistrée pour cet incident.",
        "kinds": {"motion": "un mouvement", "camera_down": "caméra hors ligne", "camera_back": "caméra de retour"},
        "event_body": "Bonjour {name},\n\n{description}\n\n— Vigint\n",
    },
}


def load_link_secret(configured: str, data_dir: Path) -> str:
    """Return the secret that signs clip links: `configured` ([alerts] link_secret) if set, else the one kept
    in `data_dir/link-secret`, generated there (64 hex digits, owner-only) the first time.

    Raises ConfigError, with one line that never shows the secret, when the configured secret is shorter
    than MIN_LINK_SECRET_LENGTH, when the file cannot be written (nothing partial is left behind) or read,
    or when it holds fewer than MIN_LINK_SECRET_LENGTH characters (an empty or truncated file).
    """
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
        raise ConfigError(f"cannot read the clip-link secret {path}: {reason}; fix its permissions, or delete it "
                          "so that a new one is generated (links already sent stop working)") from None
    if len(text) < MIN_LINK_SECRET_LENGTH:
        raise ConfigError(f"the clip-link secret {path} is {'empty' if not text else 'too short'} (at least "
                          f"{MIN_LINK_SECRET_LENGTH} characters needed): delete it so that a new one is generated "
                          "(links already sent stop working)")
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
    if not EXPIRY_PATTERN.fullmatch(expires) or not SIGNATURE_PATTERN.fullmatch(signature) or int(expires) < now:
        return False
    return hmac.compare_digest(_signature(secret, incident.id, incident.client_id, int(expires)), signature)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def compose_email(incident: Incident, client_name: str, client_email: str, link: str, expires: int,
                  alerts: AlertSettings, email: EmailSettings) -> EmailMessage:
    """Return the alert email for an incident, in the configured language."""
    template = TEMPLATES[alerts.language]
    kind = template["kinds"].get(incident.type, incident.type)
    clip = template["clip"].format(expires=_utc(expires), link=link) if incident.clip_path else template["no_clip"]
    fields = {"kind": kind, "camera": incident.camera, "when": _utc(incident.started_at), "name": client_name,
              "description": f"{incident.description}\n" if incident.description else "",
              "threat": incident.threat, "clip": clip}
    message = EmailMessage()
    message["From"], message["To"] = email.sender, client_email
    camera_event = incident.type in CAMERA_EVENTS
    message["Subject"] = template["event_subject" if camera_event else "subject"].format(**fields)
    message.set_content(template["event_body" if camera_event else "body"].format(**fields))
    return message


def compose_operator_email(flag: Flag, email: EmailSettings, recipient: str) -> EmailMessage:
    """Return the email telling the operator about an unusual-usage flag (always in English)."""
    message = EmailMessage()
    message["From"], message["To"] = email.sender, recipient
    message["Subject"] = f"[Vigint] unusual usage: {flag.kind}" + (f" (client {flag.client_id})" if flag.client_id else "")
    message.set_content(f"{flag.detail}\n\nFlagged at {_utc(flag.at)} UTC. See `vigint alerts`.\n")
    return message


def send_email(settings: EmailSettings, message: EmailMessage) -> None:
    """Send one email over SMTP (STARTTLS, SSL or plain, with optional login), or write it to capture_dir.

    Raises OSError or SMTPException.
    """
    if settings.capture_dir is not None:
        write_private(settings.capture_dir / f"{time.time_ns()}.eml", bytes(message))  # it carries clip links
        return
    context = ssl.create_default_context()
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds,
                                  context=context)
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password)
        client.send_message(message)


def webhook_body(incident: Incident, link: str) -> bytes:
    """Return the JSON a webhook receives for an incident."""
    return json.dumps({"type": "incident", "incident_id": incident.id, "client_id": incident.client_id,
                       "camera": incident.camera, "kind": incident.type, "description": incident.description,
                       "threat": incident.threat, "started_at": _utc(incident.started_at) + "Z",
                       "clip_url": link}).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    """Return the X-Vigint-Signature header value: sha256= and the HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(url: str, secret: str, body: bytes, timeout: float) -> None:
    """POST a webhook. Raises OSError (urllib's errors included) unless the receiver answers 2xx."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Vigint-Signature": webhook_signature(secret, body),
        "User-Agent": "vigint"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
