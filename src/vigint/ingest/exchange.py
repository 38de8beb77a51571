"""One stream's exchange with its agent after its hello, without I/O (websockets' protocol.py: messages and facts
in, events and data to send out): welcome → media → acks → end.

It says what each message received is (`receive_data` → events: media to analyse, media skipped, the end of a
backfill, a control message ignored), which of a backfill's media its camera's live streams delivered already
(`SeenFootage`: skipped, neither analysed nor billed), and how far a backfill's footage is acknowledged, from
facts the adapters (handler.py, backfill.py) gather: how far the analysis went, how far back the incident desk
holds the footage, whether the intake has caught up. What it decides to send is taken with `data_to_send()`;
nothing here touches a socket, a task or the desk, so its rules are tested by feeding it messages and facts.
"""

import bisect
import enum
from collections.abc import Callable
from dataclasses import dataclass

from vigint import h264, protocol
from vigint.media import MICROSECONDS
from vigint.protocol import ProtocolViolation

# The frames after a skipped keyframe that are skipped with it: at most a GOP, never more than this.
MAX_SKIPPED_TAIL_US = 10 * MICROSECONDS
# Skipped footage is acknowledged a step at a time, not per frame.
SKIPPED_ACK_STEP_US = MICROSECONDS


class SeenFootage:
    """Which of a backfill's media its camera's live streams delivered already (pure): those at capture times
    within a live stream's span, and the rest of a GOP begun there."""

    def __init__(self, spans: list[tuple[int, int]]):
        self._starts: list[int] = []
        self._ends: list[int] = []  # merged: a camera reconnecting all day has thousands of spans
        for first, last in sorted(spans):
            if self._ends and first <= self._ends[-1]:
                self._ends[-1] = max(self._ends[-1], last)
            else:
                self._starts.append(first)
                self._ends.append(last)
        self._tail_until: int | None = None  # non-keyframes up to then continue a skipped GOP
        self._newest: int | None = None  # the newest decode time looked at
        self.until: int | None = None  # the newest decode time skipped

    def skips(self, dts: int, keyframe: Callable[[], bool]) -> bool:
        """Tell whether the media at decode time `dts` (whose `keyframe()` says if a decoder can start there) was
        delivered live, or continues a GOP that was. Only footage in decode order is skipped: what is not is left
        to the analysis, which refuses it (see `Intake.accept`), so a sender cannot repeat footage unbilled."""
        if self._newest is not None and dts <= self._newest:
            return False
        self._newest = dts
        index = bisect.bisect_right(self._starts, dts) - 1
        if index >= 0 and dts <= self._ends[index]:
            self._tail_until = dts + MAX_SKIPPED_TAIL_US
        elif self._tail_until is None or dts > self._tail_until or keyframe():
            self._tail_until = None
            return False
        self.until = dts
        return True


class State(enum.Enum):
    WELCOMING = enum.auto()  # authenticated, its name reserved: the welcome has not gone out
    STREAMING = enum.auto()
    ENDED = enum.auto()  # a backfill sent its end: nothing more is read


@dataclass(frozen=True)
class Media:
    """A media message to analyse (and bill)."""

    message: bytes


@dataclass(frozen=True)
class Skipped:
    """A backfill's media message its camera's live streams delivered already; `ack_due`: acknowledge now."""

    message: bytes
    ack_due: bool


@dataclass(frozen=True)
class BackfillEnded:
    """The agent sent all its recorded footage."""


@dataclass(frozen=True)
class Ignored:
    """A control message of a type the server does not act on (new types need no version change)."""

    kind: str | None


Received = Media | Skipped | BackfillEnded | Ignored


def is_keyframe(message: bytes, max_units: int) -> bool:
    """Tell whether a media message is a keyframe (False for one that cannot be parsed)."""
    try:
        return h264.is_keyframe(h264.nal_types(protocol.parse_media(message).data, max_units))
    except (ProtocolViolation, h264.TooManyUnits):
        return False


class StreamExchange:
    """One stream's side of the protocol after its hello (pure): its state, what a backfill has acknowledged and
    billed, and the messages it decided to send."""

    def __init__(self, backfill: bool, holdback_us: int, max_nal_units: int):
        """`holdback_us`: how far before the end of what a backfill's analysis reached an incident not known yet
        may begin (its motion's minimum, a pause within it and its pre-roll): that footage is never acknowledged
        early. `max_nal_units`: the most NAL units a message is looked through for a keyframe."""
        self.backfill, self.state = backfill, State.WELCOMING
        self._holdback, self._max_units = holdback_us, max_nal_units
        self.seen: SeenFootage | None = None  # footage its camera's live streams delivered, once looked up
        self.acked: int | None = None  # its footage up to this decode time is analysed and recorded
        self.billed_dts: int | None = None  # its footage is billed up to this decode time
        self._to_send: list[str] = []

    def welcome(self, client_id: int, camera: str, session_id: str, key_expires_at: float | None) -> None:
        """Welcome the stream: from then on it may send media."""
        if self.state is not State.WELCOMING:
            raise RuntimeError(f"a stream is welcomed once, not when {self.state.name}")
        self._to_send.append(protocol.welcome(client_id, camera, session_id, key_expires_at))
        self.state = State.STREAMING

    def receive_data(self, message: str | bytes) -> list[Received]:
        """Take a message from the agent; return what it is. Raises ProtocolViolation for a malformed one the
        protocol does not let pass, RuntimeError if the stream is not streaming (a bug of the adapter)."""
        if self.state is not State.STREAMING:
            raise RuntimeError(f"no message is read when {self.state.name}")
        if isinstance(message, str):
            kind = protocol.parse_control(message)
            if self.backfill and kind == protocol.END_OF_BACKFILL:
                self.state = State.ENDED
                return [BackfillEnded()]
            return [Ignored(kind)]
        if not self.backfill or self.seen is None:  # a live stream's message is passed on unread
            return [Media(message)]
        dts = protocol.media_dts(message)
        if dts is None:
            return [Media(message)]
        if not self.seen.skips(dts, lambda: is_keyframe(message, self._max_units)):
            return [Media(message)]
        return [Skipped(message, ack_due=self.acked is None or dts - self.acked >= SKIPPED_ACK_STEP_US)]

    def analysed(self, until: int | None, held: int | None, caught_up: bool) -> None:
        """The footage is analysed up to decode time `until`, and the desk holds it from `held` on (None: no
        incident holds it): acknowledge what no incident, known or not yet, may still need. Footage skipped as
        delivered live is acknowledged once everything before it is analysed (`caught_up`) and nothing is held."""
        if until is not None:
            until -= self._holdback + 1
            until = until if held is None else min(until, held)
        seen = self.seen.until if self.seen is not None else None
        if seen is not None and held is None and caught_up and (until is None or seen > until):
            until = seen
        self._advance(until)

    def ended(self, until: int | None, caught_up: bool) -> None:
        """All the footage is analysed up to `until` and its incidents are recorded: acknowledge all of it."""
        seen = self.seen.until if self.seen is not None and caught_up else None
        until = seen if until is None or seen is not None and seen > until else until
        self._advance(until)

    def _advance(self, until: int | None) -> None:
        if until is not None and (self.acked is None or until > self.acked):  # only ever more than before
            self.acked = until
            self._to_send.append(protocol.ack(until))

    def data_to_send(self) -> list[str]:
        """Return the messages decided since the last call, in order."""
        messages, self._to_send = self._to_send, []
        return messages
