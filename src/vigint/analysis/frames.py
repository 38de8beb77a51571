"""What a stream's analysis does in a worker thread: decode its packets, look for motion, track incidents.

`StreamAnalysis` (pipeline.py) decides on the event loop which packets are decoded and why (a `Use`); a
`FrameAnalysis` takes them a batch at a time in a worker thread, one batch of a stream at once, and hands back
an `Outcome`. Its decoder, detector and tracker are touched by that thread only, except the detector's tuning,
which is replaced whole (see `MotionDetector.retune`).
"""

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vigint.analysis.decoder import DecodeResult, StreamDecoder
from vigint.analysis.events import Event, EventTracker
from vigint.analysis.modes import Mode
from vigint.analysis.motion import MotionDetector, Tuning
from vigint.config import MotionSettings
from vigint.media import MICROSECONDS, Packet


class Use(enum.Enum):
    """Why a packet is on the decode queue."""

    LIVE = enum.auto()  # admitted by the gate, counted in its backlog
    SAMPLE = enum.auto()  # an idle stream's keyframe check
    RESTART = enum.auto()  # the first packet of a replay: the decoder forgets what it holds first
    REPLAY = enum.auto()  # decoded again out of the ring after a wake-up
    FOLLOW = enum.auto()  # a keyframe of an incident whose motion is confirmed: does it still move?

    @staticmethod
    def mode_of(uses: list["Use"]) -> Mode:
        """Return how a batch of packets with these uses was decoded: checks of keyframes only, or in full."""
        if uses and all(use is Use.FOLLOW for use in uses):
            return Mode.FOLLOWING
        if uses and all(use is Use.SAMPLE or use is Use.DISARM for use in uses):
            return Mode.IDLE
        return Mode.ACTIVE
    DISARM = enum.auto()  # not decoded: the camera was disarmed after the packets before it


@dataclass
class Outcome:
    """What a worker thread hands back for a batch."""

    decoded: int = 0
    errors: int = 0
    size: tuple[int, int] | None = None
    events: list[Event] = field(default_factory=list)
    samples: list[tuple[int, bool]] = field(default_factory=list)  # (dts, motion) of each idle keyframe check
    motion_pts: int | None = None  # the newest analysed frame with motion
    first_pts: int | None = None  # the oldest analysed frame
    last_pts: int | None = None  # the newest analysed frame
    tracked_pts: int | None = None  # the newest frame shown to the event tracker
    opened_at: int | None = None  # the start of the incident open after the batch, if one is
    cpu_seconds: float = 0.0

    def count(self, result: DecodeResult) -> None:
        self.decoded += result.decoded
        self.errors += result.errors
        self.size = result.size or self.size


class FrameAnalysis:
    """One stream's decoder, motion detector and event tracker. One batch at a time, in any worker thread."""

    def __init__(self, decoder: StreamDecoder, motion: MotionSettings, tuning: Tuning):
        self._decoder = decoder
        self._detector = MotionDetector(motion, tuning.masks)
        self._detector.retune(tuning)
        self._tracker = EventTracker(motion)
        self._tracked_pts: int | None = None  # the newest frame learnt (shown to the tracker, or followed)
        self._followed: np.ndarray | None = None  # the newest keyframe followed since the last frame tracked
        # Recorded footage: whether its camera was armed at an instant (Unix time); None: always
        self.armed_at: Callable[[float], bool] | None = None

    @property
    def tuning(self) -> Tuning:
        return self._detector.tuning

    def retune(self, tuning: Tuning) -> None:
        """Use a new sensitivity and masks from the next frame analysed (from any thread)."""
        self._detector.retune(tuning)

    def analyse(self, items: list[tuple[Packet, Use]], replay_skip: int | None,
                started: Callable[[], None]) -> Outcome:
        """Decode, look for motion and track events. A replay's frames up to `replay_skip` were analysed
        before: they are decoded (later frames need them) but not shown to the detector or the tracker again.
        `started` tells the decode load that the batch no longer waits for a thread."""
        started()
        began = time.thread_time()
        outcome = Outcome()
        run: list[Packet] = []
        skip = None
        for packet, use in items:
            if use is Use.LIVE or use is Use.REPLAY:
                run.append(packet)
                continue
            self._track(self._decoder.decode(run), outcome, skip)
            run = []
            if use is Use.RESTART:
                self._decoder.reset()
                run = [packet]
                skip = replay_skip
            elif use is Use.DISARM:
                self._disarm(outcome)
            elif use is Use.FOLLOW:
                self._follow(packet, self._decoder.sample(packet), outcome)
            else:
                self._check(packet, self._decoder.sample(packet), outcome)
        self._track(self._decoder.decode(run), outcome, skip)
        outcome.opened_at = self._tracker.opened_at
        outcome.cpu_seconds = time.thread_time() - began
        return outcome

    def flush(self) -> Outcome:
        """Drain the decoder at the end of the stream."""
        outcome = Outcome()
        self._track(self._decoder.flush(), outcome)
        return outcome

    def _disarm(self, outcome: Outcome) -> None:
        """The camera stops being watched: its open incident ends at its last motion, and what it learnt is
        forgotten (once armed again it starts like a new stream)."""
        if (event := self._tracker.stop()) is not None:
            outcome.events.append(event)
        self._detector.forget()
        self._decoder.reset()

    def _skipped(self, pts: int) -> int:
        """Return how many frames analysis would have seen from the last one it did to `pts` (at least 1)."""
        if self._tracked_pts is None:
            return 1
        return max(1, round((pts - self._tracked_pts) / self._decoder.interval))

    def _track(self, result: DecodeResult, outcome: Outcome, skip: int | None = None) -> None:
        outcome.count(result)
        for frame in result.frames:
            if skip is not None and frame.pts <= skip:
                continue
            self._tracked_pts = frame.pts
            self._followed = None
            motion = self._detector.update(frame.pixels).motion
            if motion and self.armed_at is not None:
                motion = self.armed_at(frame.pts / MICROSECONDS)  # recorded while disarmed: not watched
            outcome.motion_pts = frame.pts if motion else outcome.motion_pts
            outcome.first_pts = frame.pts if outcome.first_pts is None else outcome.first_pts
            outcome.last_pts = outcome.tracked_pts = frame.pts
            if (event := self._tracker.update(frame.pts, motion)) is not None:
                outcome.events.append(event)

    def _follow(self, keyframe: Packet, result: DecodeResult, outcome: Outcome) -> None:
        """A keyframe of a confirmed incident: compared with the keyframe followed before it (the first, with
        the background), not with a background that still holds the person's ghost or lags a slow change, then
        learnt standing for the frames not decoded since, a second's at most: one keyframe every few seconds
        holds a walking person at one place, where the frames between would have spread them along their path
        (a ghost that would outlast their exit once a full decode resumes). It does not extend the incident:
        whether it moved tells only that something moved since the keyframe before it, and the full decode from
        there, once one looks still, shows the tracker every frame where the motion ended (see pipeline.py)."""
        outcome.count(result)
        motion = False
        second = max(1, MICROSECONDS // self._decoder.interval)
        for frame in result.frames:
            reading = self._detector.update(frame.pixels, stands_for=min(self._skipped(frame.pts), second),
                                            against=self._followed)
            motion = reading.motion or motion
            self._tracked_pts = frame.pts  # not shown to the tracker: the full decode shows it the frames
            self._followed = frame.pixels
        outcome.samples.append((keyframe.dts, motion))

    def _check(self, keyframe: Packet, result: DecodeResult, outcome: Outcome) -> None:
        """An idle keyframe check: a still frame moves the tracker's clock on; a moving one wakes the stream,
        whose replay from the last still keyframe then shows the tracker every frame in order."""
        outcome.count(result)
        motion = any([self._detector.update(frame.pixels, learn=False).motion for frame in result.frames])
        if not motion:
            for frame in result.frames:  # learnt only once known still, as the frames since the last would be
                self._detector.update(frame.pixels, stands_for=self._skipped(frame.pts))
                self._tracked_pts = frame.pts  # (the replay after a wake-up shows the tracker the rest)
                outcome.last_pts = outcome.tracked_pts = frame.pts
                if (event := self._tracker.update(frame.pts, False)) is not None:
                    outcome.events.append(event)
        outcome.samples.append((keyframe.dts, motion))
