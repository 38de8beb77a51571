"""A crash loses no alert and leaves no incident open: `vigint serve` killed at any moment of an incident, then
restarted, ends every incident closed with a playable faststart clip and stills, and its alert delivered (again,
with the same Message-ID, if the crash came during SMTP DATA); and a node never takes a live node's incident."""

import asyncio
import contextlib
import email
import email.policy
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import time

import av
import pytest
from attacks import ServeProcess
from footage import make_scene, open_stream
from helpers import Mailbox, add_client, eventually, serving, top_level_boxes
from websockets.exceptions import ConnectionClosed

from vigint import protocol
from vigint.alerts import emails
from vigint.config import MotionSettings, Settings, StorageSettings
from vigint.incidents import clips
from vigint.incidents.recorder import ClipContext
from vigint.incidents.recovery import Recovery
from vigint.incidents.storage import FolderStorage, open_clip_storage
from vigint.media import Packet
from vigint.metrics import Metrics
from vigint.store import Channel, Store

SCENE = make_scene(14, moving=(3, 9))  # the alert goes at about 11 s of footage, the stream ends at 14
SPEED = 4  # × real time
ENV = {"VIGINT_MOTION_PRE_ROLL_SECONDS": "2", "VIGINT_MOTION_POST_ROLL_SECONDS": "2",
       "VIGINT_MOTION_COOLDOWN_SECONDS": "3", "VIGINT_ALERTS_LINK_SECRET": "d" * 64,
       "VIGINT_EMAIL_SMTP_HOST": "127.0.0.1", "VIGINT_EMAIL_SECURITY": "none",
       "VIGINT_EMAIL_SENDER": "alerts@vigint.test",
       # An alert a killed node was sending is claimed for 8 timeouts: 8 s, then retried by the restarted node.
       "VIGINT_EMAIL_TIMEOUT_SECONDS": "1"}


class StallingMailbox(Mailbox):
    """A mailbox that, while `stall` is set, keeps the sender waiting for the answer to DATA (the message received
    whole, kept in `stalled`), as a slow mail server does."""

    def __init__(self):
        super().__init__()
        self.stalled: list[email.message.EmailMessage] = []
        self.stall = False

    async def handle_DATA(self, server, session, envelope):
        if not self.stall:
            return await super().handle_DATA(server, session, envelope)
        self.stalled.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        while self.stall:
            await asyncio.sleep(0.02)
        return "451 try again later"  # to a sender that is gone


@pytest.fixture
def stalling_mailbox():
    with serving(StallingMailbox()) as box:
        yield box
        box.stall = False  # its sender waiting in DATA goes before the server stops


def rows(db) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM incidents ORDER BY id").fetchall()


def incident_of(message: email.message.EmailMessage) -> int:
    """Return the incident an alert email is about, from its page link (not its Message-ID: what is compared)."""
    return int(re.search(r"/incidents/(\d+)", emails.text_of(message))[1])


async def stream_until_killed(url: str, api_key: str, not_before: float) -> None:
    """Stream SCENE as camera "shop", its capture times from now or `not_before`, until it ends or the server
    dies."""
    connection, _ = await open_stream(url, api_key, "shop")
    start_us, began = int(max(time.time(), not_before) * 1_000_000), time.monotonic()
    with contextlib.suppress(ConnectionClosed, OSError):
        for pts, dts, _, data in SCENE.units:
            await asyncio.sleep(max(0.0, began + dts / 1e6 / SPEED - time.monotonic()))
            await connection.send(protocol.media(start_us + pts, start_us + dts, data))
        await connection.close()


async def kill_during(server: ServeProcess, api_key: str, mailbox: StallingMailbox, moment: str, delay: float,
                      not_before: float) -> None:
    """Stream an incident and kill the server `delay` seconds after `moment`: "row" (its row is written: the old
    code queued its alert seconds later), "growing" (its clip is named and grows), "data" (its alert's SMTP DATA
    is sent, unanswered)."""
    before = {row["id"] for row in rows(server.db)}
    mailbox.stall = moment == "data"

    def reached():
        if moment == "data":  # this incident's alert: not a retry of an earlier one's
            return any(incident_of(message) not in before for message in mailbox.stalled)
        new = [row for row in rows(server.db) if row["id"] not in before]
        return new and (moment == "row" or new[0]["clip_path"] is not None)

    streaming = asyncio.create_task(stream_until_killed(server.url, api_key, not_before))
    try:
        await eventually(reached, timeout=30, interval=0.01)
        await asyncio.sleep(delay)
    except AssertionError:
        raise AssertionError(f"never reached {moment!r}: {[dict(row) for row in rows(server.db)]}") from None
    finally:
        server.process.kill()
        await server.process.wait()
        mailbox.stall = False
    await streaming


async def check_recovered(server: ServeProcess, mailbox: StallingMailbox, count: int) -> None:
    """Every incident is recorded whole (closed, faststart clip that plays, stills) and its alert arrived, every
    copy of it with one Message-ID."""

    def recorded():
        found = rows(server.db)
        return len(found) == count and all(row["recording_node"] is None and row["alert_state"] == "delivered"
                                           for row in found) and found

    try:
        found = await eventually(recorded, timeout=30, interval=0.1)
    except AssertionError:
        raise AssertionError(f"not all recorded and delivered: {[dict(row) for row in rows(server.db)]}") from None
    data = server.folder / "data"
    for row in found:
        assert row["ended_at"] >= row["started_at"] and row["stills"] >= 1, dict(row)
        clip = data / row["clip_path"]
        boxes = top_level_boxes(clip)
        assert "moof" not in boxes and boxes.index("moov") < boxes.index("mdat"), (dict(row), boxes)
        with av.open(str(clip)) as container:
            assert sum(1 for _ in container.decode(video=0)) >= 15, dict(row)  # a second of footage at least
        for index in range(row["stills"]):
            assert (data / "clips" / str(row["client_id"]) / f"{row['id']}-{index}.jpg").read_bytes()[:3] \
                == b"\xff\xd8\xff"
    copies: dict[int, set[str]] = {}
    for message in mailbox.messages + mailbox.stalled:
        copies.setdefault(incident_of(message), set()).add(message["Message-ID"])
    assert {incident_of(message) for message in mailbox.messages} == {row["id"] for row in found}
    assert all(len(ids) == 1 for ids in copies.values()), copies


async def apart(server: ServeProcess) -> float:
    """Wait until the restarted server has closed what the killed one left, and the camera's cooldown has passed
    since; return the capture time from which the next round's motion opens an incident of its own instead of
    continuing the last one (footage streamed faster than real time ends ahead of the clock)."""
    await eventually(lambda: all(row["ended_at"] is not None for row in rows(server.db)), timeout=30)
    return max(row["ended_at"] for row in rows(server.db)) + float(ENV["VIGINT_MOTION_COOLDOWN_SECONDS"])


async def crash_and_recover(tmp_path, mailbox: StallingMailbox, moments: list[tuple[str, float]]) -> None:
    server = await ServeProcess(tmp_path, {**ENV, "VIGINT_EMAIL_SMTP_PORT": str(mailbox.port)}).start()
    try:
        async with await Store.open(server.db) as store:
            _, _, api_key = await add_client(store)
        not_before = 0.0
        for moment, delay in moments:
            await kill_during(server, api_key, mailbox, moment, delay, not_before)
            await server.start()  # recovers what the killed one left, as it starts
            not_before = await apart(server)
        await check_recovered(server, mailbox, len(moments))
        if any(moment == "data" for moment, _ in moments):
            assert mailbox.stalled  # sent twice: once unanswered, once again after the restart, one Message-ID
    finally:
        await server.stop()


@pytest.mark.slow  # three kills and restarts of a real server
async def test_a_server_killed_mid_incident_leaves_it_closed_with_its_clip_stills_and_alert(tmp_path,
                                                                                          stalling_mailbox):
    await crash_and_recover(tmp_path, stalling_mailbox, [("data", 0.0), ("row", 0.2), ("growing", 0.5)])


@pytest.mark.slow  # ten kills and restarts, about a minute
async def test_ten_kills_at_random_moments_lose_no_incident_and_no_alert(tmp_path, stalling_mailbox):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    # Not within 0.2 s of the row: its clip's pre-roll reaches the disk a few milliseconds after it, and a kill
    # before leaves no footage to make a clip of (the incident is closed at its start, its alert sent, no clip).
    kinds = [rng.choice(["row", "growing", "data"]) for _ in range(10)]
    moments = [(kind, rng.uniform(0.2 if kind == "row" else 0, 1.5)) for kind in kinds]
    try:
        await crash_and_recover(tmp_path, stalling_mailbox, moments)
    except AssertionError as error:
        raise AssertionError(f"seed {seed}, moments {moments}: {error}") from None


# A node takes only a dead node's incidents


async def test_a_node_finishes_only_the_incidents_of_dead_nodes(tmp_path, database):
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"), motion=MotionSettings())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    now = time.time()
    runs = {  # the run recording each incident: its node's pid, when it was last heard from, whether it stopped
        "elsewhere:5002/a": (4242, now, False),  # another host, heard from just now: alive
        f"{host}:5002/a": (os.getpid(), now, False),  # another server of this very process: alive
        f"{host}:5003/a": (os.getpid(), now, False),  # an earlier run of this server (its port): dead at once
        f"{host}:5004/a": (int(gone.stdout), now, False),  # this host, its process gone: dead at once
        "elsewhere:5005/a": (4242, now - 60, False),  # silent for a minute: dead
        "elsewhere:5006/a": (4242, now, True),  # stopped
    }
    alive = list(runs)[:2]
    async with await Store.open(database) as store:
        client_id, key_id, _ = await add_client(store)
        incidents = {}
        for run, (pid, seen, stopped) in runs.items():
            await store.save_node(run.partition("/")[0], seen, {"pid": pid, "streams": []}, seen, stopped=stopped)
            incidents[run] = (await store.create_incident(client_id, key_id, "door", now - 30, recorder=run,
                                                          channels=[Channel.EMAIL])).id
        # Held: no alert goes before its clip's first span is in (or its node is found dead).
        assert await store.due_alerts(now + 1) == []
        context = ClipContext(settings, FolderStorage(tmp_path / "data" / "clips"), Metrics(), None)
        woken = []
        recovery = Recovery(context, store, lambda: woken.append(True), f"{host}:5003")
        dead = sorted(incidents[run] for run in runs if run not in alive)
        assert sorted(await recovery.recover()) == dead
        for run in alive:
            incident = await store.get_incident(incidents[run])
            assert incident.ended_at is None and incident.recording_node == run
        for run in runs:
            incident = await store.get_incident(incidents[run])
            if run not in alive:  # no clip: it ends where it started
                assert incident.ended_at == incident.started_at and incident.recording_node is None
        assert woken  # the sender looks at the outbox at once
        assert sorted(alert.incident.id for alert in await store.due_alerts(time.time() + 1)) == dead


async def test_with_s3_a_clip_cut_by_a_crash_is_finished_from_its_growing_file_and_uploaded(tmp_path, bucket):
    storage_settings = bucket.settings(data_dir=tmp_path / "data")
    settings = Settings(storage=storage_settings, motion=MotionSettings(pre_roll_seconds=2, post_roll_seconds=2))
    storage = open_clip_storage(storage_settings)
    start_us = 1_767_225_600_000_000
    packets = [Packet(start_us + pts, start_us + dts, keyframe, data) for pts, dts, keyframe, data in SCENE.units]
    async with await Store.open(tmp_path / "vigint.db") as store:
        client_id, key_id, _ = await add_client(store)
        # A node killed 8 s into the footage (motion from 3 s on), before it published the clip: only this disk has it.
        incident = await store.create_incident(client_id, key_id, "door", start_us / 1e6 + 3, recorder="gone:1/f",
                                               channels=[Channel.EMAIL])
        await store.update_incident(incident.id, clip_from=start_us / 1e6)
        growing = storage.growing(f"clips/{client_id}/{incident.id}.mp4")
        clip = clips.GrowingClip(growing, packets[0], SCENE.width, SCENE.height)
        clip.add([packet for packet in packets if packet.dts < start_us + 8_000_000])  # not closed: as killed

        woken = []
        recovery = Recovery(ClipContext(settings, storage, Metrics(), None), store, lambda: woken.append(True),
                            "here:5002")
        assert await recovery.recover() == [incident.id]
        incident = await store.get_incident(incident.id)
    # Closed at its last recorded footage: the last whole GOP written (7 s), give or take a frame.
    assert abs(incident.ended_at - (start_us / 1e6 + 7)) <= 0.1 and incident.recording_node is None
    assert incident.clip_path == f"clips/{client_id}/{incident.id}.mp4" and incident.stills >= 2 and woken
    objects = await asyncio.to_thread(bucket.objects)
    finished = tmp_path / "finished.mp4"
    finished.write_bytes(objects[f"site-a/{client_id}/{incident.id}.mp4"])
    boxes = top_level_boxes(finished)
    assert "moof" not in boxes and boxes.index("moov") < boxes.index("mdat")
    with av.open(str(finished)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 7 * 15
    assert all(objects[f"site-a/{client_id}/{incident.id}-{index}.jpg"][:3] == b"\xff\xd8\xff"
               for index in range(incident.stills))
    assert not growing.exists()


async def test_an_alert_is_suppressed_only_by_a_verdict_recorded_with_it(tmp_path, database):
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"))
    async with await Store.open(database) as store:
        client_id, key_id, _ = await add_client(store)
        rejected, unjudged = [(await store.create_incident(client_id, key_id, "door", time.time(), recorder="gone:1/a",
                                                           channels=[Channel.EMAIL])).id for _ in range(2)]
        await store.judge_incident(rejected, False, time.time(), verdict="rejected", description="A cat.")
        context = ClipContext(settings, FolderStorage(tmp_path / "data" / "clips"), Metrics(), None)
        assert sorted(await Recovery(context, store, lambda: None, "here:1").recover()) == [rejected, unjudged]
        assert [alert.incident.id for alert in await store.due_alerts(time.time() + 1)] == [unjudged]
        incident = await store.get_incident(rejected)
    assert (incident.alert_state, incident.verdict, incident.description) == ("suppressed", "rejected", "A cat.")
