"""Alert emails to customers and flag emails to the operator: composed, then sent (blocking: worker threads)."""

import smtplib
import ssl
import time
from datetime import datetime, timezone
from email.message import EmailMessage

from vigint.config import AlertSettings, EmailSettings
from vigint.files import write_private
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
        "offline": "Recorded {start}–{end} (UTC) while the camera was offline; sent once it was back.\n",
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
        "offline": "Enregistré de {start} à {end} (UTC) pendant que la caméra était hors ligne ; reçu à son retour.\n",
    },
}


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def offline_note(incident: Incident, language: str = "en") -> str:
    """Return the line saying that an incident was recorded while its camera was offline (empty if it was not):
    when it started and ended, in the alerts' UTC format (the end without its date on the same day)."""
    if not incident.offline:
        return ""
    start, end = _utc(incident.started_at), _utc(incident.ended_at or incident.started_at)
    if end[:10] == start[:10]:
        end = end[11:]
    return TEMPLATES[language]["offline"].format(start=start, end=end)


def compose_email(incident: Incident, client_name: str, client_email: str, link: str, expires: int,
                  alerts: AlertSettings, email: EmailSettings) -> EmailMessage:
    """Return the alert email for an incident, in the configured language."""
    template = TEMPLATES[alerts.language]
    kind = template["kinds"].get(incident.type, incident.type)
    clip = template["clip"].format(expires=_utc(expires), link=link) if incident.clip_path else template["no_clip"]
    fields = {"kind": kind, "camera": incident.camera, "when": _utc(incident.started_at), "name": client_name,
              "description": offline_note(incident, alerts.language)
              + (f"{incident.description}\n" if incident.description else ""),
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
