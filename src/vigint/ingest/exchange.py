"""One stream's whole exchange with its agent, without I/O (websockets' protocol.py: messages and facts in,
events and data to send out): hello → welcome → media → acks → end.

It reads the hello (malformed, oversized, late: refused with the close code docs/protocol.md gives, and
counted against the sender's address), asks for its key's record (`Authenticate`: the look-up is the adapter's
I/O) and judges it, then waits while the adapter reserves the camera's name (`Admitted`) and welcomes the
stream once told (`accepted`). After the welcome it says what each message received is (`receive_data` →
events: media to analyse, media skipped, the end of a backfill, a control message ignored), which of a
backfill's media its camera's live streams delivered already (`SeenFootage`: skipped, neither analysed nor
billed), and how far a backfill's footage is acknowledged, from facts the adapters (handler.py, auth.py,
backfill.py) gather: how far the analysis went, how far back the incident desk holds the footage, whether the
intake has caught up. What it decides to send (text messages, then at most one `Close`) is taken with
`data_to_send()`; nothing here touches a socket, a task, the store or the desk, so its rules are tested by
feeding it messages and facts.
"""

import bisect
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from vigint import h264, keys, protocol
from vigint.limiter import RateLimiter
from vigint.media import MICROSECONDS
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.store import ApiKey, KeyState

log = logging.getLogger(__name__)

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
        """Tell whether the media at decode time `dts` (whose `keyframe()` says if a decoder can start there)
        was delivered live, or continues a GOP that was. Only footage in decode order is skipped: what is not
        is left to the analysis, which refuses it (see `Intake.accept`), so a sender cannot repeat footage
        unbilled."""
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
    HELLO = enum.auto()  # nothing received yet: the first message must be the hello
    AUTHENTICATING = enum.auto()  # the hello is read: its key's record is being looked up
    REGISTERING = enum.auto()  # the key may stream: its camera's name is being reserved, the welcome not sent
    STREAMING = enum.auto()
    ENDED = enum.auto()  # a backfill sent its end: nothing more is read
    CLOSED = enum.auto()  # its close is decided: nothing more is read


@dataclass(frozen=True)
class Close:
    """The close to send (the last thing sent): its code and reason."""

    code: int
    reason: str


@dataclass(frozen=True)
class Authenticate:
    """Look up the record of the hello's key, by its hash (see `looked_up`); the key itself stays here."""

    key_hash: str


@dataclass(frozen=True)
class Admitted:
    """The key may stream: reserve the hello's camera name for it, then say `accepted` (or `close`)."""

    key: ApiKey
    hello: protocol.Hello


@dataclass(frozen=True)
class Refused:
    """The hello was refused (its close is queued): `reason` is what it counts as ("bad_hello", "too_large",
    "invalid_key", "timeout"); `rate_limited`: its address had failed too often, and hears when to retry."""

    reason: str
    rate_limited: bool = False


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


Opening = Authenticate | Admitted | Refused
Received = Media | Skipped | BackfillEnded | Ignored


def admissible(record: ApiKey | None, now: float) -> ApiKey | None:
    """Return a looked-up key's record if it may stream at `now`, else None. Unknown, revoked, expired and not
    yet picked-up keys are all refused alike, so that nobody can learn which keys exist (the last is logged,
    for the operator)."""
    if record is None:
        return None
    state = record.state(now)
    if state is KeyState.AWAITING_PICKUP:
        log.warning("client %d key %s… refused: its hand-over link has not been opened yet (vigint client "
                    "list shows it awaiting pick-up)", record.client_id, record.prefix)
    return record if state is KeyState.ACTIVE else None


def is_keyframe(message: bytes, max_units: int) -> bool:
    """Tell whether a media message is a keyframe (False for one that cannot be parsed)."""
    try:
        return h264.is_keyframe(h264.nal_types(protocol.parse_media(message).data, max_units))
    except (ProtocolViolation, h264.TooManyUnits):
        return False


def message_bytes(message: str | bytes) -> int:
    """Return a message's size on the wire (text goes as UTF-8)."""
    return len(message) if isinstance(message, bytes) else len(message.encode())


class StreamExchange:
    """One stream's side of the protocol (pure): its state, its hello, its key, what a backfill has
    acknowledged and billed, and the messages it decided to send."""

    def __init__(self, holdback_us: int, max_nal_units: int, failures: RateLimiter, address: str,
                 clock: Callable[[], float] = time.time):
        """`holdback_us`: how far before the end of what a backfill's analysis reached an incident not known
        yet may begin (its motion's minimum, a pause within it and its pre-roll): that footage is never
        acknowledged early. `max_nal_units`: the most NAL units a message is looked through for a keyframe.
        `failures`: the node's refused hellos by address (shared by every connection), `address` the
        sender's."""
        self.state = State.HELLO
        self.backfill = False  # known from the hello
        self.hello: protocol.Hello | None = None
        self.key: ApiKey | None = None  # once its record is looked up and admitted
        self._holdback = holdback_us
        self._max_units = max_nal_units
        self._failures = failures
        self._address = address
        self._clock = clock
        self.seen: SeenFootage | None = None  # footage its camera's live streams delivered, once looked up
        self.acked: int | None = None  # its footage up to this decode time is analysed and recorded
        self.billed_dts: int | None = None  # its footage is billed up to this decode time
        self._to_send: list[str | Close] = []

    # Hello → welcome

    def hello_timed_out(self) -> list[Opening]:
        """No hello came within the time allowed. A late hello is no guess: it is not counted against the
        address."""
        self._expect(State.HELLO)
        self.close(CloseCode.HELLO_TIMEOUT, "no hello in time")
        return [Refused("timeout")]

    def hello_too_big(self) -> list[Opening]:
        """The first message was over MAX_HELLO_BYTES (the adapter's socket may have refused it already)."""
        self._expect(State.HELLO)
        return self._refuse("too_large", Close(CloseCode.MESSAGE_TOO_BIG, ""))

    def looked_up(self, record: ApiKey | None) -> list[Opening]:
        """Take the record the hello's key hash found (None: none): admit the key, or refuse the hello."""
        self._expect(State.AUTHENTICATING)
        key = admissible(record, self._clock())
        if key is None:
            return self._refuse_key()
        self.key = key
        self.state = State.REGISTERING
        return [Admitted(key, self.hello)]

    def accepted(self, session_id: str, key_expires_at: float | None) -> None:
        """The camera's name is reserved for session `session_id`: welcome the stream, saying when its key
        stops working (its latest record's: a rotation seen since the look-up moves it). From then on it may
        send media."""
        self._expect(State.REGISTERING)
        welcome = protocol.welcome(self.key.client_id, self.hello.camera, session_id, key_expires_at)
        self._to_send.append(welcome)
        self.state = State.STREAMING

    def close(self, code: int, reason: str) -> None:
        """Close the stream with `code` and `reason` (a refusal or failure the adapter met, a backfill's end);
        the first close decided is the one sent."""
        if self.state is not State.CLOSED:
            self._to_send.append(Close(code, reason))
            self.state = State.CLOSED

    def _hello(self, message: str | bytes) -> list[Opening]:
        """Read the first message: a hello whose key is well formed is looked up; anything else is refused."""
        if message_bytes(message) > protocol.MAX_HELLO_BYTES:
            return self.hello_too_big()
        try:
            hello = protocol.parse_hello(message)
        except ProtocolViolation as violation:
            return self._refuse("bad_hello", Close(violation.code, violation.reason))
        if not keys.is_well_formed(hello.key):  # no look-up: it is no key at all
            return self._refuse_key()
        self.hello = hello
        self.backfill = hello.backfill
        self.state = State.AUTHENTICATING
        return [Authenticate(keys.hash_key(hello.key))]

    def _refuse_key(self) -> list[Opening]:
        return self._refuse("invalid_key", Close(CloseCode.INVALID_KEY, protocol.INVALID_KEY_REASON))

    def _refuse(self, reason: str, close: Close) -> list[Opening]:
        """Refuse the hello and count it against its address; past the limit, answer 4429 with the delay
        instead. Only refused keys and malformed hellos count: a valid key is welcomed even from a blocked
        address (keys are 256-bit, there is nothing to guess), so one misconfigured agent cannot lock out its
        neighbours'."""
        now = self._clock()
        wait = self._failures.retry_after(self._address, now)
        self._failures.record(self._address, now)
        if wait > 0:
            limited = protocol.too_many_failures(wait)
            close = Close(limited.code, limited.reason)
        self.close(close.code, close.reason)
        return [Refused(reason, rate_limited=wait > 0)]

    def _expect(self, state: State) -> None:
        if self.state is not state:
            raise RuntimeError(f"expected when {state.name}, not {self.state.name}: a bug of the adapter")

    # Media → acks → end

    @property
    def closed(self) -> bool:
        """Whether its close is decided: nothing more is read."""
        return self.state is State.CLOSED

    def delivered_live(self, spans: list[tuple[int, int]]) -> None:
        """Take the (first, last) capture times of what its camera's live streams delivered: a backfill skips
        that footage (see `SeenFootage`)."""
        self.seen = SeenFootage(spans)

    def receive_data(self, message: str | bytes) -> list[Opening] | list[Received]:
        """Take a message from the agent; return what it is (the hello's events for the first one). A message
        the protocol does not let pass queues the close. Raises RuntimeError if nothing is to be read now (the
        key is being looked up, or the stream ended: a bug of the adapter)."""
        if self.state is State.HELLO:
            return self._hello(message)
        self._expect(State.STREAMING)
        if isinstance(message, str):
            return self._control(message)
        if not self.backfill or self.seen is None:  # a live stream's message is passed on unread
            return [Media(message)]
        dts = protocol.media_dts(message)
        if dts is None:
            return [Media(message)]
        if not self.seen.skips(dts, lambda: is_keyframe(message, self._max_units)):
            return [Media(message)]
        return [Skipped(message, ack_due=self.acked is None or dts - self.acked >= SKIPPED_ACK_STEP_US)]

    def _control(self, message: str) -> list[Received]:
        try:
            kind = protocol.parse_control(message)
        except ProtocolViolation as violation:
            self.close(violation.code, violation.reason)
            return []
        if self.backfill and kind == protocol.END_OF_BACKFILL:
            self.state = State.ENDED
            return [BackfillEnded()]
        return [Ignored(kind)]

    def analysed(self, until: int | None, held: int | None, caught_up: bool) -> None:
        """The footage is analysed up to decode time `until`, and the desk holds it from `held` on (None: no
        incident holds it): acknowledge what no incident, known or not yet, may still need. Footage skipped as
        delivered live is acknowledged once everything before it is analysed (`caught_up`) and nothing is
        held."""
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

    def data_to_send(self) -> list[str | Close]:
        """Return the messages decided since the last call, in order: text messages, then at most one
        `Close`."""
        messages = self._to_send
        self._to_send = []
        return messages
