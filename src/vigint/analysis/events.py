"""From per-frame motion to incidents, pure: sustained motion opens one, a quiet cooldown closes it."""

from dataclasses import dataclass

from vigint.config import MotionSettings

# A frame or two without motion (the object behind a pillar) does not interrupt a run.
MAX_GAP_SECONDS = 0.5


@dataclass(frozen=True)
class Opened:
    """An incident began at `start` (µs, stream time)."""

    start: int


@dataclass(frozen=True)
class Extended:
    """The open incident's motion lasted until `end` (µs)."""

    end: int


@dataclass(frozen=True)
class Closed:
    """The open incident ended at `end` (µs): no motion for the cooldown since."""

    end: int


Event = Opened | Extended | Closed


class EventTracker:
    """Turns a camera's motion readings into at most one open incident at a time."""

    def __init__(self, settings: MotionSettings = MotionSettings()):
        self._min = int(settings.min_motion_seconds * 1e6)
        self._gap = int(MAX_GAP_SECONDS * 1e6)
        self._cooldown = int(settings.cooldown_seconds * 1e6)
        self._run_start: int | None = None  # first frame of the current motion run
        self._last_motion: int | None = None
        self.open = False
        self._opened_at: int | None = None

    def update(self, pts: int, motion: bool) -> Event | None:
        """Feed one analysed frame's time and motion; return what changed, if anything."""
        if motion:
            if self._last_motion is None or pts - self._last_motion > self._gap:
                self._run_start = pts
            self._last_motion = pts
            if self.open:
                return Extended(pts)
            if pts - self._run_start >= self._min:
                self.open = True
                self._opened_at = self._run_start
                return Opened(self._run_start)
            return None
        if self.open and pts - self._last_motion >= self._cooldown:
            self.open = False
            return Closed(self._last_motion)
        return None

    @property
    def opened_at(self) -> int | None:
        """The start of the open incident (µs), if one is open."""
        return self._opened_at if self.open else None

    def stop(self) -> Closed | None:
        """The camera stops being watched (disarmed): return the open incident's end at its last motion, if
        one is open, and start again as if no frame had been seen."""
        closed = Closed(self._last_motion) if self.open else None
        self._run_start = None
        self._last_motion = None
        self.open = False
        return closed
