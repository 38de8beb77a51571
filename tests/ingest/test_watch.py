"""The customer's camera settings on live streams: the real server, real H.264, settings written through the
store (as the CLI and the page write them), schedules crossed on an injected clock."""

import asyncio
import dataclasses
import time
import urllib.request
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from footage import make_scene, open_stream, send_video
from helpers import add_client, eventually, url
from prometheus_client.parser import text_string_to_metric_families

from vigint.analysis.motion import Tuning
from vigint.config import CameraSettings, EmailSettings, MotionSettings, Settings, StorageSettings
from vigint.ingest.watch import RecordedArming, Watch, camera_tuning, decide
from vigint.schedule import parse_schedule
from vigint.store import CameraSetting, Editor
from vigint.tuning import Mask, rectangle

SECOND = 1_000_000
# A person's path across the picture (see footage.make_scene): rows 60-110 of 180, from left to right.
OVER_THE_PATH = Mask(((0, 0.3), (0.5, 0.27), (1, 0.3), (1, 0.65), (0.5, 0.7), (0, 0.65)))
ABOVE_THE_PATH = rectangle(0, 0, 1, 0.25)
# Someone walks through while the camera is disarmed, then again 11 s into the footage.
EARLY_WALK = make_scene(5, moving=(1, 3))
LATE_WALK = make_scene(10, moving=(6, 9))
SECOND_WALK_STARTS = 5 + 6  # seconds into the footage
SPEED = 3  # × real time: the footage's 15 s in 5 s


class Clock:
    """The server's clock for arming: the real one moved to another date, flowing at the same pace."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def reach(self, instant: datetime, after: float) -> None:
        """Read `instant` `after` seconds from now."""
        self.offset = instant.timestamp() - (time.time() + after)


def settings(tmp_path, mailbox) -> Settings:
    return Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                    motion=MotionSettings(cooldown_seconds=3, post_roll_seconds=1),
                    email=EmailSettings(smtp_host="127.0.0.1", smtp_port=mailbox.port, security="none",
                                        sender="alerts@vigint.test"))


def samples(server) -> dict[tuple[str, tuple], float]:
    """The server's /metrics page, by sample name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def walks(server, api_key: str, camera: str = "shop", during=None) -> int:
    """Stream both walks on one connection at SPEED × real time, running `during` (a coroutine) meanwhile;
    return the footage's start (µs). The connection is closed once `during` is over too."""
    connection, _ = await open_stream(url(server), api_key, camera)
    start_us = int(time.time() * SECOND)
    sending = send_video(connection, EARLY_WALK, start_us, SPEED)
    await asyncio.gather(sending, during or asyncio.sleep(0))
    await send_video(connection, LATE_WALK, start_us + 5 * SECOND, SPEED)
    await asyncio.sleep(0.5)  # the last frames analysed while the stream is open
    await connection.close()
    return start_us


async def quiet_end(server, client_id: int):
    """Wait for the client's streams to end and their incidents to be recorded; return the incidents."""
    await eventually(lambda: not server.streams.of_client(client_id))
    await server.desk.drain()
    return await server.store.list_incidents(client_id)


async def test_people_walking_through_a_disarmed_camera_cost_receipt_only(start, tmp_path, mailbox):
    server = await start(settings=settings(tmp_path, mailbox))
    client_id, _, api_key = await add_client(server.store)
    await server.store.set_camera(client_id, "shop", Editor.OPERATOR, schedule="never")

    async def watch():
        await asyncio.sleep(0.5)
        seen = await asyncio.to_thread(samples, server)
        assert seen[("vigint_streams", (("mode", "disarmed"),))] == 1
        assert seen[("vigint_streams_connected", (("client_id", str(client_id)),))] == 1  # it streams
        return seen

    connection, _ = await open_stream(url(server), api_key, "shop")
    _, seen = await asyncio.gather(send_video(connection, LATE_WALK, speed=SPEED), watch())
    assert seen[("vigint_bytes_received_total", ())] > 0
    assert (await asyncio.to_thread(samples, server))[("vigint_frames_decoded_total", ())] == 0
    assert len(server.streams.live()[0].packets()) > 0  # kept for clips and stills
    await connection.close()
    assert await quiet_end(server, client_id) == []
    await asyncio.sleep(0.5)
    assert mailbox.messages == [] and server.metrics.frames_decoded == 0


@pytest.mark.slow  # real-time walks of several seconds: CI runs them (pytest -m slow)
@pytest.mark.parametrize("zone, schedule, edge", [
    ("Europe/Paris", "Wed 20:00-23:00", datetime(2026, 6, 10, 20, 0)),
    # The clocks go from 02:00 to 03:00 that night: a range from 02:30 starts when the clock jumps past it,
    # 03:00 CEST, which is 01:00 UTC (the jump's instant), not 30 minutes later as a fixed offset has it.
    ("Europe/Paris", "Sun 02:30-05:00", datetime(2026, 3, 29, 3, 0)),
], ids=["edge", "spring-forward"])
async def test_a_camera_armed_mid_stream_by_its_schedule_opens_one_incident_at_the_next_walk(
        start, tmp_path, mailbox, zone, schedule, edge):
    clock = Clock()
    server = await start(settings=settings(tmp_path, mailbox), clock=clock)
    client_id, _, api_key = await add_client(server.store)
    await server.store.update_client(client_id, timezone=zone)
    await server.store.set_camera(client_id, "shop", Editor.CUSTOMER, schedule=schedule)
    # Armed once the first walk is over (the footage's 6.5th second), before the second (its 11th).
    clock.reach(edge.replace(tzinfo=ZoneInfo(zone)), after=6.5 / SPEED)
    start_us = await walks(server, api_key)
    [incident] = await quiet_end(server, client_id)
    assert abs(incident.started_at - (start_us / SECOND + SECOND_WALK_STARTS)) <= 0.5
    assert incident.ended_at is not None and incident.clip_path
    await eventually(lambda: len(mailbox.messages) == 1)


@pytest.mark.slow  # a real-time walk of several seconds: CI runs it (pytest -m slow)
async def test_a_mask_over_the_path_hides_the_walk_and_one_elsewhere_does_not(start, tmp_path, mailbox):
    server = await start(settings=dataclasses.replace(settings(tmp_path, mailbox)))
    client_id, _, api_key = await add_client(server.store)
    await server.store.set_camera(client_id, "aisle", Editor.CUSTOMER, masks=[OVER_THE_PATH])
    await server.store.set_camera(client_id, "door", Editor.CUSTOMER, masks=[ABOVE_THE_PATH])
    await asyncio.gather(walks(server, api_key, "aisle"), walks(server, api_key, "door"))
    incidents = await quiet_end(server, client_id)
    # Each walk, on the door camera only.
    assert sorted(incident.camera for incident in incidents) == ["door", "door"]


@pytest.mark.slow  # a real-time walk of several seconds: CI runs it (pytest -m slow)
async def test_a_change_written_while_streaming_reaches_the_running_detector(start, tmp_path, mailbox):
    server = await start(settings=settings(tmp_path, mailbox))
    client_id, _, api_key = await add_client(server.store)
    await server.store.set_camera(client_id, "shop", Editor.CUSTOMER, masks=[OVER_THE_PATH])

    async def unmask():  # the first walk over, the mask goes (back to the operator's: none)
        await asyncio.sleep(3.5 / SPEED)
        await server.store.set_camera(client_id, "shop", Editor.OPERATOR, masks=None)

    start_us = await walks(server, api_key, during=unmask())
    [incident] = await quiet_end(server, client_id)  # the second walk only: the change took less than 2.5 s
    assert abs(incident.started_at - (start_us / SECOND + SECOND_WALK_STARTS)) <= 0.5


@pytest.mark.slow  # a real-time walk of several seconds: CI runs it (pytest -m slow)
async def test_an_incident_open_when_its_camera_is_muted_ends_with_its_clip(start, tmp_path, mailbox):
    server = await start(settings=settings(tmp_path, mailbox))
    client_id, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key, "shop")
    long_walk = make_scene(12, moving=(1, 12))
    sending = asyncio.create_task(send_video(connection, long_walk, speed=2))
    [opened] = await eventually(lambda: server.store.list_incidents(client_id), timeout=8)
    assert opened.ended_at is None
    await server.store.set_camera(client_id, "shop", Editor.MUTE_LINK, muted_until=time.time() + 3600)
    [ended] = await eventually(lambda: server.store.list_incidents(client_id),
                               lambda incidents: incidents[0].ended_at is not None and incidents[0].clip_path)
    assert not sending.done()  # ended while its camera streams on, disarmed
    assert (await server.store.camera_setting(client_id, "shop")).muted_until is not None
    await sending
    await connection.close()
    assert [incident.id for incident in await quiet_end(server, client_id)] == [ended.id]
    assert (tmp_path / "data" / ended.clip_path).exists()


def test_what_the_customer_sets_wins_over_the_operator_s_section_and_that_over_motion():
    operator = Settings(motion=MotionSettings(sensitivity=1.5),
                        cameras=(CameraSettings(5, "door", 2.0, ((0.5, 0.5, 0.75, 0.75),)),))  # past the edge
    cut = rectangle(0.5, 0.5, 0.5, 0.5)
    assert camera_tuning(operator, 5, "door", None) == Tuning(2.0, (cut,))
    assert camera_tuning(operator, 5, "back", None) == Tuning(1.5, ())
    assert camera_tuning(operator, 6, "door", None) == Tuning(1.5, ())  # another client's camera
    customer = CameraSetting(5, "door", parse_schedule("always"), 0.5, (), None, 0.0, Editor.CUSTOMER)
    assert camera_tuning(operator, 5, "door", customer) == Tuning(0.5, ())  # no mask at all, as set
    masks_only = dataclasses.replace(customer, sensitivity=None, masks=(OVER_THE_PATH,))
    assert camera_tuning(operator, 5, "door", masks_only) == Tuning(2.0, (OVER_THE_PATH,))


def test_a_mute_disarms_until_it_ends_whatever_the_schedule():
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC).timestamp()
    muted = CameraSetting(5, "door", parse_schedule("always"), None, None, now + 600, now, Editor.MUTE_LINK)
    paris = ZoneInfo("Europe/Paris")
    assert decide(Settings(), 5, "door", muted, paris, now) == Watch(False, now + 600, Tuning())
    assert decide(Settings(), 5, "door", muted, paris, now + 600).armed
    assert decide(Settings(), 5, "door", None, UTC, now) == Watch(True, None, Tuning())


async def test_footage_recorded_while_disarmed_opens_no_incident_once_sent(start, tmp_path, mailbox):
    server = await start(settings=settings(tmp_path, mailbox))
    client_id, _, api_key = await add_client(server.store)
    # Recorded two days ago, across the evening's arming at 20:00 UTC: the first walk before it, the second after.
    edge = datetime.fromtimestamp(time.time() // 86_400 * 86_400 - 86_400, UTC).replace(hour=20)
    schedule = f"{edge.strftime('%a')} 20:00-23:00"
    await server.store.set_camera(client_id, "shop", Editor.CUSTOMER, schedule=schedule)
    start_us = int((edge.timestamp() - 6.5) * SECOND)
    connection, _ = await open_stream(url(server), api_key, "shop", backfill=True)
    await send_video(connection, EARLY_WALK, start_us)
    await send_video(connection, LATE_WALK, start_us + 5 * SECOND)
    (session,) = [stream for stream in server.streams.open() if stream.backfill]
    await eventually(lambda: session.analysis.until == start_us + 5 * SECOND + LATE_WALK.units[-1][1])
    await connection.close()
    await eventually(lambda: not server.streams.open())
    await server.desk.drain()
    [incident] = await server.store.list_incidents(client_id)
    assert abs(incident.started_at - (start_us / SECOND + SECOND_WALK_STARTS)) <= 0.5


def test_recorded_footage_counts_a_mute_from_the_change_that_set_it_until_its_end():
    muted = CameraSetting(1, "shop", parse_schedule("always"), None, None, muted_until=2_000.0,
                          updated_at=1_000.0, updated_by=Editor.CUSTOMER)
    armed_at = RecordedArming(muted, UTC)
    assert [armed_at(instant) for instant in (999.0, 1_000.0, 1_999.0, 2_000.0, 500.0)] == [
        True, False, False, True, True]
