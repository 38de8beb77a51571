"""The compressed-domain wake-up of an idle stream, pure: reading a packet's size costs nothing.

In a still scene the non-key frames are small and steady; motion makes them grow (5-10 times on a VBR
camera when a person walks in, only 1.2-2 times on a camera whose sensor grain already fills its frames at
night). The signal is the mean size of the non-key frames of the last second (at least MIN_WINDOW_FRAMES of
them): a mean over a second smooths the frame types (a P-frame every few B-frames, the encoder's periodic
larger frames). Its baseline is its median over the last 30 s of still time, seeded with the quiet seconds
that made the stream idle, so a steady noise level (sensor grain, compression pumping, a flickering light) is
the baseline, not a trigger. A stream wakes when the signal passes either

- `factor` times the baseline (or times FLOOR_FRAME_BYTES, for scenes so still that their frames are nearly
  empty), or
- the baseline plus SPREADS_PER_FACTOR × `factor` times its spread (6 at the default factor): the median
  absolute deviation of the signal over the same 30 s, robust to the odd outlier, and never taken below
  MIN_SPREAD of the baseline, so that a perfectly flat CBR stream is not woken by a byte. Grain makes the
  signal steady in relative terms (its MAD is a few per cent), so a person who adds half again to its frames
  stands out where a fixed multiple misses them.

For the second test, the frames right after a keyframe are left out of the signal until they settle: an
encoder spends more on them while its references build up again, for up to three seconds at 720p on long
GOPs, as much as a person adds on a noisy scene, and on a long GOP they are too rare in the baseline to move
its median or spread (the first test, at 3 times, keeps them: they never reach it). They
have settled once MIN_WINDOW_FRAMES in a row average within SETTLED_SPREADS of the baseline, or half a GOP
after the keyframe at the latest (SETTLE_US before the GOP is known or the baseline primed). A person walking
in during that time is seen when it ends, or by the idle keyframe check.

A wake-up that finds no motion raises both thresholds past what it reached, so the same disturbance does not
wake the stream again: the factor up to MAX_RAISE times the configured one (a person still wakes it), the
spread multiple up to where its threshold passes that one's even at the smallest spread; every DECAY_US
without a false wake-up brings them back a step, the spread multiple in as many as the factor (at least one):
in its own terms a whole-picture disturbance raises it thirty-fold, which at DECAY a step would keep a grainy
room's person from waking the stream for half an hour. CBR cameras keep their frame sizes flat whatever
happens: for them this trigger rarely fires, and the idle keyframe check is what wakes them.
"""

import bisect
import math
from collections import deque

from vigint.media import MICROSECONDS

WINDOW_US = MICROSECONDS  # the signal: non-key frames over the last second …
MIN_WINDOW_FRAMES = 8  # … but never fewer than this many (a slow camera, the end of a keyframe's settling)
HISTORY_US = 30 * MICROSECONDS  # the baseline: the signal's median over the last 30 s
PRIMING_US = 2 * MICROSECONDS  # baseline needed before the trigger may fire (seeded baselines have it)
# a nearly empty frame (a skipped macroblock run, 15 to a second make 600 bytes): the smallest baseline a
# ratio is taken against
FLOOR_FRAME_BYTES = 40
SPREADS_PER_FACTOR = 2.0  # spreads above the baseline that wake a stream, per unit of its factor
MAD_TO_SIGMA = 1.4826  # the MAD of normally distributed values, times this, is their standard deviation
MIN_SPREAD = 0.03  # the spread is never taken below this share of the baseline: +18% at the least wakes
SPREAD_REFRESH_US = MICROSECONDS // 2  # the spread moves slowly: computed again this often, not every frame
SETTLE_US = MICROSECONDS  # frames this long after a keyframe are settling while the GOP is unknown
SETTLED_SPREADS = 2.0  # frames after a keyframe that average within this many spreads of the baseline settled
FALSE_WAKE_MARGIN = 1.25  # after a false wake-up, a threshold must beat the level that caused it by this much
DECAY_US = 300 * MICROSECONDS  # each five minutes without a false wake-up bring a raised factor back by DECAY
DECAY = 1.5
MAX_RAISE = 4.0  # a factor is never raised past this many times the configured one: a person still wakes it


def middle_deviation(values: list[float], center: float) -> float:
    """Return the median (the upper one of an even count) of |value - center| over sorted `values`.

    The deviations above `center` ascend from it and those below descend to it: two sorted runs, whose
    middle element a binary search finds in O(log n) steps, where sorting 450 deviations twice a second
    cost as much as the rest of an idle stream's receipt.
    """
    split = bisect.bisect_left(values, center)
    above = len(values) - split  # deviations values[split + i] - center, ascending in i
    wanted = len(values) // 2 + 1  # how many of the smallest deviations the median closes
    low = max(0, wanted - split)
    high = min(wanted, above)
    # The fewest deviations taken from above such that the next above is no smaller than the last below
    while low < high:
        taken = (low + high) // 2
        if values[split + taken] - center < center - values[split - (wanted - taken)]:
            low = taken + 1
        else:
            high = taken
    largest = [values[split + low - 1] - center] if low else []
    if wanted - low:
        largest.append(center - values[split - (wanted - low)])
    return max(largest)


class _Signal:
    """The mean size of a window of frames, and its median and spread over HISTORY_US of still time."""

    def __init__(self):
        self._window: deque[tuple[int, int]] = deque()
        self._sum = 0
        self._history: deque[tuple[int, float]] = deque()
        self._sorted: list[float] = []
        self._spread_at: int | None = None
        self._spread = 0.0

    def add(self, dts: int, size: int) -> None:
        self._window.append((dts, size))
        self._sum += size
        while len(self._window) > MIN_WINDOW_FRAMES and self._window[0][0] <= dts - WINDOW_US:
            self._sum -= self._window.popleft()[1]

    @property
    def value(self) -> float:
        return self._sum / len(self._window) if self._window else 0.0

    @property
    def baseline(self) -> float | None:
        return self._sorted[len(self._sorted) // 2] if self._sorted else None

    def spread(self, dts: int) -> float:
        """Return the spread of the still signal around its baseline (not below MIN_SPREAD of it), computed
        again every SPREAD_REFRESH_US: a median of 450 deviations each frame would cost more than the rest of
        the idle stream."""
        baseline = self.baseline
        if self._spread_at is None or dts - self._spread_at >= SPREAD_REFRESH_US:
            self._spread = MAD_TO_SIGMA * middle_deviation(self._sorted, baseline)
            self._spread_at = dts
        return max(self._spread, MIN_SPREAD * baseline, 1.0)

    def remember(self, dts: int) -> None:
        """Take the signal now as still time, part of the baseline."""
        if not self._window:
            return
        self._history.append((dts, self.value))
        bisect.insort(self._sorted, self.value)
        while self._history[0][0] <= dts - HISTORY_US:
            del self._sorted[bisect.bisect_left(self._sorted, self._history.popleft()[1])]


class SizeTrigger:
    """Watches one idle stream's frame sizes. Times are dts in µs."""

    def __init__(self, factor: float):
        self._configured = self.factor = factor
        self.spreads = SPREADS_PER_FACTOR * factor  # the spread multiple in force (raised by false wake-ups)
        self._spread_decay = DECAY  # what a decay step divides the spread multiple by
        self.ratio = 0.0  # the signal over its baseline at the last frame
        self._raised_at: int | None = None  # when the thresholds were last raised or decayed (dts)
        self._keyframe: int | None = None  # dts of the newest keyframe
        self._max_settle = SETTLE_US  # how long the frames after a keyframe may take to settle
        self._settling: deque[int] | None = None  # frames since the newest keyframe, settling
        self.reset([])

    def reset(self, still: list[tuple[int, int, bool]]) -> None:
        """Start a new baseline from `still`, the (dts, size, keyframe) of the frames the stream sent while
        known to be still (its last quiet seconds while active): the trigger is then ready at once."""
        self._all = _Signal()  # every non-key frame: the ratio test
        self._settled = _Signal()  # those not settling after a keyframe: the spread test
        self._start: int | None = None
        self._peak = 0.0  # the highest ratio since the trigger was reset
        self._peak_spreads = 0.0  # the highest signal above the baseline since then, in spreads
        for dts, size, keyframe in still:
            if self._add(dts, size, keyframe):
                self._all.remember(dts)
                self._settled.remember(dts)

    def update(self, dts: int, size: int, keyframe: bool = False) -> bool:
        """Take a frame (a keyframe only marks the start of its GOP); return whether its stream should
        wake."""
        if not self._add(dts, size, keyframe):
            return False
        if self._raised_at is not None and dts - self._raised_at >= DECAY_US:
            self.factor = max(self._configured, self.factor / DECAY)
            self.spreads = max(SPREADS_PER_FACTOR * self._configured, self.spreads / self._spread_decay)
            self._raised_at = dts
        if dts - self._start >= PRIMING_US:
            self.ratio = self._all.value / max(self._all.baseline, FLOOR_FRAME_BYTES)
            settled = self._settled.baseline
            above = 0.0 if settled is None else (self._settled.value - settled) / self._settled.spread(dts)
            if self.ratio > self.factor or above > self.spreads:
                self._peak = max(self._peak, self.ratio)
                self._peak_spreads = max(self._peak_spreads, above)
                return True  # not remembered: an event must not become the baseline
        self._all.remember(dts)
        self._settled.remember(dts)
        return False

    def _add(self, dts: int, size: int, keyframe: bool) -> bool:
        """Take a frame into the signals; return whether it is a non-key frame."""
        if keyframe:
            if self._keyframe is not None:
                self._max_settle = (dts - self._keyframe) // 2
            self._keyframe = dts
            self._settling = deque(maxlen=MIN_WINDOW_FRAMES)
            return False
        if self._start is None:
            self._start = dts  # primed by non-key frames only: keyframes alone make no baseline
        self._all.add(dts, size)
        if self._settling is None or self._settles(dts, size):
            self._settled.add(dts, size)
        return True

    def _settles(self, dts: int, size: int) -> bool:
        """Take a frame after a keyframe; return whether the frames since have settled (see the module)."""
        self._settling.append(size)
        baseline = self._settled.baseline
        if dts - self._keyframe >= self._max_settle:
            self._settling = None
        elif len(self._settling) == MIN_WINDOW_FRAMES and baseline is not None:
            mean = sum(self._settling) / MIN_WINDOW_FRAMES
            if mean <= baseline + SETTLED_SPREADS * self._settled.spread(dts):
                self._settling = None
        return self._settling is None

    def false_wake(self, dts: int) -> None:
        """The wake-up judged at `dts` found no motion: from now on only more than its peak wakes this stream,
        up to MAX_RAISE times the configured factor, and the spread multiple up to where its threshold passes
        that factor's even at the smallest spread, both back in as many DECAY_US (feed the trigger until the
        wake-up is judged, so that it sees the whole disturbance)."""
        highest = MAX_RAISE * self._configured
        self.factor = min(max(self.factor, self._peak * FALSE_WAKE_MARGIN), highest)
        most_spreads = (highest - 1) / MIN_SPREAD
        self.spreads = min(max(self.spreads, self._peak_spreads * FALSE_WAKE_MARGIN), most_spreads)
        steps = max(1.0, math.log(self.factor / self._configured, DECAY))  # the factor's way back
        raised = self.spreads / (SPREADS_PER_FACTOR * self._configured)
        self._spread_decay = max(DECAY, raised ** (1 / steps))
        self._raised_at = dts
