"""Alert emails to customers, flag and key-expiry emails to the operator: composed, then sent (blocking:
worker threads).

An alert is a text part and an HTML part (every value escaped: a camera name or an AI's description is the
customer's or a model's text) saying the same, in the client's language and time zone (templates.py), with the
`Date` and `Message-ID` headers RFC 5322 asks for. Its main link opens the incident on the customer's page;
the signed clip link is a direct download. When the incident has a still, the HTML part shows it inline
(multipart/related: the image travels with the email, so no remote image is loaded to show it).

The Message-ID is derived from the incident and the deployment rather than stored: an alert sent again after a
crash or a failed attempt keeps it (the customer's mail client shows one message, not two) without a write
before each attempt, and whichever node sends it derives the same one.
"""

import hashlib
import html
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email import errors
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from vigint.alerts import templates
from vigint.alerts.links import CAMERA_EVENTS, AlertLinks
from vigint.config import AlertSettings, EmailSettings
from vigint.errors import Undeliverable
from vigint.files import write_private
from vigint.keys import expires_in
from vigint.store import Alert, ApiKey, Client, Flag, FlagKind

BUTTON_STYLE = ("display:inline-block;padding:10px 16px;background:#1a56db;color:#fff;text-decoration:none;"
                "border-radius:6px")
STILL_WIDTH = 480  # pixels: fits a phone's mail client; wider screens scale it no further


@dataclass(frozen=True)
class Content:
    """What an alert says, rendered alike as its text part and its HTML part."""

    subject: str
    greeting: str
    lines: tuple[str, ...]  # what happened, one paragraph
    action: tuple[str, str]  # label and address of the main link (a button in HTML)
    download: tuple[str, str, str] | None  # label, clip link and its validity; None: no clip to download
    note: str  # said after the links (no clip saved), or empty
    mutes: tuple[tuple[str, str], ...]  # label and signed link of each way to mute the camera; () for none
    mute_note: str  # said under the mute links, or empty
    signature: str
    still_label: str  # the inline still's alternative text


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def message_id(incident_id: int, secret: str, sender: str) -> str:
    """Return the Message-ID of an incident's alert email: the same at every attempt, unique to this
    deployment (a digest of its clip-link secret, which it does not reveal) and to the incident."""
    deployment = hashlib.sha256(f"vigint message-id {secret}".encode()).hexdigest()[:16]
    return f"<incident-{incident_id}.{deployment}@{_domain(sender)}>"


def _domain(sender: str) -> str:
    return sender.rpartition("@")[2] or "localhost"


def _content(alert: Alert, targets: AlertLinks, language: str) -> Content:
    """Return what an alert says in `language`: an incident with its page and clip, or a camera event (its
    description, written in the client's words when it was recorded) with the page."""
    incident = alert.incident
    template = templates.TEMPLATES[language]
    zone = alert.client_timezone
    fields = {"kind": template["kinds"].get(incident.type, incident.type), "camera": incident.camera,
              "when": templates.when(incident.started_at, language, zone)}
    greeting = template["greeting"].format(name=alert.client_name)
    common = {"greeting": greeting, "signature": template["signature"],
              "still_label": template["still"].format(**fields)}
    if incident.type in CAMERA_EVENTS:
        return Content(template["event_subject"].format(**fields), lines=(incident.description,),
                       action=(template["open_cameras"], targets.page), download=None, note="", mutes=(),
                       mute_note="", **common)
    ai_checked = incident.verdict != "not_checked"  # a threat level is the AI's: none without it
    lines = [template["seen"].format(**fields), templates.offline_note(incident, language, zone),
             incident.description, template["threat"].format(threat=incident.threat) if ai_checked else ""]
    download = (template["download"], targets.clip, template["valid_until"].format(
        expires=templates.when(targets.clip_expires, language, zone))) if incident.clip_path else None
    mutes = tuple((template[f"mute_{choice}"], link) for choice, link in targets.mutes)
    return Content(template["subject"].format(**fields), lines=tuple(line for line in lines if line),
                   action=(template["open"], targets.page), download=download,
                   note="" if download else template["no_clip"], mutes=mutes,
                   mute_note=template["mute_note"] if mutes else "", **common)


def compose_email(alert: Alert, targets: AlertLinks, alerts: AlertSettings, email: EmailSettings, secret: str,
                  still: bytes | None = None) -> EmailMessage:
    """Return the email of an alert, in the client's language and time zone (else the server's): text and
    HTML, dated, with the Message-ID of `message_id` (`secret`: the clip-link secret), and `still` (JPEG
    bytes), if given, shown inline in the HTML part.

    Raises:
        Undeliverable: the alert's values make no valid email (a header with a line break, an unusable
            address).
    """
    try:
        return _compose(alert, targets, alerts, email, secret, still)
    except (ValueError, LookupError, TypeError, errors.MessageError) as error:
        # the same values fail every time
        raise Undeliverable(f"the email cannot be built: {one_line(str(error))}") from None


def _compose(alert: Alert, targets: AlertLinks, alerts: AlertSettings, email: EmailSettings, secret: str,
             still: bytes | None) -> EmailMessage:
    language = templates.choose_language(alert.client_language, alerts.language)
    content = _content(alert, targets, language)
    identifier = message_id(alert.incident.id, secret, email.sender)
    message = _dated(email, alert.client_email, content.subject, identifier)
    message.set_content(_text(content, templates.TEMPLATES[language]["colon"]))
    cid = f"<still.{identifier[1:]}" if still else None  # as stable as the Message-ID
    message.add_alternative(_html(content, cid), subtype="html")
    if still:
        message.get_body(("html",)).add_related(still, "image", "jpeg", cid=cid, disposition="inline",
                                                filename=f"incident-{alert.incident.id}.jpg")
    return message


def _text(content: Content, colon: str) -> str:
    """Return the text part: paragraphs, each link on a line of its own under its label."""
    label, address = content.action
    paragraphs = [content.greeting, "\n".join(content.lines), f"{label}{colon}\n{address}"]
    if content.download:
        label, address, validity = content.download
        paragraphs.append(f"{label} ({validity}){colon}\n{address}")
    paragraphs += [f"{label}{colon}\n{address}" for label, address in content.mutes]
    notes = [text for text in (content.mute_note, content.note) if text]
    return "\n\n".join([*paragraphs, *notes, content.signature]) + "\n"


def _html(content: Content, cid: str | None) -> str:
    """Return the HTML part: the text's paragraphs escaped, the still (`cid`: its Content-ID, if any) and the
    main link as a button, both opening the page, the clip's download link and the links muting the camera."""
    label, address = (html.escape(part) for part in content.action)
    blocks = [html.escape(content.greeting), "<br>".join(html.escape(line) for line in content.lines)]
    if cid:
        blocks.append(f'<a href="{address}"><img src="cid:{html.escape(cid[1:-1])}" '
                      f'alt="{html.escape(content.still_label)}" width="{STILL_WIDTH}" '
                      'style="max-width:100%;height:auto;border:0;border-radius:6px"></a>')
    blocks.append(f'<a href="{address}" style="{BUTTON_STYLE}">{label}</a>')
    if content.download:
        download, clip, validity = (html.escape(part) for part in content.download)
        blocks.append(f'<a href="{clip}">{download}</a> ({validity})')
    if content.mutes:
        blocks.append(" · ".join(f'<a href="{html.escape(link)}">{html.escape(label)}</a>'
                                 for label, link in content.mutes))
    blocks += [html.escape(text) for text in (content.mute_note, content.note, content.signature) if text]
    paragraphs = "".join(f"<p>{block.replace(chr(10), '<br>')}</p>"  # a description's lines
                         for block in blocks)
    return ('<!doctype html><html><body style="font-family:sans-serif;font-size:16px;line-height:1.4">'
            f"{paragraphs}</body></html>")


def _dated(email: EmailSettings, recipient: str, subject: str, identifier: str | None = None) -> EmailMessage:
    """A new message from the configured sender, dated now; its Message-ID `identifier`, else a fresh one."""
    message = EmailMessage()
    message["From"] = email.sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = identifier or make_msgid(domain=_domain(email.sender))
    return message


def text_of(message: EmailMessage) -> str:
    """Return the plain-text part of an email parsed with `email.policy.default`."""
    return message.get_body(("plain",)).get_content()


def compose_operator_email(flag: Flag, email: EmailSettings, recipient: str) -> EmailMessage:
    """Return the email telling the operator about a flag: unusual usage, or an alert given up (always in
    English)."""
    topic = "alert given up" if flag.kind is FlagKind.UNDELIVERABLE else f"unusual usage: {flag.kind}"
    subject = f"[Vigint] {topic}" + (f" (client {flag.client_id})" if flag.client_id else "")
    message = _dated(email, recipient, subject)
    message.set_content(f"{flag.detail}\n\nFlagged at {_utc(flag.at)} UTC. See `vigint alerts`.\n")
    return message


def compose_key_expiry_email(key: ApiKey, client: Client, now: float, email: EmailSettings,
                             recipient: str) -> EmailMessage:
    """Return the email warning the operator that a key still in use expires soon, naming the fix (in
    English)."""
    soon = expires_in(key.expires_at, now)
    subject = f"[Vigint] key {key.prefix}… of client {client.id} ({client.name}) {soon}"
    message = _dated(email, recipient, subject)
    label = f", {key.label!r}" if key.label else ""
    message.set_content(
        f"Key {key.id} ({key.prefix}…{label}) of client {client.id} ({client.name}, {client.email}) stops "
        f"working on {_utc(key.expires_at)} UTC ({soon}), and it streamed within the last days (last at "
        f"{_utc(key.last_used_at)} UTC). Agents still using it will be refused from then on.\n\n"
        f"If it was rotated, move its agents to its successor (`vigint key list --client-id {client.id}`). "
        f"Otherwise rotate it now and send the customer the link printed:\n\n"
        f"    vigint key rotate --key-id {key.id} --handover\n")
    return message


def compose_sign_in_email(recipient: str, link: str, minutes: float, language: str,
                          email: EmailSettings) -> EmailMessage:
    """Return the email carrying a one-time sign-in link to the customer's page, in its language."""
    template = templates.TEMPLATES[language]
    message = _dated(email, recipient, template["sign_in_subject"])
    message.set_content(template["sign_in"].format(link=link, minutes=f"{minutes:g}") + "\n")
    return message


def one_line(text: str, limit: int = 200) -> str:
    """Return a receiver's words (an SMTP reply, an error) on one line of at most `limit` characters, for a
    log line or a flag."""
    return " ".join(text.split())[:limit]


def _reply(code: int, text: bytes | str) -> str:
    return f"{code} {one_line(text.decode(errors='replace') if isinstance(text, bytes) else str(text))}"


def refusal(error: Exception) -> str | None:
    """Return why an SMTP server refused a message for good, or None if sending it again may work.

    A 5xx reply to the message's recipient or content is final, as is a message the server cannot take (an
    address that needs SMTPUTF8 it lacks) or that cannot be encoded; a 4xx reply, a lost connection, a refused
    login or sender (the server's setup, the same for every alert: the operator fixes it) are retried.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = list(error.recipients.values())
        if replies and all(code >= 500 for code, _ in replies):
            return f"recipient refused: {_reply(*replies[0])}"
    elif isinstance(error, smtplib.SMTPDataError) and error.smtp_code >= 500:
        return f"message refused: {_reply(error.smtp_code, error.smtp_error)}"
    elif isinstance(error, smtplib.SMTPNotSupportedError | ValueError):  # UnicodeError is a ValueError
        return f"the email cannot be sent as it is: {one_line(str(error))}"
    return None


class _Answered:
    """Keeps the server's reply to the message itself (to DATA: "250 2.0.0 Ok: queued as 4F2…"), which smtplib
    drops, for `vigint email test` to show."""

    answer: tuple[int, bytes] = (0, b"")

    def data(self, msg):
        self.answer = super().data(msg)
        return self.answer


class _Smtp(_Answered, smtplib.SMTP):
    pass


class _SmtpSsl(_Answered, smtplib.SMTP_SSL):
    pass


def compose_test_email(email: EmailSettings, recipient: str, server: str) -> EmailMessage:
    """Return the message `vigint email test` sends: it says where it came from and that nothing is wrong."""
    message = _dated(email, recipient, "[Vigint] test message")
    sent = f"This message was sent by `vigint email test` through {server}, at {_utc(time.time())} UTC.\n"
    message.set_content(sent + "If you read it, alert emails reach this address.\n")
    return message


def send_email(settings: EmailSettings, message: EmailMessage) -> str:
    """Send one email over SMTP (STARTTLS, SSL or plain, with optional login), or write it to capture_dir;
    return the server's answer to it ("250 Ok: queued as …"), or where it was written.

    Raises:
        Undeliverable: the server refused this message for good (see `refusal`).
        OSError, SMTPException: a failure worth retrying.
    """
    if settings.capture_dir is not None:
        path = settings.capture_dir / f"{time.time_ns()}.eml"
        write_private(path, bytes(message))  # it carries clip links
        return f"written to {path}"
    context = ssl.create_default_context()
    if settings.security == "ssl":
        client = _SmtpSsl(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds,
                          context=context)
    else:
        client = _Smtp(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password)
        try:
            client.send_message(message)
        except (smtplib.SMTPException, ValueError) as error:
            if (reason := refusal(error)) is None:
                raise
            raise Undeliverable(reason) from None
    return _reply(*client.answer)
