"""The compressed-domain wake-up of an idle stream, pure: reading a packet's size costs nothing.

In a still scene the non-key frames are small and steady; motion makes them grow (5-10 times on a VBR
camera when a person walks in). The signal is the bytes of the non-key frames of the last second: a sum
smooths the frame types (a P-frame every few B-frames, the encoder's periodic larger frames). Its baseline
is the median of that signal over the last 30 s of still time, seeded with the quiet seconds that made the
stream idle, so a steady noise level (sensor grain at night, compression pumping, a flickering light) is the
baseline, not a trigger. A stream wakes when the signal passes `factor` times the baseline (or times
FLOOR_BYTES, for scenes so still that their frames are nearly empty). A wake-up that finds no motion raises
the stream's factor past the highest ratio it reached, so the same disturbance does not wake it again, up to
MAX_RAISE times the configured factor; every DECAY_US without a false wake-up brings it back a step. CBR
cameras keep their frame sizes flat whatever happens: for them this trigger rarely fires, and the idle
keyframe check is what wakes them.
"""

import bisect
from collections import deque

from vigint.media import MICROSECONDS

WINDOW_US = MICROSECONDS  # the signal: non-key bytes over the last second
HISTORY_US = 30 * MICROSECONDS  # the baseline: the signal's median over the last 30 s
PRIMING_US = 2 * MICROSECONDS  # baseline needed before the trigger may fire (seeded baselines have it)
# a second of nearly empty frames (15 skipped frames): the smallest baseline a ratio is taken against
FLOOR_BYTES = 600
FALSE_WAKE_MARGIN = 1.25  # after a false wake-up, the factor must beat the ratio that caused it by this much
DECAY_US = 300 * MICROSECONDS  # each five minutes without a false wake-up bring a raised factor back by DECAY
DECAY = 1.5
MAX_RAISE = 4.0  # a factor is never raised past this many times the configured one: a person still wakes it


class SizeTrigger:
    """Watches one idle stream's non-key frame sizes. Times are dts in µs."""

    def __init__(self, factor: float):
        self._configured = self.factor = factor
        self.ratio = 0.0  # the signal over its baseline at the last frame
        self._raised_at: int | None = None  # when the factor was last raised or decayed (dts)
        self.reset([])

    def reset(self, still: list[tuple[int, int]]) -> None:
        """Start a new baseline from `still`, the (dts, size) of non-key frames the stream sent while known to
        be still (its last quiet seconds while active): the trigger is then ready at once."""
        self._window: deque[tuple[int, int]] = deque()
        self._sum = 0
        self._history: deque[tuple[int, int]] = deque()
        self._sorted: list[int] = []
        self._start: int | None = None
        self._peak = 0.0  # the highest ratio since the trigger was reset
        for dts, size in still:
            self._add(dts, size)
            self._remember(dts)

    def update(self, dts: int, size: int) -> bool:
        """Take a non-key frame; return whether its stream should wake."""
        self._add(dts, size)
        if self._raised_at is not None and dts - self._raised_at >= DECAY_US:
            self.factor = max(self._configured, self.factor / DECAY)
            self._raised_at = dts
        if dts - self._start >= PRIMING_US:
            self.ratio = self._sum / max(self._sorted[len(self._sorted) // 2], FLOOR_BYTES)
            if self.ratio > self.factor:
                self._peak = max(self._peak, self.ratio)
                return True  # not remembered: an event must not become the baseline
        self._remember(dts)
        return False

    def _add(self, dts: int, size: int) -> None:
        if self._start is None:
            self._start = dts
        self._window.append((dts, size))
        self._sum += size
        while self._window[0][0] <= dts - WINDOW_US:
            self._sum -= self._window.popleft()[1]

    def _remember(self, dts: int) -> None:
        self._history.append((dts, self._sum))
        bisect.insort(self._sorted, self._sum)
        while self._history[0][0] <= dts - HISTORY_US:
            del self._sorted[bisect.bisect_left(self._sorted, self._history.popleft()[1])]

    def false_wake(self, dts: int) -> None:
        """The wake-up judged at `dts` found no motion: from now on only more than its peak wakes this stream,
        up to MAX_RAISE times the configured factor (feed the trigger until the wake-up is judged, so that it
        sees the whole disturbance)."""
        self.factor = min(max(self.factor, self._peak * FALSE_WAKE_MARGIN), MAX_RAISE * self._configured)
        self._raised_at = dts
