"""One stream's gate between its socket and its decoder, pure: what is kept, what is decoded, what ends it.

Every media message is checked before any expensive work: its header, how many NAL units it holds
(counted at C speed) and the picture size each SPS in it declares, so that no byte of a stream beyond
its limits reaches FFmpeg. Then the gate decides which packets the decoder gets: from a keyframe on,
while the decode backlog is within bounds; past them analysis skips ahead to the next keyframe. The backlog
is measured in stream time, from the oldest packet not yet analysed to the newest: a burst after a stall is
analysed in full while the server has decode threads to spare, and shed only past `max_backlog_us` on an
overloaded server (so it stays real-time), past `max_catchup_us` on any (so no stream falls minutes behind),
or past `max_backlog_bytes` (memory, whatever the timestamps say). What cannot be decoded is counted,
including what is skipped while waiting for a keyframe after an error, so a stream of garbage ends with
4415 whatever shape it takes.

Recorded footage (a complete gate) is billed by the time its decode times cover and read as fast as its
analysis reaches them, so those times must advance like a camera's frames: in decode order, and at most
MAX_UNITS_PER_SECOND access units a second of them (4415 past it, see `Cadence`). A sender stamping 50 s of
footage 1 µs apart would otherwise be billed a millisecond for it and escape the read throttle.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vigint import h264, protocol
from vigint.media import MICROSECONDS, Packet
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.streaming import ServerSettings

# Access units a second of recorded footage may hold: the fastest camera's frames (protocol.MAX_FRAME_RATE),
# with room for the jitter of timestamps rounded to µs or taken from a capture clock.
MAX_UNITS_PER_SECOND = protocol.MAX_FRAME_RATE * 5 // 4
# Access units over which that rate is measured (a quarter second at 120 fps): few, so that a sender breaking
# it is stopped before it has much analysed; enough that one early frame does not break it.
CADENCE_UNITS = 30


@dataclass(frozen=True)
class Limits:
    """What one stream may send and make the server hold (from [server] and [buffers] settings)."""

    max_width: int
    max_height: int
    max_macroblocks: int
    max_nal_units: int
    max_bad_packets: int
    max_backlog_us: int  # stream time waiting for analysis past which an overloaded server skips ahead
    max_catchup_us: int  # the same, past which any server skips ahead
    max_backlog_bytes: int

    @staticmethod
    def of(server: ServerSettings) -> "Limits":
        """Return what one stream may send, from the [server] settings."""
        return Limits(server.max_picture_width, server.max_picture_height, server.max_macroblocks,
                      server.max_nal_units, server.max_bad_packets,
                      round(server.max_decode_backlog_seconds * MICROSECONDS),
                      round(server.max_decode_catchup_seconds * MICROSECONDS), server.max_decode_backlog_bytes)


UNDECODABLE = "the stream cannot be decoded as H.264"
TOO_FAST = f"decode times advance faster than {protocol.MAX_FRAME_RATE} frames a second"


class Cadence:
    """Checks that decode times advance like frames: CADENCE_UNITS in a row span at least the time they take
    at MAX_UNITS_PER_SECOND."""

    _MIN_SPAN_US = CADENCE_UNITS * MICROSECONDS // MAX_UNITS_PER_SECOND

    def __init__(self):
        self._recent: deque[int] = deque(maxlen=CADENCE_UNITS)  # the newest decode times taken

    def take(self, dts: int) -> None:
        """Take the next decode time (later than every one before it).

        Raises:
            ProtocolViolation: 4415 if it ends CADENCE_UNITS + 1 units spanning less than they would at
                MAX_UNITS_PER_SECOND.
        """
        if len(self._recent) == CADENCE_UNITS and dts - self._recent[0] < self._MIN_SPAN_US:
            raise ProtocolViolation(CloseCode.BAD_MEDIA, TOO_FAST)
        self._recent.append(dts)


class Intake:
    """The gate of one stream. Not thread-safe: used on the event loop only."""

    def __init__(self, limits: Limits, on_undecodable: Callable[[int, bool], None], complete: bool = False):
        """`on_undecodable(count, first)` hears of every message counted as undecodable (for metrics and
        logs); `first` is true the first time in this stream's life. A `complete` gate never sheds load
        (recorded footage is analysed in full: its sender is slowed down instead, see
        `StreamAnalysis.backlogged`), and takes units in decode order only: one at or before the newest taken
        counts as undecodable."""
        self._limits = limits
        self._complete = complete
        self._on_undecodable = on_undecodable
        self.bad_packets = 0  # undecodable messages in a row: reset by a decoded frame
        self._seen_undecodable = False
        # Until a frame decodes, the decoder waits for a keyframe and what is skipped meanwhile counts as
        # undecodable: a legitimate stream starts with one (documented), garbage never does.
        self._skip_to_keyframe = True
        self._broken = True
        self._queued_dts: deque[int] = deque()  # of packets admitted and not yet analysed, oldest first
        self.queued_bytes = 0
        self.newest_dts: int | None = None  # of the units a complete gate took: its footage reaches that far
        self._cadence = Cadence()

    def accept(self, message: bytes) -> Packet | None:
        """Check one media message; return its packet, or None if it is not H.264 (counted as bad).

        Raises:
            ProtocolViolation: 4415 if the message breaks a limit (recorded footage: its cadence too) or too
                many in a row were bad.
        """
        try:
            media = protocol.parse_media(message)
            inspection = h264.inspect(media.data, self._limits.max_nal_units)
        except (ProtocolViolation, h264.MalformedParameterSet):
            self._bad(1)
            return None
        except h264.TooManyUnits as error:
            raise ProtocolViolation(CloseCode.BAD_MEDIA, str(error)) from None
        for size in inspection.sizes:
            self._check_size(size)
        if not h264.has_picture(inspection.types):
            self._bad(1)  # not Annex-B, or no slice (a flood of 4-byte end-of-sequence units): never kept
            return None
        if self._complete:  # recorded footage out of order would be analysed and billed twice (see meter.py)
            if self.newest_dts is not None and media.dts <= self.newest_dts:
                self._bad(1)
                return None
            self._cadence.take(media.dts)
            self.newest_dts = media.dts
        return Packet(media.pts, media.dts, h264.is_keyframe(inspection.types), media.data)

    def _check_size(self, size: h264.PictureSize) -> None:
        limits = self._limits
        if (size.width > limits.max_width or size.height > limits.max_height
                or size.macroblocks > limits.max_macroblocks):
            raise ProtocolViolation(CloseCode.BAD_MEDIA, f"picture {size.width}x{size.height} is over the "
                                    f"limit of {limits.max_width}x{limits.max_height}, "
                                    f"{limits.max_macroblocks} macroblocks")

    @property
    def queued_packets(self) -> int:
        """Packets admitted and not yet analysed."""
        return len(self._queued_dts)

    @property
    def max_backlog_bytes(self) -> int:
        """The encoded bytes this stream may have waiting for analysis."""
        return self._limits.max_backlog_bytes

    @property
    def oldest_queued_dts(self) -> int | None:
        """The decode time of the oldest packet admitted and not yet analysed, if any."""
        return self._queued_dts[0] if self._queued_dts else None

    def backlog_us(self, packet: Packet) -> int:
        """The stream time from the oldest packet waiting for analysis to `packet` (0 when none waits)."""
        return max(0, packet.dts - self._queued_dts[0]) if self._queued_dts else 0

    def admit(self, packet: Packet, overloaded: bool) -> bool:
        """Tell whether `packet` goes to the decoder now; if so it counts as queued until `dequeued`.

        `overloaded`: the server's decode threads cannot keep up (see load.py); a backlog past
        `max_backlog_us` is shed then, one past `max_catchup_us` always.

        Raises:
            ProtocolViolation: 4415 if packets skipped while waiting for a keyframe make too many bad ones.
        """
        limits = self._limits
        backlog = self.backlog_us(packet)
        behind = (backlog > limits.max_catchup_us or (overloaded and backlog > limits.max_backlog_us)
                  or self.queued_bytes >= limits.max_backlog_bytes)
        if not self._complete and behind:
            # Shedding load: these packets and the rest of their GOP are fine; none counts as undecodable.
            self._skip_to_keyframe = True
            self._broken = False
            return False
        if packet.keyframe:
            self._skip_to_keyframe = False
        if self._skip_to_keyframe:
            if self._broken:
                self._bad(1)
            return False
        self._queued_dts.append(packet.dts)
        self.queued_bytes += packet.cost
        return True

    def replayed(self) -> None:
        """The decoder was given a keyframe and every packet since (an idle stream woke): live packets
        continue it."""
        self._skip_to_keyframe = False

    def restarted(self) -> None:
        """The decoder starts afresh (an idle stream woke with nothing to replay): the next keyframe is
        awaited, and what is skipped meanwhile is no fault of the stream."""
        self._skip_to_keyframe = True
        self._broken = False

    def dequeued(self, packets: list[Packet]) -> None:
        """Packets were analysed: the oldest admitted, in the order they were admitted."""
        for _ in packets:
            self._queued_dts.popleft()
        self.queued_bytes -= sum(packet.cost for packet in packets)

    def decoded(self, frames: int, errors: int) -> None:
        """Take the decoder's result for a batch: frames produced and packets rejected.

        Raises:
            ProtocolViolation: 4415 once `max_bad_packets` in a row could not be decoded.
        """
        if frames:
            self.bad_packets = 0
            self._broken = False
        if errors:
            self._broken = True
            self._skip_to_keyframe = True
            self._bad(errors)

    def _bad(self, count: int) -> None:
        self.bad_packets += count
        self._on_undecodable(count, not self._seen_undecodable)
        self._seen_undecodable = True
        if self.bad_packets >= self._limits.max_bad_packets:
            raise ProtocolViolation(CloseCode.BAD_MEDIA, UNDECODABLE)
