"""The compressed-domain wake-up of an idle stream, pure: reading a packet's size costs nothing.

In a still scene the non-key frames are small and steady; motion makes them grow (5-10 times on a VBR
camera when a person walks in). The signal is the bytes of the non-key frames of the last second: a sum
smooths the frame types (a P-frame every few B-frames, the encoder's periodic larger frames). Its baseline
is the median of that signal over the last 30 s of idle time, so a steady noise level (sensor grain at
night, compression pumping) becomes the baseline within seconds instead of a trigger. A stream wakes when
the signal passes `factor` times the baseline (or times FLOOR_BYTES, for scenes so still that their frames
are nearly empty). A wake-up that finds no motion (a flickering light, a burst of noise) raises the stream's
factor past the highest ratio it reached, so the same disturbance does not wake it again; the factor decays back
to the configured one over quiet minutes. CBR cameras keep their frame sizes flat whatever happens:
for them this trigger rarely fires, and the idle keyframe check is what wakes them.
"""

import bisect
from collections import deque

from vigint.media import MICROSECONDS

WINDOW_US = MICROSECONDS  # the signal: non-key bytes over the last second
HISTORY_US = 30 * MICROSECONDS  # the baseline: the signal's median over the last 30 s
PRIMING_US = 2 * MICROSECONDS  # baseline needed before the trigger may fire
FLOOR_BYTES = 600  # a second of nearly empty frames (15 skipped frames): the smallest baseline a ratio is taken against
FALSE_WAKE_MARGIN = 1.25  # after a false wake-up, the factor must beat the ratio that caused it by this much
DECAY_US = 300 * MICROSECONDS  # each five quiet minutes bring a raised factor back by DECAY
DECAY = 1.5


class SizeTrigger:
    """Watches one idle stream's non-key frame sizes. Times are dts in µs."""

    def __init__(self, factor: float):
        self._configured = self.factor = factor
        self.ratio = 0.0  # the signal over its baseline at the last frame
        self.reset()

    def reset(self) -> None:
        """Start a new baseline: what the stream sent while active says nothing about its still scene."""
        self._window: deque[tuple[int, int]] = deque()
        self._sum = 0
        self._history: deque[tuple[int, int]] = deque()
        self._sorted: list[int] = []
        self._start: int | None = None
        self._quiet_since: int | None = None
        self._peak = 0.0  # the highest ratio since the trigger last fired

    def update(self, dts: int, size: int) -> bool:
        """Take a non-key frame; return whether its stream should wake."""
        if self._start is None:
            self._start = self._quiet_since = dts
        self._window.append((dts, size))
        self._sum += size
        while self._window[0][0] <= dts - WINDOW_US:
            self._sum -= self._window.popleft()[1]
        if dts - self._start >= PRIMING_US:
            self.ratio = self._sum / max(self._sorted[len(self._sorted) // 2], FLOOR_BYTES)
            if self.ratio > self.factor:
                self._peak = max(self._peak, self.ratio)
                return True  # not remembered: an event must not become the baseline
        self._remember(dts)
        if dts - self._quiet_since >= DECAY_US:
            self.factor, self._quiet_since = max(self._configured, self.factor / DECAY), dts
        return False

    def _remember(self, dts: int) -> None:
        self._history.append((dts, self._sum))
        bisect.insort(self._sorted, self._sum)
        while self._history[0][0] <= dts - HISTORY_US:
            del self._sorted[bisect.bisect_left(self._sorted, self._history.popleft()[1])]

    def false_wake(self) -> None:
        """The last wake-up found no motion: from now on only more than its peak wakes this stream (feed the
        trigger until the wake-up is judged, so that it sees the whole disturbance)."""
        self.factor = max(self.factor, self._peak * FALSE_WAKE_MARGIN)
