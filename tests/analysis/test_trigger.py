from vigint.analysis.trigger import SizeTrigger

FRAME = 66_666  # µs between frames at 15 fps


def feed(trigger: SizeTrigger, start: int, sizes: list[int]) -> list[int]:
    """Feed one frame size per 1/15 s from `start`; return the frame indexes at which the trigger fired."""
    return [index for index, size in enumerate(sizes) if trigger.update(start + index * FRAME, size)]


def test_frames_growing_past_the_factor_of_their_steady_size_fire_but_steady_noise_does_not():
    trigger = SizeTrigger(factor=3.0)
    assert feed(trigger, 0, [60, 40, 400] * 150) == []  # 30 s of a P-frame every third frame: the baseline
    fired = feed(trigger, 30_000_000, [1000] * 30)  # motion: every frame larger than the P-frames were
    assert fired and fired[0] <= 15  # within the second the signal builds up over


def test_nothing_fires_while_the_baseline_is_being_learnt():
    assert feed(SizeTrigger(factor=3.0), 0, [50] * 10 + [5000] * 15) == []  # the first two seconds


def test_a_false_wake_teaches_the_trigger_and_quiet_time_unlearns_it():
    trigger = SizeTrigger(factor=3.0)
    feed(trigger, 0, [100] * 450)
    assert feed(trigger, 30_000_000, [600] * 15)  # a flicker: six times the usual bytes
    trigger.false_wake()
    trigger.reset()  # the stream went idle again
    feed(trigger, 40_000_000, [100] * 450)
    assert feed(trigger, 70_000_000, [600] * 15) == []  # the same flicker no longer wakes the stream
    assert feed(trigger, 71_000_000, [1500] * 15)  # a person: far more
    trigger.reset()
    feed(trigger, 80_000_000, [100] * 15 * 60 * 20)  # twenty quiet minutes
    assert trigger.factor == 3.0
