"""Per-stream ring buffers, pure data structures (no I/O, no decoding).

`PacketRing` keeps the encoded access units of the last `long_buffer_seconds`, always starting at a
keyframe, so a clip can be cut from it by remuxing. `FrameRing` keeps the small gray frames analysis
looks at, for the last `short_buffer_seconds`.
"""

from collections import deque
from dataclasses import dataclass

import numpy as np

MICROSECONDS = 1_000_000
# What holding one packet costs beyond its bytes (the Packet, its bytes object, list slots), charged
# against byte caps so that a flood of 4-byte messages cannot hold millions of packets under them.
PACKET_OVERHEAD_BYTES = 256


@dataclass(frozen=True)
class Packet:
    """One access unit as received: times in µs since the Unix epoch."""

    pts: int
    dts: int
    keyframe: bool
    data: bytes

    @property
    def cost(self) -> int:
        """The memory this packet holds, as charged against byte caps."""
        return len(self.data) + PACKET_OVERHEAD_BYTES


class PacketRing:
    """Whole GOPs of encoded packets covering at least the last `seconds`, at most that plus one GOP.

    A GOP is dropped from the front only when the GOPs after it still cover `seconds`, so the ring always
    starts at a keyframe and a clip can always reach `seconds` back. Packets before the first keyframe
    cannot be decoded and are not kept. `max_bytes` bounds memory whatever the sender does: past it,
    the oldest GOPs go even if that shortens the span.
    """

    def __init__(self, seconds: float, max_bytes: int):
        self._span = int(seconds * MICROSECONDS)
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
        while len(self._gops) > 1 and (newest_dts - self._gops[1][0].dts >= self._span
                                       or self.bytes > self._max_bytes):
            self.bytes -= sum(p.cost for p in self._gops.popleft())
        if self.bytes > self._max_bytes and len(self._gops) == 1:
            self.bytes = 0  # one GOP alone over the cap: keep nothing rather than an unbounded GOP
            self._gops.clear()

    def newest_dts(self) -> int | None:
        """Return the decode time of the newest buffered packet, if any."""
        return self._gops[-1][-1].dts if self._gops else None

    def packets(self) -> list[Packet]:
        """Return the buffered packets in decode order, starting at a keyframe."""
        return [packet for gop in self._gops for packet in gop]

    def __len__(self) -> int:
        return sum(len(gop) for gop in self._gops)


@dataclass(frozen=True)
class Frame:
    """A downscaled gray frame for analysis, at its presentation time (µs since the Unix epoch)."""

    pts: int
    pixels: np.ndarray


class FrameRing:
    """The small gray frames of the last `seconds`."""

    def __init__(self, seconds: float):
        self._span = int(seconds * MICROSECONDS)
        self._frames: deque[Frame] = deque()

    def append(self, frame: Frame) -> None:
        """Add a frame and forget those older than the span."""
        self._frames.append(frame)
        while self._frames and frame.pts - self._frames[0].pts >= self._span:
            self._frames.popleft()

    def frames(self) -> list[Frame]:
        """Return the buffered frames, oldest first."""
        return list(self._frames)

    def __len__(self) -> int:
        return len(self._frames)
