"""Alert emails to customers and flag emails to the operator: composed, then sent (blocking: worker threads).

An alert is a text and an HTML part (every value escaped: a camera name or an AI's description is the customer's
or a model's text), with the `Date` and `Message-ID` headers RFC 5322 asks for. The Message-ID is derived from
the incident and the deployment, so an alert sent again after a crash or a failed attempt keeps it: the
customer's mail client shows one message, not two.
"""

import hashlib
import html
import smtplib
import ssl
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigint.config import AlertSettings, EmailSettings
from vigint.files import write_private
from vigint.store import Flag, Incident

CAMERA_EVENTS = frozenset({"camera_down", "camera_back"})  # incidents without a clip: a camera left or returned

TEMPLATES = {
    "en": {
        "subject": "[Vigint] {kind} at {camera}, {when}",
        "event_subject": "[Vigint] {camera}: {kind}",
        "body": ("Hello {name},\n\nVigint saw {kind} on camera \"{camera}\" at {when}.\n{description}{threat}\n"
                 "{clip}\n\n— Vigint\n"),
        "threat": "Threat level (AI check): {threat}/2.\n",
        "watch": "Watch the clip",
        "clip": "Watch the clip (link valid until {expires}):\n{link}",
        "no_clip": "No clip could be saved for this incident.",
        "kinds": {"motion": "motion", "camera_down": "camera down", "camera_back": "camera back"},
        "event_body": "Hello {name},\n\n{description}\n\n— Vigint\n",
        "offline": "Recorded {start}–{end} while the camera was offline; sent once it was back.\n",
    },
    "fr": {
        "subject": "[Vigint] {kind} sur {camera}, {when}",
        "event_subject": "[Vigint] {camera} : {kind}",
        "body": ("Bonjour {name},\n\nVigint a détecté {kind} sur la caméra « {camera} » le {when}.\n"
                 "{description}{threat}\n{clip}\n\n— Vigint\n"),
        "threat": "Niveau de menace (vérification IA) : {threat}/2.\n",
        "watch": "Voir la séquence",
        "clip": "Voir la séquence (lien valable jusqu'au {expires}) :\n{link}",
        "no_clip": "Aucune séquence n'a pu être enregistrée pour cet incident.",
        "kinds": {"motion": "un mouvement", "camera_down": "caméra hors ligne", "camera_back": "caméra de retour"},
        "event_body": "Bonjour {name},\n\n{description}\n\n— Vigint\n",
        "offline": "Enregistré de {start} à {end} pendant que la caméra était hors ligne ; reçu à son retour.\n",
    },
}


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _local(timestamp: float, timezone_name: str | None) -> datetime:
    """Return `timestamp` in the IANA zone `timezone_name`, or in the server's zone (None, or a zone the system
    no longer knows: an alert is never lost to it)."""
    try:
        zone = ZoneInfo(timezone_name) if timezone_name else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return datetime.fromtimestamp(timestamp, zone).astimezone(zone)


def _when(timestamp: float, timezone_name: str | None) -> str:
    return _local(timestamp, timezone_name).strftime("%Y-%m-%d %H:%M:%S %Z")


def offline_note(incident: Incident, language: str = "en", timezone_name: str | None = None) -> str:
    """Return the line saying that an incident was recorded while its camera was offline (empty if it was not):
    when it started and ended, in the client's zone (the end without its date on the same day)."""
    if not incident.offline:
        return ""
    start, end = _local(incident.started_at, timezone_name), _local(incident.ended_at or incident.started_at,
                                                                     timezone_name)
    end_format = "%H:%M:%S %Z" if end.date() == start.date() else "%Y-%m-%d %H:%M:%S %Z"
    return TEMPLATES[language]["offline"].format(start=start.strftime("%Y-%m-%d %H:%M:%S"),
                                                 end=end.strftime(end_format))


def message_id(incident_id: int, secret: str, sender: str) -> str:
    """Return the Message-ID of an incident's alert email: the same at every attempt, unique to this deployment
    (a digest of its clip-link secret, which it does not reveal) and to the incident."""
    deployment = hashlib.sha256(f"vigint message-id {secret}".encode()).hexdigest()[:16]
    return f"<incident-{incident_id}.{deployment}@{_domain(sender)}>"


def _domain(sender: str) -> str:
    return sender.rpartition("@")[2] or "localhost"


def compose_email(incident: Incident, client_name: str, client_email: str, link: str, expires: int,
                  alerts: AlertSettings, email: EmailSettings, secret: str,
                  timezone_name: str | None = None) -> EmailMessage:
    """Return the alert email for an incident, in the configured language and the client's time zone (None: the
    server's): text and HTML, dated, with the Message-ID of `message_id` (`secret`: the clip-link secret)."""
    template = TEMPLATES[alerts.language]
    kind = template["kinds"].get(incident.type, incident.type)
    clip = (template["clip"].format(expires=_when(expires, timezone_name), link=link) if incident.clip_path
            else template["no_clip"])
    ai_checked = incident.verdict != "not_checked"  # a threat level is the AI's: none without it
    fields = {"kind": kind, "camera": incident.camera, "when": _when(incident.started_at, timezone_name),
              "name": client_name, "description": offline_note(incident, alerts.language, timezone_name)
              + (f"{incident.description}\n" if incident.description else ""),
              "threat": template["threat"].format(threat=incident.threat) if ai_checked else "", "clip": clip}
    camera_event = incident.type in CAMERA_EVENTS
    text = template["event_body" if camera_event else "body"].format(**fields)
    message = _dated(email.sender, client_email, template["event_subject" if camera_event else "subject"].format(**fields),
                     message_id(incident.id, secret, email.sender))
    message.set_content(text)
    watch = template["watch"] if incident.clip_path and not camera_event else None
    message.add_alternative(_html(text, link if watch else None, watch), subtype="html")
    return message


def _html(text: str, link: str | None, watch: str | None) -> str:
    """Return the HTML part: the text's paragraphs, escaped, and the clip link as a button-like anchor."""
    paragraphs = "".join(f"<p>{html.escape(paragraph).replace(chr(10), '<br>')}</p>"
                         for paragraph in text.strip().split("\n\n"))
    button = (f'<p><a href="{html.escape(link)}" style="display:inline-block;padding:10px 16px;background:#1a56db;'
              f'color:#fff;text-decoration:none;border-radius:6px">{html.escape(watch)}</a></p>') if link else ""
    return (f'<!doctype html><html><body style="font-family:sans-serif;font-size:16px;line-height:1.4">'
            f"{paragraphs}{button}</body></html>")


def _dated(sender: str, recipient: str, subject: str, identifier: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, subject
    message["Date"], message["Message-ID"] = formatdate(usegmt=True), identifier
    return message


def text_of(message: EmailMessage) -> str:
    """Return the plain-text part of an email parsed with `email.policy.default`."""
    return message.get_body(("plain",)).get_content()


def compose_operator_email(flag: Flag, email: EmailSettings, recipient: str) -> EmailMessage:
    """Return the email telling the operator about an unusual-usage flag (always in English)."""
    subject = f"[Vigint] unusual usage: {flag.kind}" + (f" (client {flag.client_id})" if flag.client_id else "")
    message = _dated(email.sender, recipient, subject, make_msgid(domain=_domain(email.sender)))
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
