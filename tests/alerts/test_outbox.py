import asyncio
import dataclasses
import email
import email.policy
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from footage import make_jpeg
from helpers import Mailbox, add_client, eventually, free_port
from s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

from vigint.alerts import emails, outbox
from vigint.config import AlertSettings, EmailSettings, Settings, StorageSettings, WebSettings
from vigint.incidents.storage import open_clip_storage, still_name

SENDER = "alerts@vigint.test"
TARGET_TEXT = 'Vigint saw motion on camera "entrée" at'


def outbox_settings(tmp_path, smtp_port: int, **alerts) -> Settings:
    return Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                    email=EmailSettings(smtp_host="127.0.0.1", smtp_port=smtp_port, security="none", sender=SENDER),
                    alerts=AlertSettings(retry_seconds=0.1, max_retry_seconds=0.2, **alerts))


async def queue_incident(server, client_id: int, key_id: int, still: bytes | None = None, stills: int = 0):
    """Record a motion incident with a clip, `still` kept as its first, and queue its alerts, as the incident desk
    does; return it."""
    incident = await server.store.create_incident(client_id, key_id, "entrée", time.time())
    if still is not None:
        source = server.settings.storage.data_dir / "still.jpg"
        source.write_bytes(still)
        open_clip_storage(server.settings.storage).put(source, still_name(client_id, incident.id, 0))
    await server.store.update_incident(incident.id, clip_path=f"clips/{client_id}/{incident.id}.mp4", stills=stills)
    await server.store.enqueue_alerts(incident.id, server.outbox.channels, time.time())
    server.outbox.wake()
    return incident


async def test_a_french_client_s_alert_shows_the_still_inline_and_opens_the_incident_s_page(start, tmp_path,
                                                                                           mailbox):
    settings = dataclasses.replace(outbox_settings(tmp_path, mailbox.port),
                                   web=WebSettings(public_url="https://vigint.example/"))
    server = await start(settings=settings)
    client_id, key_id, _ = await add_client(server.store)
    await server.store.update_client(client_id, language="fr", timezone="Europe/Paris")
    incident = await queue_incident(server, client_id, key_id, make_jpeg(), stills=1)
    await eventually(lambda: mailbox.messages)
    [message] = mailbox.messages
    assert re.fullmatch(r"\[Vigint\] un mouvement sur entrée, le \d\d/\d\d/\d{4} à \d\d:\d\d:\d\d CES?T",
                        message["Subject"])
    assert message["Message-ID"] == emails.message_id(incident.id, server.outbox.secret, SENDER) and message["Date"]
    text, related = emails.text_of(message).replace("\r\n", "\n"), message.get_body(("related",))
    assert f"Voir l'incident :\nhttps://vigint.example/incidents/{incident.id}\n" in text
    assert "Niveau de menace" not in text  # no AI configured: no threat level
    page, image = related.get_payload()
    assert image.get_content_type() == "image/jpeg" and image.get_content() == make_jpeg()
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in page.get_content()


class Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        Webhook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_a_still_that_cannot_be_read_costs_the_picture_not_the_alert(start, tmp_path, mailbox, caplog):
    Webhook.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    caplog.set_level(logging.WARNING, "vigint.alerts.outbox")
    try:
        server = await start(settings=outbox_settings(tmp_path, mailbox.port, webhook_url=f"http://127.0.0.1:"
                                                      f"{receiver.server_port}/hook", webhook_secret="s3cret"))
        client_id, key_id, _ = await add_client(server.store)
        missing = await queue_incident(server, client_id, key_id, stills=1)
        garbled = await queue_incident(server, client_id, key_id, b"<html>not a picture</html>", stills=1)
        await eventually(lambda: len(mailbox.messages) == 2 and len(Webhook.received) == 2)
    finally:
        receiver.shutdown()
    for message in mailbox.messages:
        assert [part.get_content_type() for part in message.walk()] == ["multipart/alternative", "text/plain",
                                                                         "text/html"]
    warnings = [record.getMessage() for record in caplog.records]
    assert f"incident {missing.id}: still missing; alerting without it" in warnings
    assert f"incident {garbled.id}: still not a JPEG; alerting without it" in warnings
    # Without [web] public_url, the page is this server's own address on the page's port.
    page = f"http://127.0.0.1:{server.page.port}/incidents/{missing.id}"
    assert page in emails.text_of(mailbox.messages[0])
    hook = next(body for body in Webhook.received if body["incident_id"] == missing.id)
    assert hook["page_url"] == page and f"/clips/{missing.id}?" in hook["clip_url"]


async def test_a_still_the_storage_cannot_give_is_left_out_with_a_warning_that_holds_no_secret(start, tmp_path,
                                                                                             mailbox, caplog):
    storage = StorageSettings(data_dir=tmp_path / "data", clips="s3://clips/site-a", s3_region=REGION,
                              s3_endpoint=f"http://127.0.0.1:{free_port()}",  # nothing listens there
                              s3_access_key_id=ACCESS_KEY_ID, s3_secret_access_key=SECRET_ACCESS_KEY)
    caplog.set_level(logging.WARNING, "vigint.alerts.outbox")
    server = await start(settings=dataclasses.replace(outbox_settings(tmp_path, mailbox.port), storage=storage))
    client_id, key_id, _ = await add_client(server.store)
    incident = await queue_incident(server, client_id, key_id, stills=1)
    await eventually(lambda: mailbox.messages, timeout=30)
    assert mailbox.messages[0].get_body(("related",)) is None and TARGET_TEXT in emails.text_of(mailbox.messages[0])
    [warning] = [record.getMessage() for record in caplog.records if record.name == "vigint.alerts.outbox"]
    assert warning.startswith(f"incident {incident.id}: still not read (cannot read clip clips/{client_id}/"
                              f"{incident.id}-0.jpg from s3://clips/site-a") and SECRET_ACCESS_KEY not in warning


class Refusing(Mailbox):
    """An SMTP server answering "try later" to every message while `refusing`, keeping what it refused."""

    def __init__(self):
        super().__init__()
        self.refusing, self.refused = True, []

    async def handle_DATA(self, server, session, envelope):
        if not self.refusing:
            return await super().handle_DATA(server, session, envelope)
        self.refused.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "451 4.3.0 try again later"


async def test_an_alert_sent_again_after_a_restart_is_the_same_message(start, tmp_path):
    box = Refusing()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = outbox_settings(tmp_path, controller.port)
        first = await start(settings=settings)
        client_id, key_id, _ = await add_client(first.store)
        await queue_incident(first, client_id, key_id, make_jpeg(), stills=1)
        await eventually(lambda: box.refused)
        await first.stop()
        box.refusing = False
        second = await start(settings=settings)
        await eventually(lambda: second.metrics.alerts_delivered == 1)  # recorded once the mail has left
    finally:
        controller.stop()
    [delivered], tried = box.messages, box.refused[0]
    assert delivered["Message-ID"] == tried["Message-ID"]  # the customer's mail client sees one message
    assert delivered["Date"] and tried["Date"]
    assert delivered.get_body(("related",)) is not None  # with its still, as the first attempt was


def test_a_clip_link_works_as_long_as_the_clip_is_kept_unless_a_lifetime_is_set():
    kept = Settings(storage=StorageSettings(retention_days=30))
    assert outbox.link_expiry(kept, 1_767_225_600.0, now=1_767_300_000) == 1_767_225_600 + 30 * 86400
    week = dataclasses.replace(kept, alerts=AlertSettings(link_ttl_hours=168))
    assert outbox.link_expiry(week, 1_767_225_600.0, now=1_767_300_000) == 1_767_300_000 + 7 * 86400


OPERATOR = "operator@vigint.test"


class Refuses(Mailbox):
    """An SMTP server answering `reply` (e.g. 550) to every recipient but the operator, counting the refusals."""

    def __init__(self, reply: str):
        super().__init__()
        self.reply, self.refusals = reply, 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address != OPERATOR and self.reply:
            self.refusals += 1
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def smtp():
    """Start an SMTP server on loopback with a given handler; stopped after the test."""
    controllers = []

    def run(handler: Mailbox) -> Mailbox:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        controllers.append(controller)
        handler.port = controller.port
        return handler

    yield run
    for controller in controllers:
        controller.stop()


def dead_letter_settings(tmp_path, port: int, **alerts) -> Settings:
    return outbox_settings(tmp_path, port, operator_email=OPERATOR, monitor_seconds=0.05, **alerts)


async def test_an_alert_refused_for_good_is_tried_once_kept_listed_and_emailed_to_the_operator_once(start, tmp_path,
                                                                                                   smtp, cli, caplog):
    box = smtp(Refuses("550 5.1.1 <ops@acme.test>: mailbox unavailable [/]"))  # [/]: not rich markup to us
    caplog.set_level(logging.WARNING, "vigint.alerts.outbox")
    server = await start(settings=dead_letter_settings(tmp_path, box.port))
    client_id, key_id, _ = await add_client(server.store)
    incident = await queue_incident(server, client_id, key_id)
    await eventually(lambda: box.messages)  # the operator's email about it
    [warned] = box.messages
    assert warned["To"] == OPERATOR and warned["Subject"] == f"[Vigint] alert given up (client {client_id})"
    body = emails.text_of(warned)
    assert f"email alert to ops@acme.test of incident {incident.id}" in body and "550 5.1.1" in body
    assert (await server.store.get_incident(incident.id)).alert_state == "dead"
    await asyncio.sleep(1.0)  # ten retry delays, twenty monitor passes: nothing more goes out
    assert box.refusals == 1 and len(box.messages) == 1 and server.metrics.alerts_delivered == 0
    assert await server.store.due_alerts(time.time() + 9e9) == []  # never claimed again, still there
    [given_up] = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert given_up.startswith(f"incident {incident.id}: email alert given up: recipient refused: 550 5.1.1")
    listed = (await asyncio.to_thread(cli, "alerts", "--json")).json()
    [flag] = [entry for entry in listed if entry["kind"] == "undeliverable"]
    assert flag["client_id"] == client_id and flag["emailed_at"]
    assert f"incident {incident.id}" in flag["detail"] and "550 5.1.1" in flag["detail"]
    table = (await asyncio.to_thread(cli, "alerts")).out
    assert "undeliverable" in table and "[/]" in table  # the table wraps the detail


async def test_an_alert_answered_try_later_is_retried_until_the_server_recovers(start, tmp_path, smtp):
    box = smtp(Refuses("451 4.3.0 try again later"))
    server = await start(settings=dead_letter_settings(tmp_path, box.port))
    client_id, key_id, _ = await add_client(server.store)
    incident = await queue_incident(server, client_id, key_id)
    await eventually(lambda: box.refusals >= 3)
    box.reply = ""  # the server recovers
    await eventually(lambda: server.metrics.alerts_delivered == 1)
    [delivered] = box.messages
    assert delivered["To"] == "ops@acme.test" and TARGET_TEXT in emails.text_of(delivered)
    assert (await server.store.get_incident(incident.id)).alert_state == "delivered"
    assert await server.store.flags() == []


async def test_an_alert_failing_max_attempts_times_is_given_up(start, tmp_path, smtp):
    box = smtp(Refuses("451 4.3.0 try again later"))
    server = await start(settings=dead_letter_settings(tmp_path, box.port, max_attempts=3))
    client_id, key_id, _ = await add_client(server.store)
    incident = await queue_incident(server, client_id, key_id)
    [flag] = await eventually(lambda: server.store.flags(), timeout=15)
    assert "after 3 attempt(s): not delivered after 3 attempts, the last: {'ops@acme.test': (451" in flag.detail
    await eventually(lambda: len(box.messages) == 1)  # the operator's
    assert box.refusals == 3 and (await server.store.get_incident(incident.id)).alert_state == "dead"


async def test_an_alert_whose_email_cannot_be_built_is_given_up_at_once(start, tmp_path, mailbox):
    server = await start(settings=outbox_settings(tmp_path, mailbox.port))
    client_id, key_id, _ = await add_client(server.store)
    incident = await server.store.create_incident(client_id, key_id, "entrée", time.time())
    await server.store.update_incident(incident.id, type="intrusion\r\nBcc: everyone@example.test")  # as stored once
    await server.store.enqueue_alerts(incident.id, server.outbox.channels, time.time())
    server.outbox.wake()
    [flag] = await eventually(lambda: server.store.flags())
    assert "after 1 attempt(s): the email cannot be built: Header values may not contain linefeed" in flag.detail
    assert mailbox.messages == []


class Answering(BaseHTTPRequestHandler):
    """A webhook receiver answering each POST with the next status of `statuses` (the last one for ever)."""

    statuses: list[int] = []
    seen: list[int] = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        status = Answering.statuses.pop(0) if len(Answering.statuses) > 1 else Answering.statuses[0]
        Answering.seen.append(status)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("statuses, delivered", [([410], False), ([400], False), ([503, 429, 408, 500, 204], True)])
async def test_a_webhook_refused_with_a_4xx_is_given_up_and_5xx_408_429_are_retried(start, tmp_path, statuses,
                                                                                   delivered):
    Answering.statuses, Answering.seen = list(statuses), []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"), alerts=AlertSettings(
            retry_seconds=0.05, max_retry_seconds=0.1, webhook_url=f"http://127.0.0.1:{receiver.server_port}/hook?"
                                                                    "token=hunter2", webhook_secret="s"))
        server = await start(settings=settings)
        client_id, key_id, _ = await add_client(server.store)
        incident = await queue_incident(server, client_id, key_id)
        state = await eventually(lambda: state_of(server, incident.id, {"delivered", "dead"}))
        await asyncio.sleep(0.5)  # retry delays: a dead letter is not tried again
    finally:
        receiver.shutdown()
    assert state == ("delivered" if delivered else "dead") and Answering.seen == statuses
    flags = await server.store.flags()
    assert [f.kind for f in flags] == ([] if delivered else ["undeliverable"])
    if flags:
        assert f"answered {statuses[0]}" in flags[0].detail and "hunter2" not in flags[0].detail


async def state_of(server, incident_id: int, wanted: set[str]) -> str | None:
    state = (await server.store.get_incident(incident_id)).alert_state
    return state if state in wanted else None
