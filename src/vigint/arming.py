"""Whether a camera is armed at an instant, until when, and how the page says it (pure: the clock is an
argument).

A schedule (`vigint.schedule`) speaks of wall-clock minutes in the client's time zone; the analysis and the
page need instants. The rule is the simplest one a customer can check on a clock: the camera is armed at an
instant whenever the wall clock then reads a minute the schedule covers. So on the spring-forward night a
range 01:30-03:00 lasts 30 minutes (02:00-02:59 never shows), a range starting within the skipped hour starts
when the clock jumps past its start, and 20:00-08:00 across the fall-back night lasts 13 hours. A mute
(`muted_until`) wins over the schedule until it ends.

The next change is found among few candidate instants: each minute at which the schedule changes, on each day
of the next two weeks, in both readings of an ambiguous wall time, and the zone's offset changes. Between two
consecutive candidates nothing changes, so the first candidate at which the state differs is the change.
"""

import functools
import math
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigint.schedule import MINUTES_PER_DAY, MINUTES_PER_WEEK, Schedule

# Days searched for the next change: a schedule that changes at all changes within a week, or a week later
# when its only change fell within an hour skipped by a clock change.
HORIZON_DAYS = 16
# Offset changes are looked for at this step: zones change their offset months apart, never twice in 6 hours.
_OFFSET_STEP = timedelta(hours=6)
_SECOND = timedelta(seconds=1)

# What the page says, in each language the customer may read (the camera is feminine in French: "la caméra").
WORDS = {
    "en": {"armed": "armed", "disarmed": "disarmed", "armed_until": "armed until {when}",
           "disarmed_until": "disarmed until {when}", "muted_for": "muted for {minutes} min",
           "muted_until": "muted until {when}", "days": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")},
    "fr": {"armed": "armée", "disarmed": "désarmée", "armed_until": "armée jusqu'à {when}",
           "disarmed_until": "désarmée jusqu'à {when}", "muted_for": "en sourdine pendant {minutes} min",
           "muted_until": "en sourdine jusqu'à {when}",
           "days": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")},
}
# A mute this short is told in minutes ("muted for 42 min"); a longer one by its end ("muted until 08:00").
_MUTE_MINUTES_SHOWN = 90


@dataclass(frozen=True)
class ArmingState:
    """A camera's state at one instant."""

    armed: bool  # incidents are recorded and alerted
    # Instants in UTC: two datetimes sharing one zone compare and subtract as wall clocks, wrong across a
    # clock change.
    until: datetime | None  # when `armed` next changes; None: never
    muted_until: datetime | None = None  # a mute in force (then not armed), when it ends


@functools.lru_cache(maxsize=256)
def zone(name: str | None) -> tzinfo:
    """Return the IANA zone `name`, or the server's (None, or a zone the system no longer knows: a camera
    is never left unwatched for it): TZ, else /etc/localtime, else UTC. A zone with its rules, never a fixed
    offset, so that schedules follow the server's clock changes too."""
    for candidate in (name, os.environ.get("TZ", "").lstrip(":") or None):
        try:
            if candidate:
                return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    try:
        with open("/etc/localtime", "rb") as rules:
            return ZoneInfo.from_file(rules, key="localtime")
    except (OSError, ValueError):
        return UTC


def _minute_of_week(instant: datetime, zone: tzinfo) -> int:
    wall = instant.astimezone(zone)
    return wall.weekday() * MINUTES_PER_DAY + wall.hour * 60 + wall.minute


def _offset_changes(zone: tzinfo, start: datetime, end: datetime) -> list[datetime]:
    """Return the instants in (start, end] at which the zone's UTC offset changes, to the second."""
    changes = []
    low = start
    offset = start.astimezone(zone).utcoffset()
    while low < end:
        high = min(low + _OFFSET_STEP, end)
        if high.astimezone(zone).utcoffset() != offset:
            # the offset is `offset` at `before`, another at `after`
            before = low
            after = high
            while after - before > _SECOND:
                middle = before + (after - before) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    before = middle
                else:
                    after = middle
            # offsets change on a whole second, within the last one
            changes.append(after.replace(microsecond=0))
            offset = high.astimezone(zone).utcoffset()
        low = high
    return changes


@functools.lru_cache(maxsize=1024)  # a server asks about the same few schedules over and over
def _weekly(schedule: Schedule) -> tuple[bytes, tuple[tuple[int, ...], ...]]:
    """Return the schedule's armed minutes of the week and, for each weekday, the minutes at which it
    changes."""
    week = schedule.week()
    by_day: list[list[int]] = [[] for _ in range(7)]
    for minute in range(MINUTES_PER_WEEK):
        if week[minute] != week[minute - 1]:
            by_day[minute // MINUTES_PER_DAY].append(minute % MINUTES_PER_DAY)
    return week, tuple(tuple(minutes) for minutes in by_day)


def _candidates(boundaries: tuple[tuple[int, ...], ...], zone: tzinfo, at: datetime) -> list[datetime]:
    first_day: date = at.astimezone(zone).date() - timedelta(days=1)
    instants = []
    for offset in range(HORIZON_DAYS + 1):
        day = first_day + timedelta(days=offset)
        for minute in boundaries[day.weekday()]:
            for fold in (0, 1):  # both readings of a wall time the fall-back hour shows twice
                wall = datetime.combine(day, time(minute // 60, minute % 60, fold=fold), zone)
                instants.append(wall.astimezone(UTC))
    instants += _offset_changes(zone, at, at + timedelta(days=HORIZON_DAYS))
    return sorted(instant for instant in set(instants) if instant > at)


def schedule_state(schedule: Schedule, zone: tzinfo, at: datetime) -> ArmingState:
    """Return whether `schedule` arms its camera at the instant `at` (timezone-aware) in the client's `zone`,
    and when that next changes (None: never)."""
    at = at.astimezone(UTC)
    week, boundaries = _weekly(schedule)
    armed = bool(week[_minute_of_week(at, zone)])
    if not any(boundaries):
        return ArmingState(armed, None)
    for candidate in _candidates(boundaries, zone, at):
        if bool(week[_minute_of_week(candidate, zone)]) != armed:
            return ArmingState(armed, candidate)
    return ArmingState(armed, None)


def state(schedule: Schedule, zone: tzinfo, at: datetime, muted_until: datetime | None = None) -> ArmingState:
    """Return a camera's state at the instant `at` (timezone-aware): its schedule's, unless a mute ending
    after `at` is in force; the camera is then disarmed until the mute ends and the schedule next arms it.

    Raises:
        ValueError: `at` or `muted_until` has no time zone.
    """
    if at.tzinfo is None or (muted_until is not None and muted_until.tzinfo is None):
        raise ValueError("arming states are computed for timezone-aware instants only")
    if muted_until is None or muted_until <= at:
        return schedule_state(schedule, zone, at)
    muted_until = muted_until.astimezone(UTC)
    after = schedule_state(schedule, zone, muted_until)
    return ArmingState(False, muted_until if after.armed else after.until, muted_until)


def _when(moment: datetime, now: datetime, zone: tzinfo, language: str) -> str:
    """A time as the state line shows it: 08:00 within a day, else with the weekday (Sat 08:00)."""
    wall = moment.astimezone(zone)
    if moment - now < timedelta(days=1):
        return f"{wall:%H:%M}"
    return f"{WORDS[language]['days'][wall.weekday()]} {wall:%H:%M}"


def describe(current: ArmingState, now: datetime, zone: tzinfo, language: str = "en") -> str:
    """Return the page's line for a camera's state at `now`: "armed until 08:00", "disarmed until Sat 20:00",
    "muted for 42 min", "armed" (always), in `language` (en, fr) and the client's `zone`."""
    words = WORDS[language]
    if current.muted_until is not None:
        minutes = math.ceil((current.muted_until - now).total_seconds() / 60)
        if minutes <= _MUTE_MINUTES_SHOWN:
            return words["muted_for"].format(minutes=minutes)
        return words["muted_until"].format(when=_when(current.muted_until, now, zone, language))
    key = "armed" if current.armed else "disarmed"
    if current.until is None:
        return words[key]
    return words[f"{key}_until"].format(when=_when(current.until, now, zone, language))


# "Until tomorrow morning" (the page's button, an alert's mute link) ends at MORNING on the client's clock:
# most shops open after it, and a camera muted for the night watches again before the first customer.
# Before NIGHT_ENDS the night is not over for the person muting: it is this morning's.
MORNING = time(8, 0)
NIGHT_ENDS = time(4, 0)


def next_morning(now: datetime, zone: tzinfo) -> datetime:
    """Return when a mute "until tomorrow morning" chosen at `now` (timezone-aware) ends."""
    wall = now.astimezone(zone)
    day = wall.date() if wall.time() < NIGHT_ENDS else wall.date() + timedelta(days=1)
    return datetime.combine(day, MORNING, zone)
