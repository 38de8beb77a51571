import asyncio
import dataclasses
import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import av
import pytest
from aiosmtpd.controller import Controller
from footage import make_scene, open_stream, send_video
from helpers import REALTIME, Mailbox, add_client, eventually, free_port, link_in, top_level_boxes, url

from vigint.alerts import emails, links, webhooks
from vigint.config import (
    AiSettings,
    AlertSettings,
    CameraSettings,
    EmailSettings,
    MotionSettings,
    Settings,
    StorageSettings,
)
from vigint.incidents.retention import Retention
from vigint.store import Store


def incident_settings(tmp_path, smtp_port: int | None = None, **sections) -> Settings:
    return Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                    motion=MotionSettings(cooldown_seconds=5),
                    email=EmailSettings(smtp_host="127.0.0.1" if smtp_port else "", smtp_port=smtp_port or 25,
                                        security="none", sender="alerts@vigint.test"),
                    alerts=AlertSettings(retry_seconds=0.3, max_retry_seconds=0.5), **sections)


async def stream_scene(server, api_key: str, video, camera: str = "shop", speed: float = 20) -> list[dict]:
    """Stream a scene at `speed` × real time; return the notices the server pushed meanwhile."""
    connection, _ = await open_stream(url(server), api_key, camera)
    notices = []

    async def listen():
        async for message in connection:
            notices.append(json.loads(message))

    listener = asyncio.create_task(listen())
    await send_video(connection, video, speed=speed)
    await connection.close()
    await listener
    return notices


async def delivered_incident(server, client_id: int, timeout: float = 5.0):
    """Return the client's one incident once its alert is recorded as delivered (just after the mail left)."""
    deadline = time.monotonic() + timeout
    while True:
        [incident] = await server.store.list_incidents(client_id)
        if incident.alert_state == "delivered" or time.monotonic() > deadline:
            return incident
        await asyncio.sleep(0.02)


def fetch(link: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(link, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


async def test_a_moving_object_gives_one_incident_one_clip_and_one_email(start, tmp_path, mailbox):
    server = await start(settings=incident_settings(tmp_path, mailbox.port))
    client_id, _, api_key = await add_client(server.store)
    await server.store.update_client(client_id, timezone="Asia/Tokyo")
    # 8× real time, not 20×: the ring keeps long_buffer_seconds (10) of what was received, so analysis running more
    # than 5 s of footage behind receipt (20× on a loaded machine) finds the pre-roll gone. Cameras send at 1×.
    notices = await stream_scene(server, api_key, make_scene(25, moving=(8, 11)), speed=8)
    await eventually(lambda: len(mailbox.messages) == 1, timeout=20)
    await delivered_incident(server, client_id)
    await server.desk.drain()  # the stream ended: its incident closed, its clip is finished
    [incident] = await server.store.list_incidents(client_id)
    assert notices == [{"type": "incident", "incident_id": incident.id, "camera": "shop", "kind": "motion",
                        "description": "", "threat": 0, "started_at": notices[0]["started_at"]}]
    assert incident.type == "motion" and incident.clip_path and incident.alert_state == "delivered"
    clip = tmp_path / "data" / incident.clip_path
    with av.open(str(clip)) as container:
        duration = container.duration / 1e6
        frames = sum(1 for _ in container.decode(video=0))
    assert abs(duration - (5 + incident.ended_at - incident.started_at + 5)) <= 1  # pre-roll, event, post-roll
    assert frames >= duration * 15 - 1  # every frame of it decodes
    [message] = mailbox.messages
    assert message["To"] == "ops@acme.test" and "shop" in message["Subject"] and message["Subject"].endswith(" JST")
    status, body = await asyncio.to_thread(fetch, link_in(message))
    assert status == 200 and body == clip.read_bytes()
    expires = int(parse_qs(urlsplit(link_in(message)).query)["exp"][0])
    assert expires == int(incident.started_at + 30 * 86400)  # the link works as long as the clip is kept
    boxes = top_level_boxes(body)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart: a phone plays it while it downloads
    await asyncio.sleep(1)
    assert len(mailbox.messages) == 1 and server.metrics.incidents == 1


def get(link: str, **headers: str) -> tuple[int, Message, bytes]:
    """GET a link (following redirects); return the status, the headers (names in any case) and the body."""
    request = urllib.request.Request(link, headers={name.replace("_", "-"): value for name, value in headers.items()})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, b""


async def test_a_clip_link_answers_byte_ranges_as_video_players_ask(start, tmp_path, mailbox):
    server = await start(settings=incident_settings(tmp_path, mailbox.port))
    client_id, _, api_key = await add_client(server.store)
    await stream_scene(server, api_key, make_scene(16, moving=(4, 7)))
    await eventually(lambda: len(mailbox.messages) == 1, timeout=20)
    link = link_in(mailbox.messages[0])
    await server.desk.drain()  # the clip is finished
    clip = (tmp_path / "data" / (await delivered_incident(server, client_id)).clip_path).read_bytes()
    status, headers, body = await asyncio.to_thread(get, link, Range="bytes=0-1")
    assert (status, body, headers["Accept-Ranges"]) == (206, clip[:2], "bytes")
    assert headers["Content-Range"] == f"bytes 0-1/{len(clip)}" and headers["Content-Length"] == "2"
    status, headers, body = await asyncio.to_thread(get, link, Range="bytes=-100")
    assert (status, body) == (206, clip[-100:])
    status, headers, _ = await asyncio.to_thread(get, link, Range=f"bytes={len(clip)}-")
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(clip)}")
    status, headers, body = await asyncio.to_thread(get, link)
    assert (status, body) == (200, clip)
    assert (await asyncio.to_thread(get, link, If_None_Match=headers["ETag"]))[0] == 304  # the player has it
    status, _, body = await asyncio.to_thread(get, link, Range="bytes=0-1", If_Range='"another-version"')
    assert (status, body) == (200, clip)  # the clip changed since the player's first part: all of it again


@pytest.mark.parametrize("scene", [{"seconds": 20}, {"seconds": 20, "brightness_jump_at": 8}],
                         ids=["static-with-noise", "brightness-jump"])
async def test_no_incident_without_motion(start, tmp_path, scene):
    server = await start(settings=incident_settings(tmp_path))
    client_id, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key, "shop")
    await send_video(connection, make_scene(**scene))
    await eventually(lambda: server.metrics.frames_decoded == 20 * 15)
    await connection.close()
    await eventually(lambda: not server.streams.of_client(client_id))
    assert await server.store.list_incidents(client_id) == [] and server.metrics.incidents == 0


@REALTIME
async def test_three_minutes_of_motion_is_one_extended_incident(start, tmp_path):
    server = await start(settings=dataclasses.replace(incident_settings(tmp_path), motion=MotionSettings()))
    client_id, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key, "shop")
    video = make_scene(200, moving=(10, 190), fps=5)
    await send_video(connection, video)
    await eventually(lambda: server.metrics.frames_decoded == video.frames, timeout=60)
    await connection.close()
    await eventually(lambda: not server.streams.of_client(client_id))
    await server.desk.drain()
    [incident] = await server.store.list_incidents(client_id)
    # The square leaves at 190 s; the background takes a few seconds to forget its last positions.
    assert 175 <= incident.ended_at - incident.started_at <= 192


async def test_alert_waits_for_smtp_across_a_server_restart_and_arrives_once(start, tmp_path):
    smtp_port = free_port()
    settings = incident_settings(tmp_path, smtp_port)
    first = await start(settings=settings)
    client_id, _, api_key = await add_client(first.store)
    await stream_scene(first, api_key, make_scene(20, moving=(7, 10)))
    await eventually(lambda: first.metrics.alerts_failed >= 1, timeout=20)
    port = first.port
    await first.stop()
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        second = await start(settings=settings, port=port)
        await eventually(lambda: len(box.messages) == 1, timeout=20)
        await asyncio.sleep(1.5)
        assert len(box.messages) == 1
        [incident] = await second.store.list_incidents(client_id)
        assert incident.alert_state == "delivered"
    finally:
        controller.stop()


class FakeAi(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint answering with `reply` (a dict, or raw bytes)."""

    reply: object = None
    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeAi.requests.append((self.path, self.headers["Authorization"], body))
        data = self.reply if isinstance(self.reply, bytes) else json.dumps(self.reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_ai():
    FakeAi.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def openai_reply(content: str, tokens: int = 321) -> dict:
    return {"choices": [{"message": {"content": content}}], "usage": {"total_tokens": tokens}}


def ai_settings(port: int, when_unreachable: str = "motion") -> AiSettings:
    return AiSettings(provider="openai", url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", model="vision",
                      when_unreachable=when_unreachable)


async def run_ai_case(start, tmp_path, mailbox, ai: AiSettings):
    server = await start(settings=incident_settings(tmp_path, mailbox.port, ai=ai))
    client_id, key_id, api_key = await add_client(server.store)
    await stream_scene(server, api_key, make_scene(20, moving=(7, 10)))
    await eventually(lambda: server.metrics.incidents == 1, timeout=20)
    await server.desk.drain()  # the verdict is in and the alert queued (or suppressed): no mail comes later
    [incident] = await server.store.list_incidents(client_id)
    return server, incident, key_id


async def test_ai_says_no_so_no_alert(start, tmp_path, mailbox, fake_ai):
    FakeAi.reply = openai_reply('{"incident": false, "type": "other", "description": "a shadow", "threat_level": 0}')
    server, incident, key_id = await run_ai_case(start, tmp_path, mailbox, ai_settings(fake_ai.server_port))
    assert (incident.verdict, incident.alert_state, incident.description) == ("rejected", "suppressed", "a shadow")
    assert mailbox.messages == []
    path, authorization, body = FakeAi.requests[0]
    assert path == "/v1/chat/completions" and authorization == "Bearer sk-test"
    images = [part for part in body["messages"][0]["content"] if part["type"] == "image_url"]
    assert len(images) == 3 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,/9j/")
    await server.flush_usage()
    [row] = await server.store.usage_report(None, None, None)
    assert (row.ai_calls, row.ai_tokens) == (1, 321)


async def test_ai_says_yes_so_the_alert_carries_its_verdict(start, tmp_path, mailbox, fake_ai):
    FakeAi.reply = openai_reply('```json\n{"incident": true, "type": "intrusion", "description": "A person climbs '
                                'in.", "threat_level": 2}\n```')
    _, incident, _ = await run_ai_case(start, tmp_path, mailbox, ai_settings(fake_ai.server_port))
    assert (incident.verdict, incident.type, incident.threat) == ("confirmed", "intrusion", 2)
    await eventually(lambda: len(mailbox.messages) == 1)
    assert "A person climbs in." in emails.text_of(mailbox.messages[0])


async def test_malformed_ai_reply_is_recorded_without_a_crash(start, tmp_path, mailbox, fake_ai):
    FakeAi.reply = b"<html>502 Bad Gateway</html>"
    server, incident, _ = await run_ai_case(start, tmp_path, mailbox, ai_settings(fake_ai.server_port, "record"))
    assert (incident.verdict, incident.alert_state) == ("unverified", "suppressed")
    assert server.metrics.ai_calls["malformed"] == 1


@pytest.mark.parametrize("fallback, alerted", [("motion", True), ("record", False)])
async def test_unreachable_ai_follows_the_configured_fallback(start, tmp_path, mailbox, fallback, alerted):
    _, incident, _ = await run_ai_case(start, tmp_path, mailbox, ai_settings(free_port(), fallback))
    assert incident.verdict == "unverified"
    if alerted:
        await eventually(lambda: len(mailbox.messages) == 1)
    else:
        assert incident.alert_state == "suppressed" and mailbox.messages == []


async def test_tampered_expired_and_cross_client_links_are_refused(start, tmp_path, mailbox):
    server = await start(settings=incident_settings(tmp_path, mailbox.port))
    first_id, _, first_key = await add_client(server.store)
    _, _, second_key = await add_client(server.store, "b@b.test", "Beta")
    await asyncio.gather(stream_scene(server, first_key, make_scene(20, moving=(7, 10))),
                         stream_scene(server, second_key, make_scene(20, moving=(7, 10))))
    await eventually(lambda: len(mailbox.messages) == 2, timeout=30)
    sent = {message["To"]: link_in(message) for message in mailbox.messages}
    mine, theirs = sent["ops@acme.test"], sent["b@b.test"]
    assert (await asyncio.to_thread(fetch, mine))[0] == 200
    parts = urlsplit(mine)
    query = parse_qs(parts.query)
    their_id = urlsplit(theirs).path.rsplit("/", 1)[1]
    base = f"{parts.scheme}://{parts.netloc}/clips/"
    my_id = parts.path.rsplit("/", 1)[1]
    forged = [
        f"{base}{their_id}?{parts.query}",  # my signature on their incident
        f"{base}{my_id}?exp={int(query['exp'][0]) + 1}&sig={query['sig'][0]}",  # a later expiry
        f"{base}{my_id}?exp={query['exp'][0]}&sig={'0' * 64}",  # a made-up signature
        f"{base}{my_id}",  # no signature
    ]
    for forgery in forged:
        assert (await asyncio.to_thread(fetch, forgery))[0] == 403, forgery
    [incident] = await server.store.list_incidents(first_id)
    expired = links.clip_link(server.outbox.base_url, server.outbox.secret, incident, int(time.time()) - 1)
    assert (await asyncio.to_thread(fetch, expired))[0] == 403


class Webhook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Webhook.received.append((self.headers["X-Vigint-Signature"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_webhook_is_signed_and_incidents_list_shows_delivery(start, tmp_path, db_path):
    Webhook.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        settings = incident_settings(tmp_path)
        settings = dataclasses.replace(settings, alerts=dataclasses.replace(
            settings.alerts, webhook_url=f"http://127.0.0.1:{receiver.server_port}/hook", webhook_secret="s3cret"))
        server = await start(settings=settings)
        client_id, _, api_key = await add_client(server.store)
        await stream_scene(server, api_key, make_scene(20, moving=(7, 10)))
        await eventually(lambda: len(Webhook.received) == 1, timeout=20)
    finally:
        receiver.shutdown()
    signature, body = Webhook.received[0]
    assert signature == webhooks.webhook_signature("s3cret", body)
    document = json.loads(body)
    assert document["type"] == "incident" and document["camera"] == "shop" and "/clips/" in document["clip_url"]
    await eventually(lambda: server.metrics.alerts_delivered == 1)
    listed = await asyncio.to_thread(run_cli, "incidents", "list", "--client-id", str(client_id), "--json",
                                     "--db", str(db_path))
    [row] = json.loads(listed)
    assert (row["camera"], row["alert_state"], row["type"]) == ("shop", "delivered", "motion") and row["clip"]
    await server.flush_usage()
    usage = await asyncio.to_thread(run_cli, "usage", "--json", "--db", str(db_path))
    [row] = json.loads(usage)
    assert (row["incidents"], row["alerts_sent"]) == (1, 1) and row["stream_seconds"] > 0


def run_cli(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "vigint", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_retention_deletes_old_clips_and_the_disk_guard_skips_clips(start, tmp_path, mailbox):
    guarded = incident_settings(tmp_path, mailbox.port)
    server = await start(settings=guarded)
    client_id, _, api_key = await add_client(server.store)
    await stream_scene(server, api_key, make_scene(20, moving=(7, 10)))
    await eventually(lambda: len(mailbox.messages) == 1, timeout=20)
    [incident] = await server.store.list_incidents(client_id)
    clip = tmp_path / "data" / incident.clip_path
    assert clip.exists()
    assert await server.retention.delete_expired(time.time() + 29 * 86400) == 0
    assert await server.retention.delete_expired(time.time() + 31 * 86400) == 1
    assert not clip.exists() and await server.store.list_incidents(client_id) == []
    await server.stop()

    full_disk = dataclasses.replace(guarded, storage=dataclasses.replace(guarded.storage, min_free_mb=10**9))
    server = await start(settings=full_disk)
    await stream_scene(server, api_key, make_scene(20, moving=(7, 10)))
    await eventually(lambda: server.metrics.clips_skipped["disk_full"] == 1, timeout=20)
    await eventually(lambda: len(mailbox.messages) == 2, timeout=20)  # still alerted, without a clip
    [incident] = await server.store.list_incidents(client_id)
    assert incident.clip_path is None
    assert "No clip could be saved" in emails.text_of(mailbox.messages[1])


async def test_a_masked_region_of_one_camera_raises_nothing(start, tmp_path):
    settings = dataclasses.replace(incident_settings(tmp_path),
                                   cameras=(CameraSettings(1, "shop", masks=((0, 0.2, 1, 0.6),)),))
    server = await start(settings=settings)
    client_id, _, api_key = await add_client(server.store)
    await asyncio.gather(stream_scene(server, api_key, make_scene(20, moving=(7, 10)), "shop"),
                         stream_scene(server, api_key, make_scene(20, moving=(7, 10)), "yard"))
    await eventually(lambda: not server.streams.of_client(client_id))  # both streams analysed to their last frame
    await server.desk.drain()
    assert [i.camera for i in await server.store.list_incidents(client_id)] == ["yard"]


LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()  # the lock is held until the test closes this process's stdin
connection.execute("ROLLBACK")
"""


def busy_warnings(caplog) -> list[str]:
    """The server's warnings that a write found the database locked and will be retried."""
    return [record.getMessage() for record in caplog.records
            if record.levelno >= logging.WARNING and "busy" in record.getMessage()]


@pytest.mark.slow  # 12 s: the incident's write must give up once (busy_timeout, 5 s) before the lock goes
@REALTIME
async def test_a_database_locked_by_another_process_delays_an_incident_but_loses_nothing(start, tmp_path, mailbox,
                                                                                          db_path, caplog):
    # No usage flush while the lock is held: it would take the one writer first and make the incident's
    # write wait out a second busy_timeout behind it.
    server = await start(settings=incident_settings(tmp_path, mailbox.port), usage_flush_seconds=60)
    client_id, _, api_key = await add_client(server.store)
    _, _, other_key = await add_client(server.store, "other@b.test", "Other")
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", LOCK_HOLDER, str(db_path),
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"locked\n"
        streaming = asyncio.create_task(stream_scene(server, api_key, make_scene(25, moving=(8, 11))))
        waits = []
        for _ in range(20):  # another customer's agents keep connecting while the lock is held
            began = time.monotonic()
            connection, welcome = await open_stream(url(server), other_key, "door")
            waits.append(time.monotonic() - began)
            assert welcome["type"] == "welcome"
            await connection.close()
            await eventually(lambda: not server.streams.of_client(2))
        await streaming
        assert holder.returncode is None, "the lock was released before the incident could be written"
        assert max(waits) < 0.1, waits
        with sqlite3.connect(db_path) as reader:  # not yet: the server's writer waits for the lock
            assert reader.execute("SELECT count(*) FROM incidents").fetchone() == (0,)
        # Held until the incident's write has given up waiting once (busy_timeout) and is to be retried.
        await eventually(lambda: busy_warnings(caplog), timeout=30)
    finally:
        holder.stdin.close()
        await asyncio.wait_for(holder.wait(), 30)
    await eventually(lambda: len(mailbox.messages) == 1, timeout=30)
    incident = await delivered_incident(server, client_id)
    assert incident.alert_state == "delivered"
    assert incident.clip_path and (tmp_path / "data" / incident.clip_path).stat().st_size > 0


async def test_retention_keeps_an_incident_whose_clip_cannot_be_removed_until_it_can(tmp_path, db_path):
    settings = StorageSettings(data_dir=tmp_path / "data", retention_days=30)
    async with await Store.open(db_path) as store:
        client_id, key_id, _ = await add_client(store)
        incident = await store.create_incident(client_id, key_id, "door", 1_000.0)
        stuck = settings.data_dir / "clips" / str(client_id) / f"{incident.id}.mp4"
        stuck.mkdir(parents=True)  # unlink() refuses a directory, as it would a file the server may not delete
        await store.update_incident(incident.id, clip_path=f"clips/{client_id}/{incident.id}.mp4")
        retention = Retention(settings, store)
        assert await retention.delete_expired(1_000.0 + 31 * 86400) == 0
        assert len(await store.list_incidents(client_id)) == 1  # the row remembers the file is due to go
        stuck.rmdir()
        assert await retention.delete_expired(1_000.0 + 31 * 86400) == 1
        assert await store.list_incidents(client_id) == []
