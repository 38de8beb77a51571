"""Arming states in time: the next change is the wall clock's, across clock changes, and a mute wins."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_schedule import schedules

from vigint.arming import ArmingState, describe, state
from vigint.schedule import MINUTES_PER_DAY, parse_schedule

PARIS = ZoneInfo("Europe/Paris")
# Europe's clocks go forward on 2026-03-29 at 01:00 UTC and back on 2026-10-25 at 01:00 UTC.
SPRING, AUTUMN = datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def paris(*fields: int) -> datetime:
    """A wall-clock time in Paris, as an instant in UTC (times sharing a zone subtract as wall clocks)."""
    return datetime(*fields, tzinfo=PARIS).astimezone(UTC)


def test_a_range_on_the_spring_forward_night_lasts_what_the_clock_shows():
    schedule = parse_schedule("Sun 01:30-03:00")
    assert state(schedule, PARIS, paris(2026, 3, 29, 1, 0)) == ArmingState(False, paris(2026, 3, 29, 1, 30))
    armed = state(schedule, PARIS, paris(2026, 3, 29, 1, 30))
    assert armed == ArmingState(True, paris(2026, 3, 29, 3, 0)) and armed.until - paris(2026, 3, 29, 1, 30) == \
        timedelta(minutes=30)  # 02:00-02:59 never shows that night


def test_a_range_starting_in_the_skipped_hour_starts_when_the_clock_jumps_past_it():
    schedule = parse_schedule("Sun 02:30-04:00")
    before = state(schedule, PARIS, paris(2026, 3, 29, 1, 45))
    assert not before.armed and before.until == SPRING and before.until == paris(2026, 3, 29, 3, 0)
    assert state(schedule, PARIS, SPRING) == ArmingState(True, paris(2026, 3, 29, 4, 0))


def test_a_night_range_across_the_fall_back_night_lasts_an_hour_longer():
    schedule = parse_schedule("Sat 20:00-08:00")
    evening = paris(2026, 10, 24, 20, 0)
    armed = state(schedule, PARIS, evening)
    assert armed.armed and armed.until == paris(2026, 10, 25, 8, 0) and armed.until - evening == timedelta(hours=13)
    # At 02:30, which the clock shows twice, it is armed both times.
    assert state(schedule, PARIS, AUTUMN - timedelta(minutes=30)).armed and state(schedule, PARIS, AUTUMN +
                                                                                   timedelta(minutes=30)).armed
    assert state(schedule, PARIS, paris(2026, 10, 25, 8, 0)) == ArmingState(False, paris(2026, 10, 31, 20, 0))


def test_always_and_never_do_not_change():
    assert state(parse_schedule("always"), PARIS, SPRING) == ArmingState(True, None)
    assert state(parse_schedule("never"), PARIS, SPRING) == ArmingState(False, None)
    assert state(parse_schedule("Mon-Sun"), PARIS, SPRING) == ArmingState(True, None)


def test_a_mute_wins_over_the_schedule_until_it_ends():
    schedule = parse_schedule("Mon-Sat 20:00-08:00, Sun")
    night = paris(2026, 12, 8, 22, 0)  # a Tuesday: armed by the schedule
    muted = state(schedule, PARIS, night, muted_until=night + timedelta(hours=1))
    assert muted == ArmingState(False, night + timedelta(hours=1), night + timedelta(hours=1))
    assert describe(muted, night + timedelta(minutes=18), PARIS) == "muted for 42 min"
    assert describe(muted, night + timedelta(minutes=18), PARIS, "fr") == "en sourdine pendant 42 min"
    # Muted until the morning: the schedule is disarmed then, so the camera is next armed at 20:00.
    morning = state(schedule, PARIS, night, muted_until=paris(2026, 12, 9, 9, 0))
    assert morning == ArmingState(False, paris(2026, 12, 9, 20, 0), paris(2026, 12, 9, 9, 0))
    assert describe(morning, night, PARIS) == "muted until 09:00"
    assert state(schedule, PARIS, night, muted_until=night - timedelta(seconds=1)).armed  # an ended mute
    across = state(schedule, PARIS, AUTUMN - timedelta(minutes=20), muted_until=AUTUMN + timedelta(minutes=22))
    assert describe(across, (AUTUMN - timedelta(minutes=20)).astimezone(PARIS), PARIS) == "muted for 42 min"


def test_the_page_says_the_state_in_the_clients_language_and_zone():
    schedule = parse_schedule("Mon-Sat 20:00-08:00, Sun")
    night, noon = paris(2026, 12, 8, 22, 0), paris(2026, 12, 8, 12, 0)
    assert describe(state(schedule, PARIS, night), night, PARIS) == "armed until 08:00"
    assert describe(state(schedule, PARIS, noon), noon, PARIS) == "disarmed until 20:00"
    assert describe(state(schedule, PARIS, noon), noon, PARIS, "fr") == "désarmée jusqu'à 20:00"
    new_york = ZoneInfo("America/New_York")
    assert describe(state(schedule, new_york, night), night, new_york) == "disarmed until 20:00"  # 16:00 there
    saturday = paris(2026, 12, 5, 20, 0)  # armed through the night, then all Sunday: until Monday 00:00
    assert describe(state(schedule, PARIS, saturday), saturday, PARIS) == "armed until Mon 00:00"
    assert describe(state(schedule, PARIS, saturday), saturday, PARIS, "fr") == "armée jusqu'à lun. 00:00"
    assert describe(state(parse_schedule("never"), PARIS, noon), noon, PARIS, "fr") == "désarmée"


def test_an_instant_without_a_zone_is_refused():
    with pytest.raises(ValueError):
        state(parse_schedule("always"), PARIS, datetime(2026, 1, 1))


def brute_force(schedule, zone, at: datetime) -> tuple[bool, datetime | None]:
    """The state by reading the clock minute by minute, for 15 days (changes fall on whole minutes here)."""
    week = schedule.week()

    def armed(instant: datetime) -> bool:
        wall = instant.astimezone(zone)
        return bool(week[wall.weekday() * MINUTES_PER_DAY + wall.hour * 60 + wall.minute])

    now = armed(at)
    minute = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(15 * MINUTES_PER_DAY):
        if armed(minute) != now:
            return now, minute
        minute += timedelta(minutes=1)
    return now, None


# Each zone with its 2026 clock changes: an hour in Europe and America, half an hour on Lord Howe Island, and
# Santiago's at local midnight.
CLOCK_CHANGES = [(PARIS, SPRING), (PARIS, AUTUMN)] + [
    (ZoneInfo(name), datetime(2026, month, day, hour, minute, tzinfo=UTC)) for name, month, day, hour, minute in (
        ("America/New_York", 3, 8, 7, 0), ("America/New_York", 11, 1, 6, 0),
        ("Australia/Lord_Howe", 4, 4, 15, 0), ("Australia/Lord_Howe", 10, 3, 15, 30),
        ("America/Santiago", 4, 5, 3, 0), ("America/Santiago", 9, 6, 4, 0))]


@settings(max_examples=60, deadline=None)
@given(schedules, st.sampled_from(CLOCK_CHANGES), st.integers(-4 * 86_400, 4 * 86_400))
def test_the_state_agrees_with_reading_the_clock_minute_by_minute_over_a_clock_change(schedule, change, seconds):
    zone, near = change
    at = near + timedelta(seconds=seconds)
    found = state(schedule, zone, at)
    assert (found.armed, found.until) == brute_force(schedule, zone, at)


def test_the_clock_changes_tested_are_real():
    for zone, instant in CLOCK_CHANGES:
        assert (instant - timedelta(seconds=1)).astimezone(zone).utcoffset() != instant.astimezone(zone).utcoffset()
