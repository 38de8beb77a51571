from vigint.analysis.ring import PacketRing
from vigint.media import PACKET_OVERHEAD_BYTES, Packet

SECOND = 1_000_000


def packet(seconds: float, keyframe: bool, size: int = 100) -> Packet:
    at = int(seconds * SECOND)
    return Packet(at, at, keyframe, b"x" * size)


def feed(ring: PacketRing, seconds: float, fps: int = 10, gop: int = 20, size: int = 100) -> None:
    for index in range(int(seconds * fps)):
        ring.append(packet(index / fps, index % gop == 0, size))


def test_packet_ring_keeps_at_least_its_span_and_at_most_one_gop_more_from_a_keyframe():
    for stop in (5, 12, 25, 61):
        ring = PacketRing(seconds=10, max_bytes=10**9)
        feed(ring, stop)
        packets = ring.packets()
        span = packets[-1].dts - packets[0].dts
        assert packets[0].keyframe
        assert span <= 12 * SECOND  # 10 s plus one 2 s GOP
        assert span >= min(10 * SECOND, (stop - 0.1) * SECOND) - 1
        assert ring.bytes == sum(len(p.data) + PACKET_OVERHEAD_BYTES for p in packets)


def test_packets_before_the_first_keyframe_are_not_kept():
    ring = PacketRing(seconds=10, max_bytes=10**9)
    assert not ring.append(packet(0, False))
    assert ring.append(packet(0.1, True))
    assert len(ring) == 1 and ring.packets()[0].keyframe


def test_byte_cap_drops_the_oldest_gops_first():
    ring = PacketRing(seconds=10, max_bytes=50_000)
    feed(ring, 10, size=1000)  # 100 kB in 10 s: twice the cap
    assert ring.bytes <= 50_000
    assert ring.packets()[0].keyframe and ring.packets()[-1].dts == int(9.9 * SECOND)


def test_one_gop_larger_than_the_cap_is_not_kept():
    ring = PacketRing(seconds=10, max_bytes=5_000)
    feed(ring, 2, size=1000)  # a single 20-packet GOP of 20 kB
    assert len(ring) == 0 and ring.bytes == 0
    assert ring.append(packet(2.0, True, 1000))  # the next keyframe starts afresh
    assert ring.bytes == 1000 + PACKET_OVERHEAD_BYTES


def test_a_flood_of_tiny_packets_is_held_to_the_cap_by_their_count_too():
    ring = PacketRing(seconds=10, max_bytes=1 << 20)
    ring.append(packet(0, True, 4))
    for index in range(100_000):  # 4-byte messages 1 µs apart: 400 kB of data, far more in objects
        ring.append(Packet(index + 1, index + 1, False, b"\x00\x00\x01\x0a"))
    assert len(ring) == 0 or len(ring) <= (1 << 20) // PACKET_OVERHEAD_BYTES


def test_a_replay_takes_the_newest_whole_gops_that_fit_its_budget():
    ring = PacketRing(seconds=10, max_bytes=1 << 20)
    for second in range(6):  # six one-second GOPs of 10 packets of 100 bytes
        for index in range(10):
            ring.append(packet(second + index / 10, index == 0))
    gop = 10 * (100 + PACKET_OVERHEAD_BYTES)
    assert [p.dts for p in ring.since(3 * SECOND, 1 << 20)][0] == 3 * SECOND  # from the keyframe asked for
    assert [p.dts for p in ring.since(3 * SECOND, 2 * gop)][0] == 4 * SECOND  # less its oldest GOP
    assert ring.since(None, 6 * gop) == ring.packets()  # no still keyframe known: the whole ring
    assert ring.since(3 * SECOND, gop - 1) == []  # not even one GOP fits: nothing to replay


def test_a_recorder_asking_what_came_since_a_time_gets_exactly_the_newer_packets():
    ring = PacketRing(seconds=10, max_bytes=10**9)
    feed(ring, 25)
    packets = ring.packets()
    for since in (-1, packets[0].dts, packets[0].dts + 1, int(17.95 * SECOND), int(20 * SECOND),
                  packets[-1].dts - 1, packets[-1].dts):
        assert ring.newer_than(since) == [packet for packet in packets if packet.dts > since]


def test_the_keyframe_a_followed_incident_resumes_from_is_still_kept_when_the_next_one_says_still():
    # Following an incident decodes keyframes `follow_gap` apart; once one looks still, the full decode starts
    # at the one followed two before it, up to two seconds later: that keyframe must still be in the ring.
    # GOP: the gap between followed keyframes (s), four seconds where the ring keeps enough
    for gop, gap in {0.5: 4, 1: 4, 1.5: 4.5, 2: 4, 2.5: 5, 3: 3, 3.5: 3.5, 4: 4, 5: 5}.items():
        ring = PacketRing(seconds=10, max_bytes=10**9)
        fps, lag = 10, 2 * SECOND
        followed, gaps, checked = [0], set(), 0
        for index in range(80 * fps):
            at = index * SECOND // fps
            keyframe = index % round(gop * fps) == 0
            ring.append(Packet(at, at, keyframe, b"x" * 100))
            if len(followed) >= 3 and at == followed[-1] + lag:
                assert ring.packets()[0].dts <= followed[-3], (gop, followed)
                checked += 1
            if keyframe and at - followed[-1] >= ring.follow_gap(4 * SECOND, lag):
                gaps.add((at - followed[-1]) / SECOND)
                followed.append(at)
        assert gaps == {gap} and checked > 10, (gop, gaps, checked)
