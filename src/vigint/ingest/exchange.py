"""A backfill's exchange with its agent without I/O (websockets' protocol.py: facts in, events and data out).

It decides which of the media received its camera's live streams delivered already (`SeenFootage`: skipped,
neither analysed nor billed), and how far the footage is acknowledged, from facts the adapter (backfill.py)
gathers: how far the analysis went, how far back the incident desk holds the footage, whether the intake has
caught up. What it decides to send is taken with `data_to_send()`; nothing here touches a socket, a task or the
desk, so the acknowledgement rule is tested by feeding it facts.
"""

import bisect
from collections.abc import Callable

from vigint import protocol
from vigint.media import MICROSECONDS

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


class BackfillExchange:
    """What a backfill has acknowledged and billed, and the acks it decided to send (pure)."""

    def __init__(self, holdback_us: int):
        """`holdback_us`: how far before the end of what was analysed an incident not known yet may begin (its
        motion's minimum, a pause within it and its pre-roll): that footage is never acknowledged early."""
        self._holdback = holdback_us
        self.seen: SeenFootage | None = None  # footage its camera's live streams delivered, once looked up
        self.acked: int | None = None  # its footage up to this decode time is analysed and recorded
        self.billed_dts: int | None = None  # its footage is billed up to this decode time
        self._to_send: list[str] = []

    def skips(self, dts: int | None, keyframe: Callable[[], bool]) -> bool:
        """Tell whether the media at decode time `dts` was delivered live already (see `SeenFootage`)."""
        return self.seen is not None and dts is not None and self.seen.skips(dts, keyframe)

    def skipped(self, dts: int) -> bool:
        """Tell whether skipped media at `dts` is a step past the last ack: time to acknowledge again."""
        return self.acked is None or dts - self.acked >= SKIPPED_ACK_STEP_US

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
