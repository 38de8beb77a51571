"""A confirmed incident followed on keyframes ends where a full decode of every frame ends it."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from footage import make_footage
from helpers import eventually

from vigint import protocol
from vigint.analysis.events import Closed, Extended, Opened
from vigint.analysis.pipeline import Mode, StreamAnalysis
from vigint.config import AnalysisSettings, BufferSettings, MotionSettings, Settings

SECOND = 1_000_000
CHUNK = 3  # packets fed at a time before waiting for analysis to catch up, as a real-time sender's arrive


async def incidents(video, cooldown: float, idle_mode: str = "keyframes", disarm_at: float | None = None,
                    followed: list[int] | None = None,
                    ring_bytes: int = BufferSettings.max_packet_buffer_bytes) -> tuple[list[tuple[int, int | None]],
                                                                                     set[Mode]]:
    """Feed footage to a stream's analysis in stream-time order; return each incident's (start, end: its last
    motion, None while open when the stream ended) and the modes the stream went through. `followed` gets the
    frames decoded while following; `ring_bytes` caps the packet ring."""
    settings = Settings(motion=MotionSettings(cooldown_seconds=cooldown),
                        analysis=AnalysisSettings(idle_mode=idle_mode),
                        buffers=BufferSettings(max_packet_buffer_bytes=ring_bytes))
    analysis = StreamAnalysis(settings, 1, "shop", lambda count, first: None)
    events, modes = [], set()
    with ThreadPoolExecutor(1) as pool:
        async def consume():
            async for outcome in analysis.run(pool, batch_seconds=0):
                events.extend(outcome.events)
                if outcome.mode is Mode.FOLLOWING and followed is not None:
                    followed.append(outcome.decoded)

        consuming = asyncio.create_task(consume())
        for index, (pts, dts, _, data) in enumerate(video.units):
            if disarm_at is not None and dts >= disarm_at * SECOND:
                analysis.disarm()
            analysis.receive(protocol.media(pts, dts, data))
            if index % CHUNK == CHUNK - 1:
                await eventually(lambda: analysis.caught_up, interval=0.001)
                modes.add(analysis.mode)
        analysis.end()
        await consuming
    found: list[tuple[int, int | None]] = []
    for event in events:
        if isinstance(event, Opened):
            found.append((event.start, None))
        elif isinstance(event, (Extended, Closed)):
            found[-1] = (found[-1][0], event.end)
    return found, modes


def ended_at(found: list[tuple[int, int | None]]) -> float:
    [(_, end)] = found
    return end / SECOND


async def assert_ends_as_in_full(video, truth: float, cooldown: float, disarm_at: float | None = None,
                                 followed: list[int] | None = None,
                                 ring_bytes: int = BufferSettings.max_packet_buffer_bytes) -> set[Mode]:
    """Check that the stream's one incident ends no earlier than its motion truly ended, nor later than a full
    decode of every frame ends it (the person's ghost in its background), half a second either side; return
    the modes the stream went through."""
    found, modes = await incidents(video, cooldown, disarm_at=disarm_at, followed=followed, ring_bytes=ring_bytes)
    control, _ = await incidents(video, cooldown, idle_mode="full", disarm_at=disarm_at, ring_bytes=ring_bytes)
    assert truth - 0.5 <= ended_at(found) <= max(truth, ended_at(control)) + 0.5, (found, control)
    return modes


@pytest.mark.slow  # 36 s of footage, six times (8 s)
@pytest.mark.parametrize("gop_seconds, cooldown", [(10, 5), (10, 60), (5, 60), (2, 60)])
async def test_a_person_who_walks_out_ends_the_incident_as_a_full_decode_ends_it_not_a_gop_later(
        gop_seconds, cooldown):
    video = make_footage(36, gop_seconds, people=((2, 31),))  # out at 31 s, leaving a ghost a moment
    modes = await assert_ends_as_in_full(video, 31, cooldown)
    assert (Mode.FOLLOWING in modes) == (gop_seconds < 10)  # a GOP of 10 s outlasts half the ring: not followed


@pytest.mark.slow  # 45 s of footage, twice (4 s)
@pytest.mark.parametrize("gop_seconds", [10, 2])
async def test_a_shadow_creeping_across_the_room_does_not_hold_the_incident_open(gop_seconds):
    # The sun's shadow moves 1.5 px/s: 15 px between two keyframes of a 10 s GOP, which a full decode absorbs.
    video = make_footage(45, gop_seconds, people=((2, 12),), shadow=1.5)
    await assert_ends_as_in_full(video, 12, 30)  # no second incident either (nor one extended while idle)


async def test_a_stream_with_a_single_keyframe_still_ends_its_incident():
    video = make_footage(24, 40, people=((2, 12),), width=320, height=180)  # one keyframe: a GOP of 40 s
    found, modes = await incidents(video, 5)
    [(start, end)] = found
    assert abs(start / SECOND - 2) <= 0.5 and abs(end / SECOND - 12) <= 0.5
    assert Mode.IDLE in modes  # closed after the cooldown, then idle: not followed until the end


@pytest.mark.parametrize("gop_seconds, person, seconds", [(2, (2, 30), 30), (5, (21, 38), 39.5)])
async def test_a_stream_that_ends_while_following_ends_its_incident_at_the_last_motion(gop_seconds, person, seconds):
    video = make_footage(seconds, gop_seconds, people=(person,), width=320, height=180)
    modes = await assert_ends_as_in_full(video, person[1], 60)
    assert Mode.FOLLOWING in modes


async def test_disarming_a_camera_while_following_ends_its_incident_at_the_last_motion():
    video = make_footage(22, 5, people=((2, 22),), width=320, height=180)
    modes = await assert_ends_as_in_full(video, 19, 60, disarm_at=19)  # not at the keyframe of 15 s
    assert Mode.FOLLOWING in modes


@pytest.mark.parametrize("gop_seconds, every", [(1, 4), (3, 3)])
async def test_a_followed_incident_decodes_a_keyframe_every_four_seconds_not_every_one(gop_seconds, every):
    # Four seconds apart while the ring (10 s) keeps the keyframe before the one that moved last; a GOP of 3 s
    # has every keyframe followed: one of each two would let it go before the next said still.
    video = make_footage(32, gop_seconds, people=((2, 27),), width=320, height=180)
    followed = []
    modes = await assert_ends_as_in_full(video, 27, 60, followed=followed)
    assert Mode.FOLLOWING in modes
    confirmed = 2 + 5 + gop_seconds  # the incident's motion confirmed 5 s after it opened, at a keyframe
    during = (27 - confirmed) // every  # then two more at most: one that moved, one that looks still
    assert during <= sum(followed) <= during + 3, followed


async def test_a_ring_its_byte_cap_keeps_short_still_ends_a_followed_incident_where_a_full_decode_does():
    # 1 MiB holds about 5 s of this 1.5 Mbit/s stream, not the 8 s back a full decode may resume from: the
    # stream decodes in full again before the ring forgets that keyframe
    video = make_footage(22, 1, people=((2, 17),), width=320, height=180, bitrate=1_500_000)
    modes = await assert_ends_as_in_full(video, 17, 60, ring_bytes=2**20)
    assert Mode.FOLLOWING in modes
