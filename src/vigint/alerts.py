"""Alerts: signed clip links, email and webhook messages, and their delivery (blocking: worker threads).

Links are `GET /clips/<id>?exp=…&sig=…`, where sig is an HMAC of the incident, its client and the expiry
with the server's secret: an expired, tampered or re-targeted link is refused (403).
"""

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.request
from datetime import datetime, timezone
from email.message import EmailMessage
from urllib.parse import urlencode

from vigint.config import AlertSettings, EmailSettings
from vigint.store import Flag, Incident

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


def _signature(secret: str, incident_id: int, client_id: int, expires: int) -> str:
    message = f"{incident_id}:{client_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def clip_link(base_url: str, secret: str, incident: Incident, expires: int) -> str:
    """Return the signed link to an incident's clip, valid until `expires` (Unix seconds)."""
    query = urlencode({"exp": expires, "sig": _signature(secret, incident.id, incident.client_id, expires)})
    return f"{base_url.rstrip('/')}/clips/{incident.id}?{query}"


def link_is_valid(secret: str, incident: Incident, expires: str, signature: str, now: float) -> bool:
    """Tell whether a link's expiry and signature open this incident's clip now."""
    if not expires.isdigit() or int(expires) < now:
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
        settings.capture_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.eml"
        (settings.capture_dir / f"{name}.part").write_bytes(bytes(message))
        (settings.capture_dir / f"{name}.part").rename(settings.capture_dir / name)
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
