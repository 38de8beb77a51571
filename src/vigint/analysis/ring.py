"""A stream's packet ring, pure (no I/O, no decoding): the encoded access units of the last
`long_buffer_seconds`, always starting at a keyframe, so a clip can be cut from it by remuxing."""

from collections import deque

from vigint.media import MICROSECONDS, Packet


class PacketRing:
    """Whole GOPs of encoded packets covering at least the last `seconds`, at most that plus one GOP.

    A GOP is dropped from the front only when the GOPs after it still cover `seconds`, so the ring always
    starts at a keyframe and a clip can always reach `seconds` back. Packets before the first keyframe
    cannot be decoded and are not kept. `max_bytes` bounds memory whatever the sender does: past it,
    the oldest GOPs go even if that shortens the span.
    """

    def __init__(self, seconds: float | None, max_bytes: int):
        """`seconds` None: bounded by `max_bytes` only (recorded footage, whose gaps must not trim what is
        still to be analysed)."""
        self._span = None if seconds is None else int(seconds * MICROSECONDS)
        self._max_bytes = max_bytes
        self._gops: deque[list[Packet]] = deque()
        self.bytes = 0

    def append(self, packet: Packet) -> bool:
        """Add a packet; return False if it was not kept (no keyframe seen yet)."""
        if packet.keyframe:
            self._gops.append([packet])
        elif self._gops:
            self._gops[-1].append(packet)
        else:
            return False
        self.bytes += packet.cost
        self._trim(packet.dts)
        return True

    def _trim(self, newest_dts: int) -> None:
        while len(self._gops) > 1 and (
                self._span is not None and newest_dts - self._gops[1][0].dts >= self._span
                or self.bytes > self._max_bytes):
            self.bytes -= sum(p.cost for p in self._gops.popleft())
        if self.bytes > self._max_bytes and len(self._gops) == 1:
            self.bytes = 0  # one GOP alone over the cap: keep nothing rather than an unbounded GOP
            self._gops.clear()

    def newest_dts(self) -> int | None:
        """Return the decode time of the newest buffered packet, if any."""
        return self._gops[-1][-1].dts if self._gops else None

    def newest(self) -> Packet | None:
        """Return the newest buffered packet, if any."""
        return self._gops[-1][-1] if self._gops else None

    def last_keyframe_dts(self) -> int | None:
        """Return the decode time of the newest buffered keyframe, if any."""
        return self._gops[-1][0].dts if self._gops else None

    def _newest_gop(self) -> int | None:
        """Return how far apart (µs) the two newest buffered keyframes are, if there are two."""
        return self._gops[-1][0].dts - self._gops[-2][0].dts if len(self._gops) > 1 else None

    def keyframes_within(self, span: int) -> bool:
        """Return whether the two newest buffered keyframes are at most `span` µs apart, and the ring keeps
        two GOPs that long: the one before a keyframe is where a stream following an incident on keyframes
        decodes from to find where the motion ended (see pipeline.py)."""
        gop = self._newest_gop()
        return gop is not None and gop <= span and (self._span is None or 2 * gop <= self._span)

    def holds_after_oldest(self, dts: int | None) -> bool:
        """Return whether the keyframe at `dts` is buffered and is not the oldest: the next trim leaves it."""
        return dts is not None and len(self._gops) > 1 and self._gops[0][0].dts < dts

    def follow_gap(self, every: int, lag: int) -> int:
        """Return how far apart (µs) a stream following an incident may decode keyframes: `every`, or less where
        the keyframe its full decode would resume from could leave the ring first. That decode starts at the
        keyframe followed two before the one that looked still, and may come `lag` after it; two gaps between
        followed keyframes (each under the one returned plus a GOP) and the lag stay within the span plus a
        GOP, which is what the ring keeps."""
        if self._span is None:
            return every
        return min(every, (self._span - lag - (self._newest_gop() or 0)) // 2)

    def gop_cost(self, dts: int | None) -> int:
        """Return the cost of the buffered GOP whose keyframe is at `dts` (0 if none is)."""
        return next((sum(packet.cost for packet in gop) for gop in self._gops if gop[0].dts == dts), 0)

    def since(self, dts: int | None, max_bytes: int) -> list[Packet]:
        """Return the buffered packets from the keyframe at `dts` on (from the oldest if it was forgotten, or
        is None), less their oldest GOPs while they hold over `max_bytes`: always whole GOPs, maybe none."""
        gops = [gop for gop in self._gops if dts is None or gop[0].dts >= dts] or list(self._gops)
        costs = [sum(packet.cost for packet in gop) for gop in gops]
        while gops and sum(costs) > max_bytes:
            gops.pop(0)
            costs.pop(0)
        return [packet for gop in gops for packet in gop]

    def newer_than(self, dts: int) -> list[Packet]:
        """Return the buffered packets decoded after `dts`, in decode order: found from the newest end, so
        that a recorder looking for what came since its last look costs what came, not the whole ring."""
        fresh: list[Packet] = []
        for gop in reversed(self._gops):
            if gop[0].dts > dts:
                fresh[:0] = gop
                continue
            fresh[:0] = [packet for packet in gop if packet.dts > dts]
            break
        return fresh

    def packets(self) -> list[Packet]:
        """Return the buffered packets in decode order, starting at a keyframe."""
        return [packet for gop in self._gops for packet in gop]

    def __len__(self) -> int:
        return sum(len(gop) for gop in self._gops)
