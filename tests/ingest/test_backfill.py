"""Backfill (docs/protocol.md 4a) against the real server: recorded footage analysed in full, after live
video, acknowledged as its incidents are recorded, and its incidents marked as recorded while the camera was
offline."""

import asyncio
import dataclasses
import email
import email.policy
import json
import os
import threading
import time

import pytest
from footage import make_footage, open_stream, send_video
from helpers import add_client, eventually, url
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed

from vigint import keys, protocol
from vigint.alerts import emails
from vigint.analysis.intake import CADENCE_UNITS
from vigint.config import EmailSettings, Settings, StorageSettings
from vigint.ingest.exchange import SeenFootage

# small pictures, short GOPs: a few seconds a test
FOOTAGE = dict(gop_seconds=1, fps=10, width=320, height=180)
TEN_MINUTES_AGO = int((time.time() - 600) * 1e6)


def people_footage():
    """8 s of a still room with a person crossing it from 2 s to 5 s."""
    return make_footage(8, people=((2.0, 5.0),), **FOOTAGE)


def settings_with_mail(tmp_path) -> Settings:
    return Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                    email=EmailSettings(capture_dir=tmp_path / "mail"))


async def open_backfill(server, api_key: str, camera: str = "front-door"):
    connection, welcome = await open_stream(url(server), api_key, camera, backfill=True)
    assert welcome["type"] == "welcome"
    return connection


async def send_footage(server, api_key: str, video):
    """Open a backfill, send `video` as captured ten minutes ago and wait until all of it is analysed; return
    the connection, the task reading its acks (see `acks_until_closed`) and its session."""
    connection = await open_backfill(server, api_key)
    reading = asyncio.ensure_future(acks_until_closed(connection))
    await send_video(connection, video, start_us=TEN_MINUTES_AGO)
    (session,) = [s for s in server.streams.open() if s.backfill]
    await eventually(lambda: session.analysis.until == TEN_MINUTES_AGO + video.units[-1][1])
    return connection, reading, session


async def acks_until_closed(connection, timeout: float = 30) -> tuple[list[int], int | None]:
    """Read acks until the server closes; return them and the close code."""
    acks = []
    try:
        while True:
            message = await asyncio.wait_for(connection.recv(), timeout)
            until = protocol.parse_ack(message)
            if until is not None:
                acks.append(until)
    except ConnectionClosed as closed:
        return acks, closed.rcvd.code if closed.rcvd else None


async def usage_once_ended(server, connection, reading, client_id: int):
    """End a backfill, check that it closed with 1000, write the usage and return the client's one usage
    row."""
    await connection.send(protocol.end_of_backfill())
    assert (await reading)[1] == 1000
    await server.flush_usage()
    (row,) = await server.store.usage_report(client_id, None, None)
    return row


async def test_backfilled_footage_with_people_makes_one_offline_incident_acked_through_its_end(
        start, tmp_path):
    server = await start(settings_with_mail(tmp_path))
    client_id, _, api_key = await add_client(server.store)
    video = people_footage()
    connection = await open_backfill(server, api_key)
    reading = asyncio.ensure_future(acks_until_closed(connection))
    await send_video(connection, video, start_us=TEN_MINUTES_AGO)
    await connection.send(protocol.end_of_backfill())
    acks, code = await reading
    assert code == 1000
    assert acks == sorted(set(acks)) and acks[-1] == TEN_MINUTES_AGO + video.units[-1][1]
    assert len(acks) > 1  # acknowledged as it was analysed, not only at the end
    (incident,) = await server.store.list_incidents(client_id)
    assert incident.offline and incident.clip_path
    footage = (TEN_MINUTES_AGO / 1e6, TEN_MINUTES_AGO / 1e6 + 8)
    assert footage[0] + 1.5 <= incident.started_at <= incident.ended_at <= footage[1]
    assert server.streams.backfill(client_id, "front-door") is None  # its slot is free once done
    mail = await eventually(lambda: list((tmp_path / "mail").glob("*.eml")))
    body = emails.text_of(email.message_from_bytes(mail[0].read_bytes(), policy=email.policy.default))
    assert "while the camera could not reach Vigint" in body and "Recorded " in body


async def test_acks_never_reach_an_incident_s_pre_roll_before_it_is_recorded_even_before_it_is_known(start):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    video = make_footage(24, people=((14.0, 18.0),), **FOOTAGE)  # long still footage first: acks go out
    connection, reading, session = await send_footage(server, api_key, video)
    held = server.desk.holding(session)
    # the incident is open: nothing from its pre-roll on is acked
    assert held is not None and session.acked == held
    await connection.send(protocol.end_of_backfill())
    acks, code = await reading
    (incident,) = await server.store.list_incidents(client_id)
    pre_roll_start = round((incident.started_at - server.settings.motion.pre_roll_seconds) * 1e6)
    # Not even while the motion had begun but was not an incident yet: a server dying then loses nothing.
    assert TEN_MINUTES_AGO < acks[-2] < pre_roll_start < acks[-1] and code == 1000


async def test_a_backfill_waits_for_a_saturated_server_and_is_still_decoded_in_full(start):
    server = await start(decode_threads=1, max_decode_backlog_seconds=1)
    live_id, _, live_key = await add_client(server.store)
    backfill_id, _, backfill_key = await add_client(server.store, "b@b.test")
    video = make_footage(6, **FOOTAGE)
    live, _ = await open_stream(url(server), live_key)
    busy = threading.Event()
    server._pool.submit(busy.wait)  # the one live decode thread is taken: live batches wait, the load rises
    try:
        await send_video(live, dataclasses.replace(video, units=video.units[:video.fps]))
        await eventually(lambda: server.decode_load.overloaded)
        connection = await open_backfill(server, backfill_key)
        reading = asyncio.ensure_future(acks_until_closed(connection))
        sending = asyncio.ensure_future(send_video(connection, video, start_us=TEN_MINUTES_AGO))
        await asyncio.sleep(0.5)  # what a user would see: nothing of the backfill analysed while overloaded
        session = server.streams.backfill(backfill_id, "front-door")
        assert session.analysis.frames_decoded == 0 and session.acked is None
    finally:
        busy.set()
    await sending
    await connection.send(protocol.end_of_backfill())
    acks, code = await reading
    assert code == 1000 and acks[-1] == TEN_MINUTES_AGO + video.units[-1][1]
    assert session.analysis.frames_decoded == video.frames  # not one frame shed
    page = server.metrics.render({}, {}, 0)  # the operator sees the recovery apart from live decoding
    assert [sample.value for family in text_string_to_metric_families(page) for sample in family.samples
            if sample.name == "vigint_backfill_frames_decoded_total"] == [video.frames]
    live_session = server.streams.of_client(live_id)["front-door"]
    await send_video(live, dataclasses.replace(video, units=video.units[video.fps:2 * video.fps]),
                     start_us=int(time.time() * 1e6) + 10_000_000)
    frames = live_session.analysis.frames_decoded
    assert frames > 0  # the live stream was analysed all along
    await live.close()


async def test_a_backfill_is_read_only_as_fast_as_it_is_analysed(start):
    server = await start(max_decode_backlog_bytes=64 * 1024)
    client_id, _, api_key = await add_client(server.store)
    video = make_footage(6, **FOOTAGE)
    connection = await open_backfill(server, api_key)
    reading = asyncio.ensure_future(acks_until_closed(connection))
    session = server.streams.backfill(client_id, "front-door")
    most = 0

    async def watch():
        nonlocal most
        while True:
            most = max(most, session.analysis.intake.queued_bytes)
            await asyncio.sleep(0.005)

    watching = asyncio.ensure_future(watch())
    await send_video(connection, video, start_us=TEN_MINUTES_AGO)
    await connection.send(protocol.end_of_backfill())
    _, code = await reading
    watching.cancel()
    assert code == 1000 and session.analysis.frames_decoded == video.frames
    # bounded by the limit, one unit over
    assert most < 64 * 1024 + max(len(unit[3]) for unit in video.units) + 1024


async def test_a_second_backfill_of_a_camera_or_one_over_the_client_s_limit_gets_4403_and_live_is_untouched(
        start):
    server = await start(max_streams_per_client=1)
    client_id, _, api_key = await add_client(server.store)
    live, _ = await open_stream(url(server), api_key, spooled_seconds=240)
    first = await open_backfill(server, api_key)  # beside the live stream, over the stream limit of 1
    with pytest.raises(ConnectionClosed) as closed:
        await open_stream(url(server), api_key, backfill=True)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        4403, "camera 'front-door' is already sending recorded footage")
    with pytest.raises(ConnectionClosed) as closed:  # nor may other names: each backfill holds a decoder
        await open_stream(url(server), api_key, "back-door", backfill=True)
    answer = (closed.value.rcvd.code, closed.value.rcvd.reason)
    assert answer == (4403, "over the limit of 1 backfills for this client")
    video = make_footage(2, **FOOTAGE)
    await send_video(live, video)
    camera = server.streams.of_client(client_id)["front-door"]
    await eventually(lambda: camera.analysis.frames_decoded == video.frames)
    assert server.streams.by_client() == {client_id: 1}  # the backfill is no stream of the client's
    (stream,) = server.state.cameras_live()
    assert stream.spooled_seconds == 240 and not stream.backfill
    modes = sorted(s["mode"] for s in server.fleet.snapshot()["streams"])
    assert modes == ["active", "backfill"]
    await first.close()
    await live.close()


async def test_backfill_usage_is_counted_apart_from_live_streams_from_the_footage_its_gate_took(start):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    video = make_footage(4, **FOOTAGE)
    connection = await open_backfill(server, api_key)
    reading = asyncio.ensure_future(acks_until_closed(connection))
    an_hour_on = TEN_MINUTES_AGO + 3_600_000_000
    # counted as undecodable: moves no footage time
    bogus = protocol.media(an_hour_on, an_hour_on, b"not H.264")
    await connection.send(bogus)
    sent = len(bogus) + await send_video(connection, video, start_us=TEN_MINUTES_AGO)
    row = await usage_once_ended(server, connection, reading, client_id)
    assert row.backfill_bytes == sent and row.bytes_received == 0
    footage = (video.units[-1][1] - video.units[0][1]) / 1e6
    assert row.backfill_seconds == pytest.approx(footage)
    assert row.stream_seconds == 0 and row.frames_decoded == video.frames


async def test_footage_sent_again_after_a_server_died_makes_no_second_incident(start, db_path):
    first_server = await start()
    client_id, _, api_key = await add_client(first_server.store)
    video = people_footage()
    connection, reading, session = await send_footage(first_server, api_key, video)
    await eventually(first_server.store.list_incidents)  # the incident's row is written, it is still open
    acked = session.acked
    connection.transport.abort()  # the server "dies": no end, no close
    await first_server.stop()
    await reading
    second_server = await start()
    connection = await open_backfill(second_server, api_key)
    reading = asyncio.ensure_future(acks_until_closed(connection))
    resend = [unit for unit in video.units if TEN_MINUTES_AGO + unit[1] > acked]
    first_gop = next(index for index, unit in enumerate(resend) if unit[2])
    rest = dataclasses.replace(video, units=tuple(resend[first_gop:]))
    await send_video(connection, rest, start_us=TEN_MINUTES_AGO)
    await connection.send(protocol.end_of_backfill())
    acks, code = await reading
    assert code == 1000 and acks[-1] == TEN_MINUTES_AGO + video.units[-1][1]
    (incident,) = await second_server.store.list_incidents(client_id)
    assert incident.offline and incident.ended_at is not None and incident.clip_path


async def test_garbage_on_a_backfill_ends_with_4415_and_a_stray_end_on_a_live_stream_is_ignored(start):
    server = await start(max_bad_packets=20)
    client_id, _, api_key = await add_client(server.store)
    live, _ = await open_stream(url(server), api_key)
    await live.send(json.dumps({"type": "end"}))  # only a backfill ends this way
    connection = await open_backfill(server, api_key)
    for _ in range(30):
        await connection.send(os.urandom(3000))
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(connection.recv(), 10)
    assert closed.value.rcvd.code == 4415
    video = make_footage(2, **FOOTAGE)
    await send_video(live, video)
    camera = server.streams.of_client(client_id)["front-door"]
    await eventually(lambda: camera.analysis.frames_decoded == video.frames)
    await live.close()


async def test_a_backfill_is_told_when_its_key_s_expiry_changes_like_its_live_stream(start):
    server = await start()
    _, key_id, api_key = await add_client(server.store)
    live, _ = await open_stream(url(server), api_key)
    connection = await open_backfill(server, api_key)
    successor = keys.generate()
    expires_at = time.time() + 3600
    # As `vigint key rotate` does, from another process.
    await server.store.rotate_key(key_id, keys.hash_key(successor), keys.display_prefix(successor), "",
                                  expires_at, time.time())
    for agent in (live, connection):
        notice = json.loads(await asyncio.wait_for(agent.recv(), 5))
        assert notice["type"] == protocol.KEY_NOTICE
        assert protocol.key_expiry(notice) == pytest.approx(expires_at)
    await connection.close()
    await live.close()


async def test_a_backfill_stamped_1_us_a_frame_ends_with_4415_having_been_read_and_billed_no_further(start):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    video = make_footage(20, **FOOTAGE)  # 200 frames of real footage, sent as if they were 200 µs of it
    connection = await open_backfill(server, api_key)
    # closed at once, not after close_timeout
    reading = asyncio.ensure_future(acks_until_closed(connection, timeout=5))
    session = server.streams.backfill(client_id, "front-door")
    try:
        for index, (_, _, _, access_unit) in enumerate(video.units):
            at = TEN_MINUTES_AGO + index
            await connection.send(protocol.media(at, at, access_unit))
        await connection.send(protocol.end_of_backfill())
    except ConnectionClosed:
        pass  # closed while sending
    assert (await reading)[1] == 4415
    assert connection.close_reason == "decode times advance faster than 120 frames a second"
    # not one unit taken after
    assert session.analysis.intake.newest_dts - TEN_MINUTES_AGO == CADENCE_UNITS - 1
    await eventually(lambda: not server.streams.open())
    await server.flush_usage()
    (row,) = await server.store.usage_report(client_id, None, None)
    assert row.frames_decoded <= CADENCE_UNITS


async def test_real_footage_is_read_no_further_ahead_of_its_analysis_than_the_throttle_and_billed_in_full(
        start):
    server = await start(decode_threads=2)  # one thread for backfills
    client_id, _, api_key = await add_client(server.store)
    video = make_footage(20, **FOOTAGE)
    busy = threading.Event()
    # the backfill thread is taken: nothing of it is analysed meanwhile
    server._backfill_pool.submit(busy.wait)
    try:
        connection = await open_backfill(server, api_key)
        reading = asyncio.ensure_future(acks_until_closed(connection))
        sending = asyncio.ensure_future(send_video(connection, video, start_us=TEN_MINUTES_AGO))
        session = server.streams.backfill(client_id, "front-door")
        await eventually(lambda: session.analysis.backlogged)
        read = (session.analysis.intake.newest_dts - TEN_MINUTES_AGO) / 1e6
        # long_buffer_seconds less pre-roll, min_motion and a margin: 3 s of footage ahead of its analysis
        assert session.analysis.frames_decoded == 0 and 2.9 <= read <= 3.2
    finally:
        busy.set()
    await sending
    row = await usage_once_ended(server, connection, reading, client_id)
    assert row.backfill_seconds == pytest.approx((video.units[-1][1] - video.units[0][1]) / 1e6)
    assert row.frames_decoded == video.frames
def test_footage_delivered_live_is_skipped_with_the_rest_of_its_gop_and_nothing_after():
    seen = SeenFootage([(50, 55), (10, 20), (12, 14), (54, 60)])  # as several nodes may have written them
    keyframes = {0, 15, 21, 30, 45, 55}
    skipped = [at for at in range(0, 70) if seen.skips(at, lambda at=at: at in keyframes)]
    # 10-20 live; 21 starts a new GOP; 45's GOP is analysed until 50, where live footage starts again;
    # 61-69 end a GOP begun live.
    assert skipped == [*range(10, 21), *range(50, 70)] and seen.until == 69
    assert not seen.skips(55, lambda: False)  # footage sent again out of order is for the analysis to refuse
