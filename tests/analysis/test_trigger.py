import random

from hypothesis import given
from hypothesis import strategies as st

from vigint.analysis.trigger import MAX_RAISE, SizeTrigger, middle_deviation

SECOND = 1_000_000
FRAME = 66_666  # µs between frames at 15 fps


def feed(trigger: SizeTrigger, start: int, sizes: list[int]) -> list[int]:
    """Feed one frame size per 1/15 s from `start`; return the frame indexes at which the trigger fired."""
    return [index for index, size in enumerate(sizes) if trigger.update(start + index * FRAME, size)]


def quiet(seconds: float, size: int = 100) -> list[tuple[int, int, bool]]:
    """Two seconds of still frames just before `seconds`: what a stream going idle seeds its trigger with."""
    return [(int((seconds - 2) * SECOND) + index * FRAME, size, False) for index in range(30)]


def test_frames_growing_past_the_factor_of_their_steady_size_fire_but_steady_noise_does_not():
    trigger = SizeTrigger(factor=3.0)
    assert feed(trigger, 0, [60, 40, 400] * 150) == []  # 30 s of a P-frame every third frame: the baseline
    fired = feed(trigger, 30 * SECOND, [1000] * 30)  # motion: every frame larger than the P-frames were
    assert fired and fired[0] <= 15  # within the second the signal builds up over


def test_an_unseeded_trigger_learns_for_two_seconds_and_a_seeded_one_is_ready_at_once():
    assert feed(SizeTrigger(factor=3.0), 0, [50] * 10 + [5000] * 15) == []
    trigger = SizeTrigger(factor=3.0)
    trigger.reset(quiet(10, 50))
    assert feed(trigger, 10 * SECOND, [5000] * 15)  # someone walks in just as the stream went idle


def test_a_false_wake_teaches_the_trigger_and_minutes_without_one_unlearn_it():
    trigger = SizeTrigger(factor=3.0)
    feed(trigger, 0, [100] * 450)
    assert feed(trigger, 30 * SECOND, [600] * 15)  # a flicker: six times the usual bytes
    trigger.false_wake(31 * SECOND)
    trigger.reset(quiet(40))  # idle again
    assert feed(trigger, 40 * SECOND, [600] * 15) == []  # the same flicker no longer wakes the stream
    assert feed(trigger, 41 * SECOND, [1500] * 15)  # a person: far more
    for minute in range(2, 22):  # twenty minutes of short idle periods, none of them a false wake-up
        trigger.reset(quiet(minute * 60))
        feed(trigger, minute * 60 * SECOND, [100] * 150)
    assert trigger.factor == 3.0


def test_a_huge_disturbance_never_deafens_the_trigger():
    trigger = SizeTrigger(factor=3.0)
    feed(trigger, 0, [100] * 450)
    assert feed(trigger, 30 * SECOND, [100_000] * 15)  # the lights went out and came back
    trigger.false_wake(31 * SECOND)
    assert trigger.factor == MAX_RAISE * 3.0


def grain(seconds: float, mean: int = 200, seed: int = 3) -> list[int]:
    """Frame sizes of a noisy still scene: a few per cent of random spread around `mean`."""
    rng = random.Random(seed)
    return [round(rng.gauss(mean, mean * 0.05)) for _ in range(int(seconds * 15))]


def test_a_rise_far_above_the_spread_of_grain_fires_though_under_the_factor():
    trigger = SizeTrigger(factor=3.0)
    assert feed(trigger, 0, grain(30)) == []
    fired = feed(trigger, 30 * SECOND, grain(2, mean=300, seed=4))  # a person: half again
    assert fired and fired[0] <= 15


def test_a_flat_cbr_stream_is_not_woken_by_a_few_bytes():
    trigger = SizeTrigger(factor=3.0)
    assert feed(trigger, 0, [1000] * 450) == []  # no spread at all
    assert feed(trigger, 30 * SECOND, [1100] * 30) == []  # 10% more: the smallest spread is still 3% of it
    assert feed(trigger, 32 * SECOND, [1300] * 30)


def test_the_larger_frames_after_a_keyframe_do_not_wake_a_long_gop():
    trigger = SizeTrigger(factor=3.0)
    fired = []
    for gop in range(6):  # a keyframe every 10 s, its next second of frames twice the usual size
        start = gop * 10 * SECOND
        assert not trigger.update(start, 20_000, keyframe=True)
        sizes = [400] * 15 + grain(9 - 1 / 15, seed=gop)
        fired += feed(trigger, start + FRAME, sizes)
    assert fired == []


def test_a_stream_of_keyframes_only_that_then_sends_smaller_frames_learns_them_before_it_may_wake():
    trigger = SizeTrigger(factor=3.0)
    trigger.reset([(index * FRAME, 9000, True) for index in range(150)])  # idle after 10 s of keyframes only
    start = 10 * SECOND
    assert not trigger.update(start, 9000, keyframe=True)  # then a GOP of 2 s: P-frames come
    assert feed(trigger, start + FRAME, [300] * 44) == []  # learnt for two seconds first (no baseline yet)
    assert feed(trigger, start + 45 * FRAME, [3000] * 15)  # primed: ten times its frames wake it


def test_a_false_wake_in_a_grainy_room_leaves_its_person_unheard_for_five_minutes_at_most():
    trigger = SizeTrigger(factor=3.0)
    feed(trigger, 0, grain(30, mean=300))
    assert feed(trigger, 30 * SECOND, grain(1, mean=1200))  # an infrared switch: four times the bytes
    trigger.false_wake(31 * SECOND)
    trigger.reset([(31 * SECOND + index * FRAME, size, False) for index, size in enumerate(grain(2, 300))])
    assert feed(trigger, 33 * SECOND, grain(1, mean=1200, seed=5)) == []  # the same switch: no wake-up
    after = 32 * SECOND + 300 * SECOND
    feed(trigger, after - 30 * SECOND, grain(30, mean=300, seed=6))  # five minutes later, still
    assert trigger.factor < 3.5 and trigger.spreads < 15  # back within a step, the spread rule with it
    assert feed(trigger, after, grain(2, mean=480, seed=7))  # a person adding 60 % wakes the stream again


@given(st.lists(st.integers(0, 50).map(float), min_size=1, max_size=80), st.integers(0, 79))
def test_the_spread_is_the_median_of_the_signals_distances_to_its_baseline(values, pick):
    values.sort()
    for center in (values[len(values) // 2], values[pick % len(values)], values[0] - 0.5, values[-1] + 0.5):
        expected = sorted(abs(value - center) for value in values)[len(values) // 2]
        assert middle_deviation(values, center) == expected
