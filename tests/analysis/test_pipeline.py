import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor

from footage import make_h264, make_scene
from helpers import eventually

from vigint import protocol
from vigint.analysis.events import Closed, Extended, Opened
from vigint.analysis.load import DecodeLoad
from vigint.analysis.pipeline import StreamAnalysis
from vigint.config import MotionSettings, ServerSettings, Settings

SECOND = 1_000_000


async def analyse(settings: Settings, video, undecodable: list | None = None, burst: bool = False,
                  load: DecodeLoad | None = None, armed: bool = True,
                  steps: dict[int, str] | None = None,
                  decoded_at: dict | None = None) -> tuple[StreamAnalysis, list]:
    """Feed a video to a stream's analysis a second at a time as analysis keeps up (or all at once: `burst`),
    then end it; return the analysis and every batch's outcome. `steps` arms or disarms it (`arm`,
    `disarm`) before the packet of each index, once analysis caught up, noting the frames decoded then in
    `decoded_at`."""
    analysis = StreamAnalysis(settings, 1, "door",
                              lambda count, first: (undecodable if undecodable is not None else []).append(count),
                              load, armed=armed)
    with ThreadPoolExecutor(1) as pool:
        outcomes = []

        async def collect():
            outcomes.extend([outcome async for outcome in analysis.run(pool, batch_seconds=0)])

        running = asyncio.create_task(collect())
        for index, (pts, dts, _, data) in enumerate(video.units):
            if index in (steps or {}):
                await eventually(lambda: analysis.caught_up, interval=0.001)
                (decoded_at if decoded_at is not None else {})[index] = analysis.frames_decoded
                getattr(analysis, steps[index])()
            analysis.receive(protocol.media(pts, dts, data))
            if not burst and index % video.fps == video.fps - 1:
                await eventually(lambda: analysis.intake.queued_packets == 0)
        analysis.end()
        await running
    return analysis, outcomes


async def test_a_moving_object_opens_extends_and_closes_one_incident_from_its_first_moving_frame():
    settings = Settings(motion=MotionSettings(cooldown_seconds=3.0))
    analysis, outcomes = await analyse(settings, make_scene(16, moving=(5, 9)))
    events = [event for outcome in outcomes for event in outcome.events]
    assert isinstance(events[0], Opened) and 5 * SECOND <= events[0].start <= 5.5 * SECOND
    assert all(isinstance(event, Extended) for event in events[1:-1]) and len(events) > 2
    # the square leaving is motion too
    assert isinstance(events[-1], Closed) and 8.5 * SECOND <= events[-1].end <= 9.5 * SECOND
    assert sum(outcome.decoded for outcome in outcomes) == analysis.frames_decoded == make_scene(16).frames
    assert analysis.video_size == (320, 180) and all(outcome.refusal is None for outcome in outcomes)


async def test_a_still_scene_gives_no_event():
    _, outcomes = await analyse(Settings(), make_scene(6))
    assert [event for outcome in outcomes for event in outcome.events] == []


def saturated() -> DecodeLoad:
    """A decode load whose threads have had a batch waiting for 10 s (on a clock that then stands still)."""
    now = [0.0]
    load = DecodeLoad(clock=lambda: now[0])
    load.queued()  # never started
    now[0] = 10.0
    return load


async def test_a_backlog_past_its_limit_skips_to_a_keyframe_yet_the_ring_keeps_every_packet():
    video = make_h264(4, width=320, height=180)
    settings = Settings(server=ServerSettings(max_decode_catchup_seconds=1))
    undecodable = []
    analysis, outcomes = await analyse(settings, video, undecodable, burst=True)
    assert len(analysis.packets) == video.frames  # clips still have every packet
    assert 0 < analysis.frames_decoded < video.frames  # analysis shed load instead of falling behind
    assert undecodable == [] and all(outcome.refusal is None for outcome in outcomes)
    assert sum(len(outcome.waited) for outcome in outcomes) == analysis.frames_decoded  # one wait per packet analysed


async def test_each_camera_gets_its_own_motion_tuning():
    settings = Settings(motion=MotionSettings(cooldown_seconds=3.0))
    tuned = dataclasses.replace(settings, cameras=(
        dataclasses.replace(settings.camera(1, "door"), masks=((0.0, 0.0, 1.0, 1.0),)),))  # the whole picture masked
    _, outcomes = await analyse(tuned, make_scene(16, moving=(5, 9)))
    assert [event for outcome in outcomes for event in outcome.events] == []


async def test_a_burst_is_analysed_in_full_unless_the_decode_threads_are_saturated():
    video = make_h264(4, width=320, height=180)
    settings = Settings(server=ServerSettings(max_decode_backlog_seconds=1))
    spare, _ = await analyse(settings, video, burst=True, load=DecodeLoad())
    assert spare.frames_decoded == video.frames
    undecodable = []
    overloaded, outcomes = await analyse(settings, video, undecodable, burst=True, load=saturated())
    assert 0 < overloaded.frames_decoded < video.frames and len(overloaded.packets) == video.frames
    assert undecodable == [] and all(outcome.refusal is None for outcome in outcomes)


async def steered(video, steps: dict[int, str], armed: bool = True) -> tuple[StreamAnalysis, list, dict]:
    """Analyse a video, armed and disarmed by `steps`; return the analysis, its events and the frames it had
    decoded at each step."""
    settings = Settings(motion=MotionSettings(cooldown_seconds=3.0))
    decoded_at = {}
    analysis, outcomes = await analyse(settings, video, armed=armed, steps=steps, decoded_at=decoded_at)
    return analysis, [event for outcome in outcomes for event in outcome.events], decoded_at


async def test_a_disarmed_stream_decodes_nothing_and_armed_mid_gop_starts_at_its_newest_keyframe():
    video = make_scene(8, moving=(5, 7))  # a keyframe a second
    mid_gop = 3 * video.fps + 7
    analysis, events, decoded_at = await steered(video, {0: "disarm", mid_gop: "arm"}, armed=False)
    assert decoded_at[mid_gop] == 0 and len(analysis.packets) == video.frames  # kept, not decoded
    assert analysis.frames_decoded == video.frames - 3 * video.fps  # from the keyframe at 3 s on
    assert isinstance(events[0], Opened) and 5 * SECOND <= events[0].start <= 5.5 * SECOND
    assert [type(event) for event in events].count(Opened) == 1


async def test_disarming_ends_the_open_incident_at_its_last_motion_and_stops_decoding():
    video = make_scene(10, moving=(2, 10))
    analysis, events, decoded_at = await steered(video, {5 * video.fps: "disarm"})
    assert isinstance(events[0], Opened) and isinstance(events[-1], Closed)
    assert events[-1].end <= 5 * SECOND and [type(event) for event in events].count(Closed) == 1
    assert analysis.frames_decoded == decoded_at[5 * video.fps]  # nothing after it
    assert analysis.mode.value == "disarmed" and not analysis.armed


async def test_a_stream_waiting_for_its_settings_loses_nothing_once_armed():
    video = make_scene(4, moving=(1, 4))
    analysis, events, _ = await steered(video, {2 * video.fps + 5: "arm"}, armed=False)
    assert analysis.frames_decoded == video.frames  # the whole ring, from its first keyframe
    assert isinstance(events[0], Opened) and events[0].start <= 1.5 * SECOND
