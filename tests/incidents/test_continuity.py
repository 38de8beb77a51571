"""An incident belongs to its camera, not to a connection: footage the server received live is never taken again
as backfill, a camera back within the cooldown continues its incident, and an alerted incident's evidence is
never rewritten by footage sent again."""

import asyncio
import dataclasses
import json
import time

import av
import pytest
from footage import make_footage, open_stream, send_video
from helpers import REALTIME, add_client, eventually, run_vigint, url
from websockets.exceptions import ConnectionClosed

from vigint import protocol
from vigint.config import AlertSettings, EmailSettings, MotionSettings, Settings, StorageSettings
from vigint.incidents.storage import still_name

FOOTAGE = dict(gop_seconds=3, fps=10, width=320, height=180)  # a GOP holds motion enough for an incident
SEGMENT = 6  # seconds of footage each connection sends


def settings(tmp_path, **motion) -> Settings:
    """Alerts written to a folder; one link secret, which several nodes on one database share."""
    return Settings(storage=StorageSettings(data_dir=tmp_path / "data"), alerts=AlertSettings(link_secret="c" * 64),
                    email=EmailSettings(capture_dir=tmp_path / "mail"), motion=MotionSettings(**motion))


def constant_motion(seconds: int):
    """A person crossing the room every few seconds, from the first second to the last."""
    return make_footage(seconds, people=tuple((start, start + 3.0) for start in range(0, seconds, 3)), **FOOTAGE)


def part(video, start: float, end: float):
    """The access units of `video` presented from `start` to `end` seconds (whole GOPs if both are keyframes)."""
    return dataclasses.replace(video, units=tuple(u for u in video.units if start * 1e6 <= u[0] < end * 1e6))


async def ended(server, client_id: int) -> None:
    """Wait until the server has analysed the client's closed live streams to their end, then until it has
    recorded their incidents (ending those that wait for their camera to come back)."""
    await eventually(lambda: not server.streams.of_client(client_id))
    await server.desk.drain()


async def acks_until_closed(connection, timeout: float = 30) -> tuple[list[int], int | None]:
    acks = []
    try:
        while True:
            until = protocol.parse_ack(await asyncio.wait_for(connection.recv(), timeout))
            if until is not None:
                acks.append(until)
    except ConnectionClosed as closed:
        return acks, closed.rcvd.code if closed.rcvd else None


async def resend_as_backfill(server, api_key: str, video, start_us: int) -> tuple[list[int], int | None]:
    """Send `video` on a backfill connection, as an agent whose spool still held it, then its end."""
    connection, welcome = await open_stream(url(server), api_key, backfill=True)
    assert welcome["type"] == "welcome"
    reading = asyncio.ensure_future(acks_until_closed(connection))
    await send_video(connection, video, start_us=start_us)
    await connection.send(protocol.end_of_backfill())
    return await reading


async def test_a_gop_sent_live_then_again_as_backfill_after_each_restart_makes_no_offline_incident(start, tmp_path):
    """An agent stopped (SIGTERM) and started again three times during motion, whose spool still held its last GOP
    each time: that GOP is acknowledged unanalysed and unbilled; one incident in all, live, with one alert."""
    server = await start(settings(tmp_path))
    client_id, _, api_key = await add_client(server.store)
    video = constant_motion(4 * SEGMENT)
    origin = int(time.time() * 1e6) - 4 * SEGMENT * 1_000_000  # the footage's capture clock
    live = None
    for run in range(4):
        if live is not None:
            await live.close()
        live, _ = await open_stream(url(server), api_key)
        await send_video(live, part(video, run * SEGMENT, (run + 1) * SEGMENT), start_us=origin)
        if run:  # the GOP the previous run sent live last, still in its spool
            last_gop = part(video, run * SEGMENT - 3, run * SEGMENT)
            acks, code = await resend_as_backfill(server, api_key, last_gop, origin)
            assert code == 1000 and acks[-1] == origin + last_gop.units[-1][1]
    await live.close()
    await ended(server, client_id)
    incidents = await server.store.list_incidents(client_id)
    assert [incident.offline for incident in incidents] == [False]
    mail = await eventually(lambda: list((tmp_path / "mail").glob("*.eml")))
    await asyncio.sleep(0.5)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == len(mail) == 1
    await server.flush_usage()
    (row,) = await server.store.usage_report(client_id, None, None)
    assert row.backfill_bytes == 0 and row.backfill_seconds == 0  # billed live already


async def test_footage_another_node_received_live_is_not_analysed_again_there(start, tmp_path, database):
    first = await start(settings(tmp_path), database)
    client_id, _, api_key = await add_client(first.store)
    video = constant_motion(SEGMENT)
    origin = int(time.time() * 1e6) - SEGMENT * 1_000_000
    live, _ = await open_stream(url(first), api_key)
    await send_video(live, video, start_us=origin)
    await live.close()
    await eventually(lambda: first.store.list_incidents(client_id))
    await first.flush_usage()  # as its periodic flush does, if the write at the stream's end did not already
    second = await start(settings(tmp_path), database)  # another node on the same database, or this one restarted
    acks, code = await resend_as_backfill(second, api_key, part(video, SEGMENT - 3, SEGMENT), origin)
    assert code == 1000 and acks[-1] == origin + video.units[-1][1]
    assert [incident.offline for incident in await second.store.list_incidents(client_id)] == [False]


def clip_seconds(path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base)


@pytest.mark.slow  # five connections of footage: the default suite's budget
@REALTIME  # the camera is back within the cooldown only if its analysis keeps up with 5x real time
async def test_a_camera_reconnecting_every_few_seconds_during_motion_keeps_one_incident_and_one_growing_clip(
        start, tmp_path):
    server = await start(settings(tmp_path))
    client_id, _, api_key = await add_client(server.store)
    video = constant_motion(5 * SEGMENT)
    origin = int(time.time() * 1e6)
    for run in range(5):  # a link dropping every 1.2 s of real time (at five times real time), back at once
        live, _ = await open_stream(url(server), api_key)
        shift = run * SEGMENT * 1_000_000  # paced from the part's own start
        piece = part(video, run * SEGMENT, (run + 1) * SEGMENT)
        piece = dataclasses.replace(piece, units=tuple((pts - shift, dts - shift, key, data)
                                                       for pts, dts, key, data in piece.units))
        await send_video(live, piece, start_us=origin + shift, speed=5)
        await live.close()
    await ended(server, client_id)
    (incident,) = await server.store.list_incidents(client_id)
    assert incident.ended_at - incident.started_at > 4 * SEGMENT  # it went on through every reconnection
    assert clip_seconds(tmp_path / "data" / incident.clip_path) > 4 * SEGMENT  # one clip, grown across them
    assert incident.stills > 1
    mail = await eventually(lambda: list((tmp_path / "mail").glob("*.eml")))
    await asyncio.sleep(0.5)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == len(mail) == 1


async def test_a_camera_back_on_another_node_within_the_cooldown_continues_its_incident_there(start, tmp_path,
                                                                                             database):
    first = await start(settings(tmp_path), database)
    client_id, _, api_key = await add_client(first.store)
    video = constant_motion(2 * SEGMENT)
    origin = int(time.time() * 1e6) - 2 * SEGMENT * 1_000_000
    live, _ = await open_stream(url(first), api_key)
    await send_video(live, part(video, 0, SEGMENT), start_us=origin)
    await live.close()
    (opened,) = await eventually(lambda: first.store.list_incidents(client_id))
    second = await start(settings(tmp_path), database)
    live, _ = await open_stream(url(second), api_key)
    await send_video(live, part(video, SEGMENT, 2 * SEGMENT), start_us=origin)
    await live.close()
    await ended(second, client_id)
    await ended(first, client_id)  # the first node gives up waiting for the camera: it ends the incident there
    (incident,) = await second.store.list_incidents(client_id)
    assert incident.id == opened.id and incident.ended_at * 1e6 > origin + 1.5 * SEGMENT * 1e6  # extended
    assert incident.clip_path == f"clips/{client_id}/{incident.id}.mp4"  # the first node's, not recorded over
    assert second.metrics.incidents == 0


async def offline_incident(server, api_key: str, video, start_us: int, mail_folder):
    """Backfill `video` and return its offline incident once alerted."""
    _, code = await resend_as_backfill(server, api_key, video, start_us)
    assert code == 1000
    await eventually(lambda: list(mail_folder.glob("*.eml")))
    (incident,) = await server.store.list_incidents()
    assert incident.offline and incident.clip_path and incident.ended_at
    return incident


def evidence_of(data_folder, incident) -> list[bytes]:
    """The bytes of an incident's clip and stills."""
    return [(data_folder / name).read_bytes() for name in
            [incident.clip_path, *(still_name(incident.client_id, incident.id, i) for i in range(incident.stills))]]


@pytest.mark.slow  # a backfill sent three times and the CLI
async def test_footage_sent_again_for_an_alerted_incident_never_rewrites_its_evidence(start, tmp_path, db_path):
    server = await start(settings(tmp_path))
    client_id, _, api_key = await add_client(server.store)
    recorded = make_footage(20, people=((4.0, 12.0),), **FOOTAGE)
    start_us = int(time.time() * 1e6) - 600 * 1_000_000
    incident = await offline_incident(server, api_key, recorded, start_us, tmp_path / "mail")
    evidence = evidence_of(tmp_path / "data", incident)

    await resend_as_backfill(server, api_key, part(recorded, 0, 10), start_us)  # the same, in part: adds nothing
    assert await server.store.list_incidents() == [incident]
    assert evidence_of(tmp_path / "data", incident) == evidence and await server.store.flags() == []

    forged = make_footage(10, people=((4.5, 9.0),), noise=4.0, **FOOTAGE)  # other pictures for the same times
    _, code = await resend_as_backfill(server, api_key, forged, start_us)
    assert code == 1000
    assert await server.store.list_incidents() == [incident]  # its end and stills untouched
    assert evidence_of(tmp_path / "data", incident) == evidence
    (flag,) = await server.store.flags()
    assert flag.kind == "evidence" and flag.client_id == client_id and f"incident {incident.id}" in flag.detail
    assert (await server.store.list_audit(client_id))[0].action == "footage.refused"
    shown = run_vigint("alerts", "--json", "--db", str(db_path), cwd=tmp_path)
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["kind"] == "evidence"
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1  # no second alert
