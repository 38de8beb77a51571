from vigint.analysis.load import DecodeLoad


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_batches_that_start_at_once_are_no_load_however_busy_the_threads():
    clock = Clock()
    load = DecodeLoad(clock=clock)
    for _ in range(100):  # one stream catching up: a batch, started at once, running 0.1 s
        started = load.queued()
        started()
        clock.now += 0.1
    assert load.saturation == 0 and not load.overloaded


def test_batches_waiting_for_a_thread_make_overload_within_the_window_and_it_fades_after():
    clock = Clock()
    load = DecodeLoad(window_seconds=2, clock=clock)
    started = load.queued()
    clock.now = 0.5
    assert not load.overloaded  # a moment's contention is not overload
    clock.now = 2.0
    assert load.overloaded and 0.6 < load.saturation < 0.7  # 1 - e^-1
    started()
    started()  # a second call (the batch ended) counts nothing more
    clock.now = 4.0
    assert not load.overloaded and load.saturation < 0.3


def test_a_batch_cancelled_before_it_started_waits_no_more():
    clock = Clock()
    load = DecodeLoad(clock=clock)
    load.queued()()  # what the pipeline does when the batch's task is cancelled
    clock.now = 10.0
    assert load.saturation == 0
