from vigint.agent.gops import GopQueue
from vigint.media import Packet

SECOND = 1_000_000


def unit(index: int, fps: int = 10, gop: int = 10) -> Packet:
    at = index * SECOND // fps
    return Packet(at, at, index % gop == 0, bytes([index % 256]))


def test_a_fast_link_gets_every_unit_in_order():
    queue = GopQueue(max_seconds=2)
    sent = []
    for index in range(50):
        queue.push(unit(index))
        sent.append(queue.pop().data)
    assert sent == [bytes([i]) for i in range(50)] and queue.dropped_gops == 0


def test_a_slow_link_drops_whole_gops_and_finishes_the_one_it_started():
    queue = GopQueue(max_seconds=2)
    for index in range(5):
        queue.push(unit(index))
    started = [queue.pop() for _ in range(3)]  # units 0-2 of the first GOP are on the wire
    for index in range(5, 60):
        queue.push(unit(index))
    rest = []
    while (packet := queue.pop()) is not None:
        rest.append(packet.data[0])
    assert [p.data[0] for p in started] == [0, 1, 2]
    # The GOP in flight is completed; while it was stuck, every GOP but the live one became too old.
    assert rest == [3, 4, 5, 6, 7, 8, 9, *range(50, 60)]
    assert queue.dropped_gops == 4


def test_backlog_is_measured_from_the_oldest_unsent_unit():
    queue = GopQueue(max_seconds=2)
    for index in range(25):  # 2.5 s queued, nothing sent: the first GOP is now too old
        queue.push(unit(index))
    assert queue.dropped_gops == 1 and queue.pop().data[0] == 10
    assert len(queue) == 14


def test_units_before_the_first_keyframe_and_after_a_restart_wait_for_a_keyframe():
    queue = GopQueue(max_seconds=2)
    queue.push(unit(5))  # not a keyframe: undecodable alone
    assert queue.pop() is None
    for index in range(10, 14):
        queue.push(unit(index))
    assert queue.pop().data[0] == 10
    queue.restart()  # reconnected mid-GOP: the rest of it is useless to the new decoder
    queue.push(unit(14))
    assert queue.pop() is None and queue.dropped_gops == 1
    queue.push(unit(20))
    assert queue.pop().keyframe
