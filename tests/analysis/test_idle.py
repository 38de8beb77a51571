"""Idle analysis: a still stream decodes a keyframe now and then, and wakes without losing a frame."""

import asyncio
import dataclasses
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from footage import make_footage
from helpers import eventually

from vigint import protocol
from vigint.analysis.events import Closed, Extended, Opened
from vigint.analysis.pipeline import Mode, StreamAnalysis, Wake
from vigint.config import AnalysisSettings, Settings

SECOND = 1_000_000
CHUNK = 3  # packets fed at a time (0.2 s at 15 fps) before waiting for analysis to catch up


@dataclasses.dataclass
class Run:
    analysis: StreamAnalysis
    opened: list[tuple[Opened, int, int]]  # each incident opened, with the newest and oldest packet times then
    modes: list[tuple[int, Mode]]  # the mode after each chunk, at the newest stream time received
    wakes: Counter  # what woke the stream, each time
    outcomes: list = dataclasses.field(default_factory=list)  # every batch's outcome

    def seconds_in(self, mode: Mode) -> float:
        """Return the stream time spent in `mode`, a chunk at a time."""
        return sum(later - earlier for (earlier, was), (later, _) in zip(self.modes, self.modes[1:])
                   if was is mode) / SECOND


async def stream(video, settings: Settings = Settings()) -> Run:
    """Feed footage to a stream's analysis in stream-time order, letting analysis catch up every CHUNK packets
    (as a real-time sender would), and record when incidents open and which mode the stream is in."""
    analysis = StreamAnalysis(settings, 1, "shop", lambda count, first: None)
    run = Run(analysis, [], [], Counter())
    with ThreadPoolExecutor(1) as pool:
        async def consume():
            async for outcome in analysis.run(pool, batch_seconds=0):
                run.wakes.update([outcome.woke] if outcome.woke else [])
                run.outcomes.append(outcome)
                run.opened += [(event, analysis.packets.newest_dts(), analysis.packets.packets()[0].dts)
                               for event in outcome.events if isinstance(event, Opened)]

        consuming = asyncio.create_task(consume())
        for index, (pts, dts, _, data) in enumerate(video.units):
            analysis.receive(protocol.media(pts, dts, data))
            if index % CHUNK == CHUNK - 1:
                await eventually(lambda: analysis.caught_up, interval=0.001)
                run.modes.append((dts, analysis.mode))
        analysis.end()
        await consuming
    return run


def mode_at(run: Run, seconds: float) -> Mode:
    return next(mode for dts, mode in reversed(run.modes) if dts <= seconds * SECOND)


@pytest.mark.parametrize("gop_seconds, bframes", [(1, 0), (10, 0), (2, 2)])
async def test_a_person_walking_into_a_still_shop_wakes_it_by_frame_sizes_and_is_one_incident(gop_seconds, bframes):
    video = make_footage(30, gop_seconds, people=((20.5, 25.5),), bframes=bframes)  # between keyframes
    run = await stream(video)
    assert mode_at(run, 20) is Mode.IDLE  # still since the start: idle after 10 s
    [(incident, raised_at, oldest)] = run.opened
    assert 20.5 * SECOND <= incident.start <= 21 * SECOND  # the first moving frame, not the wake-up
    assert raised_at - 20.5 * SECOND <= 2.5 * SECOND
    assert oldest <= incident.start - 5 * SECOND  # the ring still holds the clip's pre-roll
    assert run.wakes == {Wake.SIZE: 1} and run.seconds_in(Mode.IDLE) >= 10


async def test_a_camera_whose_frame_sizes_say_nothing_is_woken_by_its_next_keyframe():
    settings = Settings(analysis=AnalysisSettings(wake_size_factor=1000, idle_refresh_seconds=0))  # a CBR camera
    run = await stream(make_footage(30, 2, people=((20.5, 25.5),)), settings)
    [(incident, raised_at, _)] = run.opened
    assert 20.5 * SECOND <= incident.start <= 21 * SECOND  # decoded again from the last still keyframe, at 20 s
    assert raised_at - 20.5 * SECOND <= 2 * SECOND + 1.5 * SECOND  # one GOP and a half
    assert run.wakes == {Wake.KEYFRAME: 1}


@pytest.mark.parametrize("gop_seconds", [1, 10])
@pytest.mark.parametrize("width, height", [(320, 240), pytest.param(1280, 720, marks=pytest.mark.slow)])
async def test_a_person_walking_into_a_grainy_still_room_is_reported_within_two_and_a_half_seconds(
        width, height, gop_seconds):
    # Night grain (σ 6) fills the frames: a person adds only a half to twice their bytes, not the factor.
    video = make_footage(20, gop_seconds, people=((14.5, 20),), noise=6.0, width=width, height=height, crf=27)
    run = await stream(video)
    assert mode_at(run, 14) is Mode.IDLE
    [(incident, raised_at, _)] = run.opened
    assert abs(incident.start - 14.5 * SECOND) <= 0.5 * SECOND
    assert raised_at - 14.5 * SECOND <= 2.5 * SECOND, (raised_at / SECOND, run.wakes)


@pytest.mark.slow  # two minutes of footage analysed in full (7 s)
async def test_noise_and_a_flickering_light_for_two_minutes_raise_nothing_and_leave_the_stream_idle():
    video = make_footage(120, 2, noise=4.0, flicker=0.3, width=320, height=180)
    run = await stream(video)
    assert run.opened == []
    idle, active = run.seconds_in(Mode.IDLE), run.seconds_in(Mode.ACTIVE)
    assert idle / (idle + active) >= 0.9, (idle, active, run.wakes)


async def test_full_mode_decodes_every_frame_and_never_idles():
    video = make_footage(30, 2, people=((20.5, 25.5),))
    run = await stream(video, Settings(analysis=AnalysisSettings(idle_mode="full")))
    assert {mode for _, mode in run.modes} == {Mode.ACTIVE}
    assert run.analysis.frames_decoded == video.frames
    [(incident, _, _)] = run.opened
    assert 20.5 * SECOND <= incident.start <= 21 * SECOND


async def test_motion_an_idle_stream_sent_just_before_it_ended_is_still_analysed():
    settings = Settings(analysis=AnalysisSettings(wake_size_factor=1000, idle_refresh_seconds=100))  # nothing wakes it
    run = await stream(make_footage(20, 2, people=((16.5, 20),)), settings)
    [(incident, _, _)] = run.opened  # found by the replay of what came since the last still keyframe
    assert 16.5 * SECOND <= incident.start <= 17 * SECOND and run.wakes == {}


@pytest.mark.parametrize("gop_seconds", [1, 2])
async def test_a_long_incident_decodes_its_keyframes_only_once_confirmed_and_still_ends_at_its_last_motion(
        gop_seconds):
    video = make_footage(40, gop_seconds, people=((2, 31.5),))
    run = await stream(video)
    events = [event for outcome in run.outcomes for event in outcome.events]
    [incident] = [event for event in events if isinstance(event, Opened)]
    assert abs(incident.start - 2 * SECOND) <= 0.5 * SECOND
    last_motion = max(event.end for event in events if isinstance(event, (Extended, Closed)))
    assert abs(last_motion - 31.5 * SECOND) <= 0.5 * SECOND  # placed by a full decode of its last GOPs
    assert run.seconds_in(Mode.FOLLOWING) >= 20
    # The first 7 s, a keyframe every 4 s, the last 4-8 s of motion again and the 10 s before it idles
    assert run.analysis.frames_decoded <= 0.6 * video.frames
