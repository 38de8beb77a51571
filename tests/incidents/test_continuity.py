"""An incident belongs to its camera, not to a connection: footage the server received live is never taken again
as backfill, a camera back within the cooldown continues its incident, and an alerted incident's evidence is
never rewritten by footage sent again."""

import asyncio
import dataclasses
import time

from conftest import add_client, eventually, url
from media import make_footage, open_stream, send_video
from websockets.exceptions import ConnectionClosed

from vigint import protocol
from vigint.config import EmailSettings, MotionSettings, Settings, StorageSettings

FOOTAGE = dict(gop_seconds=1, fps=10, width=320, height=180)
SEGMENT = 6  # seconds of footage each connection sends


def settings(tmp_path, **motion) -> Settings:
    return Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                    email=EmailSettings(capture_dir=tmp_path / "mail"), motion=MotionSettings(**motion))


def constant_motion(seconds: int):
    """A person crossing the room every few seconds, from the first second to the last."""
    return make_footage(seconds, people=tuple((start, start + 3.0) for start in range(0, seconds, 3)), **FOOTAGE)


def part(video, start: float, end: float):
    """The access units of `video` presented from `start` to `end` seconds (whole GOPs if both are keyframes)."""
    return dataclasses.replace(video, units=tuple(u for u in video.units if start * 1e6 <= u[0] < end * 1e6))


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
            last_gop = part(video, run * SEGMENT - 1, run * SEGMENT)
            acks, code = await resend_as_backfill(server, api_key, last_gop, origin)
            assert code == 1000 and acks[-1] == origin + last_gop.units[-1][1]
    await live.close()
    await server.desk.drain()
    incidents = await server.store.list_incidents(client_id)
    assert [incident.offline for incident in incidents] == [False]
    mail = await eventually(lambda: list((tmp_path / "mail").glob("*.eml")))
    await asyncio.sleep(0.5)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == len(mail) == 1
    await server.flush_usage()
    (row,) = await server.store.usage_report(client_id, None, None)
    assert row.backfill_bytes == 0 and row.backfill_seconds == 0  # billed live already


async def test_footage_another_node_received_live_is_not_analysed_again_there(start, tmp_path):
    first = await start(settings(tmp_path))
    client_id, _, api_key = await add_client(first.store)
    video = constant_motion(SEGMENT)
    origin = int(time.time() * 1e6) - SEGMENT * 1_000_000
    live, _ = await open_stream(url(first), api_key)
    await send_video(live, video, start_us=origin)
    await live.close()
    second = await start(settings(tmp_path))  # another node on the same database, or this one restarted
    await eventually(lambda: second.store.live_footage(client_id, "front-door"))
    acks, code = await resend_as_backfill(second, api_key, part(video, SEGMENT - 2, SEGMENT), origin)
    assert code == 1000 and acks[-1] == origin + video.units[-1][1]
    await first.desk.drain()
    assert [incident.offline for incident in await second.store.list_incidents(client_id)] == [False]
