"""Clips that cover the event: a clip grows with its stream while the alert goes at once, a server
killed mid-event leaves a playable partial clip, and a finished clip is faststart with a strip of stills."""

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import stat
import time
from collections.abc import Awaitable, Callable

import av
import pytest
from attacks import ServeProcess
from footage import make_scene, open_stream
from helpers import REALTIME, add_client, eventually, top_level_boxes, url
from test_incidents import fetch, incident_settings
from websockets.exceptions import ConnectionClosed

from vigint import protocol
from vigint.alerts import links
from vigint.config import MotionSettings, ServerSettings
from vigint.incidents.storage import still_name
from vigint.store import Incident, Store

# Short rolls and cooldown keep the tests short; the event (14 s of motion) outlasts the packet ring (10 s).
ROLLS = MotionSettings(cooldown_seconds=3, pre_roll_seconds=2, post_roll_seconds=2)
SCENE = {"seconds": 26, "moving": (4, 18)}
SPEED = 5  # × real time: analysis keeps well within the ring's 10 s (2 s of wall time), even on a busy machine
LINK_SECRET = "c" * 64


async def stream(address: str, api_key: str, video, speed: float = SPEED, until: float | None = None,
                 before_close: Callable[[], Awaitable[None]] | None = None,
                 on_notice: Callable[[dict], object] = lambda notice: None) -> list[tuple[float, dict, object]]:
    """Stream `video` (up to `until` seconds of it) at `speed` × real time as camera "shop", then close; return each
    notice the server pushed, with how many seconds of video had been sent when it came and what `on_notice` said
    of it then."""
    connection, _ = await open_stream(address, api_key, "shop")
    sent, notices = 0.0, []

    async def listen():
        with contextlib.suppress(ConnectionClosed):  # a server killed mid-stream
            async for message in connection:
                notice = json.loads(message)
                notices.append((sent, notice, on_notice(notice)))

    listener = asyncio.create_task(listen())
    start_us, began = int(time.time() * 1_000_000), time.monotonic()
    for pts, dts, _, data in video.units:
        if until is not None and dts / 1e6 > until:
            break
        await asyncio.sleep(max(0.0, began + dts / 1e6 / speed - time.monotonic()))
        await connection.send(protocol.media(start_us + pts, start_us + dts, data))
        sent = dts / 1e6
    if before_close is not None:
        await before_close()
    await connection.close()
    await listener
    return notices


async def recorded(server, client_id: int) -> Incident:
    """Return the client's one incident once its stream has ended and the incident is recorded with its clip."""
    await eventually(lambda: not server.streams.of_client(client_id))
    await server.desk.drain()
    [incident] = await server.store.list_incidents(client_id)
    return incident


def played(path) -> tuple[float, int]:
    """Return a clip's duration (s) and how many frames decode."""
    with av.open(str(path)) as container:
        return container.duration / 1e6, sum(1 for _ in container.decode(video=0))


async def test_a_long_event_has_one_clip_covering_it_whole_and_its_alert_goes_while_it_lasts(start, tmp_path):
    server = await start(settings=dataclasses.replace(incident_settings(tmp_path), motion=ROLLS))
    client_id, _, api_key = await add_client(server.store)
    data = tmp_path / "data"
    notices = await stream(url(server), api_key, make_scene(**SCENE), speed=8,
                           on_notice=lambda notice: (data / still_name(client_id, notice["incident_id"], 0)).is_file())
    incident = await recorded(server, client_id)
    [(sent, notice, thumbnail)] = notices
    event = incident.ended_at - incident.started_at  # the background forgets the square's trail in a few seconds
    # Alerted once the clip's first span was in (2 s to 12 s), before the square left the picture (18 s); its
    # thumbnail (emails show it) was stored before.
    assert notice["incident_id"] == incident.id and sent < 18 and thumbnail
    duration, frames = played(data / incident.clip_path)
    assert 14 <= event <= 20 and abs(duration - (2 + event + 2)) <= 1 and frames >= duration * 15 - 1
    boxes = top_level_boxes(data / incident.clip_path)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart: a phone plays it while it downloads

    stills = [data / still_name(client_id, incident.id, index) for index in range(incident.stills)]
    assert incident.stills == 6  # the thumbnail and a strip over the event (a keyframe a second)
    for still in stills:
        assert still.read_bytes().startswith(b"\xff\xd8\xff") and stat.S_IMODE(still.stat().st_mode) == 0o600
    assert await server.retention.delete_expired(time.time() + 31 * 86400) == 1
    assert list((data / "clips" / str(client_id)).iterdir()) == []  # clip and stills gone


# 4× real time, not 10×: the ring keeps long_buffer_seconds (10) of what was received, so analysis lagging more than
# 0.8 s behind a 10× stream on a loaded machine found the pre-roll gone and the clip short (seen in CI).
@REALTIME
async def test_max_clip_seconds_caps_the_clip(start, tmp_path):
    settings = dataclasses.replace(incident_settings(tmp_path), motion=dataclasses.replace(ROLLS, max_clip_seconds=8))
    server = await start(settings=settings)
    client_id, _, api_key = await add_client(server.store)
    await stream(url(server), api_key, make_scene(**SCENE), speed=4, until=14)
    incident = await recorded(server, client_id)
    assert 2 + incident.ended_at - incident.started_at > 9  # the pre-roll and the event outlast the cap
    duration, frames = played(tmp_path / "data" / incident.clip_path)
    assert abs(duration - 8) < 0.1 and frames == 8 * 15


async def test_a_server_killed_mid_event_leaves_a_playable_partial_clip_served_after_a_restart(tmp_path):
    env = {"VIGINT_MOTION_PRE_ROLL_SECONDS": "2", "VIGINT_MOTION_POST_ROLL_SECONDS": "2",
           "VIGINT_MOTION_COOLDOWN_SECONDS": "3", "VIGINT_ALERTS_LINK_SECRET": LINK_SECRET}
    server = await ServeProcess(tmp_path, env).start()
    try:
        async with await Store.open(server.db) as store:
            client_id, _, api_key = await add_client(store)

        async def kill():
            server.process.kill()  # SIGKILL at 16 s of footage, the motion going on until 18 s
            await server.process.wait()

        await stream(server.url, api_key, make_scene(**SCENE), speed=8, until=16, before_close=kill)
        with sqlite3.connect(server.db) as db:
            incident_id, clip_path, ended_at = db.execute("SELECT id, clip_path, ended_at FROM incidents").fetchone()
        assert clip_path == f"clips/{client_id}/{incident_id}.mp4" and ended_at is None
        clip = tmp_path / "data" / clip_path
        duration, frames = played(clip)
        assert duration >= 10 and frames >= 10 * 15  # from the pre-roll (2 s) to within 2 GOPs and a look of 16 s

        await server.start()  # on the same database and folder: what the crash left is no obstacle
        async with await Store.open(server.db) as store:
            incident = await store.get_incident(incident_id)
        link = links.clip_link(server.http, LINK_SECRET, incident, int(time.time()) + 60)
        assert await asyncio.to_thread(fetch, link) == (200, clip.read_bytes())  # linked, and served
    finally:
        await server.stop()


@pytest.mark.slow  # 3 minutes of footage at 4× real time, as a live stream (the server's own limits)
async def test_a_three_minute_event_is_one_incident_whose_clip_covers_it_whole(start, tmp_path):
    live = ServerSettings()  # the limits a live stream is held to, not the test fixture's roomier ones
    server = await start(settings=dataclasses.replace(incident_settings(tmp_path), motion=MotionSettings()),
                         max_decode_backlog_seconds=live.max_decode_backlog_seconds,
                         max_decode_catchup_seconds=live.max_decode_catchup_seconds,
                         max_decode_backlog_bytes=live.max_decode_backlog_bytes)
    client_id, _, api_key = await add_client(server.store)
    notices = await stream(url(server), api_key, make_scene(210, moving=(10, 190)), speed=4)
    incident = await recorded(server, client_id)
    [(sent, _, _)] = notices
    assert sent < 30  # alerted at the start, not at the end
    event = incident.ended_at - incident.started_at
    duration, frames = played(tmp_path / "data" / incident.clip_path)
    assert 175 <= event <= 192 and abs(duration - (5 + event + 5)) <= 1 and frames >= duration * 15 - 1
    boxes = top_level_boxes(tmp_path / "data" / incident.clip_path)
    assert boxes.index("moov") < boxes.index("mdat")
