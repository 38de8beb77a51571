from vigint.analysis.events import Closed, EventTracker, Extended, Opened
from vigint.config import MotionSettings

SECOND = 1_000_000


def feed(tracker: EventTracker, start: float, stop: float, motion: bool, fps: int = 5) -> list:
    changes = []
    for index in range(int(start * fps), int(stop * fps)):
        if change := tracker.update(index * SECOND // fps, motion):
            changes.append(change)
    return changes


def test_sustained_motion_opens_one_incident_at_its_start():
    tracker = EventTracker(MotionSettings(min_motion_seconds=1.0))
    assert feed(tracker, 0, 2, False) == []
    changes = feed(tracker, 2, 4, True)
    assert changes[0] == Opened(2 * SECOND) and all(isinstance(c, Extended) for c in changes[1:])


def test_brief_motion_is_ignored():
    tracker = EventTracker(MotionSettings(min_motion_seconds=1.0))
    assert feed(tracker, 0, 0.6, True) == [] and feed(tracker, 0.6, 2, False) == []
    assert not tracker.open


def test_three_minutes_of_motion_with_pauses_is_one_incident_closed_after_the_cooldown():
    tracker = EventTracker(MotionSettings(cooldown_seconds=60))
    changes = []
    for minute in range(3):
        changes += feed(tracker, minute * 60, minute * 60 + 40, True)
        changes += feed(tracker, minute * 60 + 40, minute * 60 + 60, False)  # 20 s pauses: within cooldown
    changes += feed(tracker, 180, 250, False)
    assert sum(isinstance(c, Opened) for c in changes) == 1
    assert changes[-1] == Closed(int((160 - 0.2) * SECOND))
