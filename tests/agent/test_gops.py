from vigint.agent.gops import GopQueue
from vigint.media import Packet

SECOND = 1_000_000


def unit(index: int, fps: int = 10, gop: int = 10) -> Packet:
    at = index * SECOND // fps
    return Packet(at, at, index % gop == 0, bytes([index % 256]))


def firsts(gops: list[list[Packet]]) -> list[tuple[int, int]]:
    """Each GOP as (its first unit, its unit count)."""
    return [(gop[0].data[0], len(gop)) for gop in gops]


def streaming_queue(max_seconds: float = 2) -> GopQueue:
    queue = GopQueue(max_seconds)
    queue.resume()
    return queue


def test_a_fast_link_gets_every_unit_in_order_and_spools_nothing():
    queue = streaming_queue()
    sent, spooled = [], []
    for index in range(50):
        spooled += queue.push(unit(index))
        sent.append(queue.pop().data)
    assert sent == [bytes([i]) for i in range(50)] and spooled == []


def test_a_slow_link_spools_whole_gops_and_finishes_the_one_it_started():
    queue = streaming_queue()
    spooled = []
    for index in range(5):
        spooled += queue.push(unit(index))
    started = [queue.pop() for _ in range(3)]  # units 0-2 of the first GOP are on the wire
    for index in range(5, 60):
        spooled += queue.push(unit(index))
    rest = []
    while (packet := queue.pop()) is not None:
        rest.append(packet.data[0])
    assert [p.data[0] for p in started] == [0, 1, 2]
    # The GOP in flight is completed; while it was stuck, every GOP but the live one went to the spool, whole.
    assert rest == [3, 4, 5, 6, 7, 8, 9, *range(50, 60)]
    assert firsts(spooled) == [(10, 10), (20, 10), (30, 10), (40, 10)]


def test_while_not_streaming_every_complete_gop_goes_to_the_spool():
    queue = GopQueue(max_seconds=2)  # connecting, or waiting to reconnect
    spooled = []
    for index in range(3, 35):  # units before the first keyframe cannot be decoded: not even spooled
        spooled += queue.push(unit(index))
    assert firsts(spooled) == [(10, 10), (20, 10)]
    assert len(queue) == 5 and queue.waiting_gops == 1  # only the GOP still being recorded stays
    queue.resume()
    assert queue.pop().data[0] == 30  # live video starts at its keyframe


def test_a_gop_cut_off_by_a_lost_connection_is_spooled_whole():
    queue = streaming_queue()
    for index in range(15):
        queue.push(unit(index))
    assert [queue.pop().data[0] for _ in range(4)] == [0, 1, 2, 3]
    spooled = queue.pause()
    assert firsts(spooled) == [(0, 10)]  # sent in part: the spool gets all of it, keyframe first
    assert len(queue) == 5  # the GOP being recorded stays, to go live or to the spool once complete
    for index in range(15, 21):
        spooled += queue.push(unit(index))
    assert firsts(spooled) == [(0, 10), (10, 10)]


def test_the_recording_gop_sent_so_far_starts_again_after_a_reconnection():
    queue = streaming_queue()
    for index in range(4):
        queue.push(unit(index))
        queue.pop()
    assert queue.pause() == [] and len(queue) == 4  # its rest is useless without its keyframe
    queue.resume()
    assert [queue.pop().data[0] for _ in range(4)] == [0, 1, 2, 3]


def test_a_clean_stop_hands_over_everything_unsent():
    queue = streaming_queue(max_seconds=5)
    for index in range(25):
        queue.push(unit(index))
    for _ in range(10):
        queue.pop()  # the first GOP went out whole
    queue.delivered()
    assert firsts(queue.drain()) == [(10, 10), (20, 5)] and len(queue) == 0


def test_a_stop_spools_what_went_out_only_if_the_server_did_not_confirm_it():
    def sent_all() -> GopQueue:
        queue = streaming_queue()
        for index in range(5):
            queue.push(unit(index))
            queue.pop()
        return queue

    unconfirmed = sent_all()  # the connection was lost: written to the socket is not received
    assert firsts(unconfirmed.drain()) == [(0, 5)]
    confirmed = sent_all()
    confirmed.delivered()  # the server answered the close
    assert confirmed.drain() == [] and len(confirmed) == 0  # nothing to send twice
    in_part = sent_all()
    in_part.push(unit(5))
    in_part.delivered()
    assert firsts(in_part.drain()) == [(0, 6)]  # its last unit needs its keyframe: spooled whole
