"""The SCHEDULE syntax: what a customer types is read as meant, written back the same, and refused clearly."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigint.errors import InvalidInputError
from vigint.schedule import ALWAYS, MAX_RANGES, MINUTES_PER_DAY, NEVER, Entry, Schedule, format_schedule, parse_schedule

HOUR = 60
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def armed(schedule: Schedule, day: int, hour: int, minute: int = 0) -> bool:
    return bool(schedule.week()[day * MINUTES_PER_DAY + hour * HOUR + minute])


def test_the_shop_after_hours_is_armed_each_evening_until_morning_and_all_sunday():
    schedule = parse_schedule("Mon-Sat 20:00-08:00, Sun")
    assert not armed(schedule, MON, 7, 59)  # Sunday's whole day ends at Monday 00:00
    assert armed(schedule, MON, 20) and armed(schedule, TUE, 7, 59) and not armed(schedule, TUE, 8)
    assert armed(schedule, SAT, 23) and armed(schedule, SUN, 7) and armed(schedule, SUN, 12)  # Sat night, then Sunday
    assert not armed(schedule, WED, 12) and not armed(schedule, SAT, 19, 59)
    assert format_schedule(schedule) == "Mon-Sat 20:00-08:00, Sun"


def test_outside_opening_hours_is_armed_whenever_the_shop_is_closed():
    schedule = parse_schedule("outside Mon-Fri 09:00-18:00, Sat 10:00-16:00")
    assert schedule.mode == "schedule"
    assert not armed(schedule, MON, 9) and not armed(schedule, FRI, 17, 59) and not armed(schedule, SAT, 12)
    assert (armed(schedule, MON, 8, 59) and armed(schedule, MON, 18) and armed(schedule, SAT, 16)
            and armed(schedule, SUN, 12))
    assert sum(schedule.week()) == 7 * 24 * HOUR - (5 * 9 + 6) * HOUR


def test_a_range_on_sunday_night_reaches_monday_morning():
    schedule = parse_schedule("Sun 22:00-06:00")
    assert armed(schedule, SUN, 23) and armed(schedule, MON, 5, 59) and not armed(schedule, MON, 6)


@pytest.mark.parametrize("text", ["mon-sat 20:00-08:00,sun", "Mon - Sat  20:00 – 08:00 ,  SUNDAY",
                                  "lun-sam 20h-8h, dim", "Lundi-Samedi 20h00-08:00, dimanche", "Sat-Mon 00:00-24:00"])
def test_spellings_a_customer_may_type_are_read_the_same(text):
    expected = parse_schedule("Mon-Sat 20:00-08:00, Sun") if "Sat-Mon" not in text else Schedule(
        (Entry(SAT, MON, ((0, MINUTES_PER_DAY),)),))
    assert parse_schedule(text) == expected


def test_always_and_never_in_either_language():
    assert parse_schedule(" Always ") == parse_schedule("toujours") == ALWAYS and ALWAYS.mode == "always"
    assert parse_schedule("never") == parse_schedule("JAMAIS") == NEVER and NEVER.mode == "never"
    assert sum(ALWAYS.week()) == 7 * MINUTES_PER_DAY and sum(NEVER.week()) == 0
    assert format_schedule(ALWAYS, "fr") == "toujours"
    assert format_schedule(parse_schedule("outside Mon-Fri 09:00-18:00"), "fr") == "hors Lun-Ven 09:00-18:00"


@pytest.mark.parametrize(("text", "message"), [
    ("Mon-Sat 25:00-08:00", "'Mon-Sat 25:00-08:00': 25:00 is not a time of day"),
    ("Mon 24:00-08:00", "24:00 only ends a range"),
    ("Mon 08:60-09:00", "08:60 is not a time of day"),
    ("Mon 08:00-08:00", "'Mon 08:00-08:00': 08:00-08:00 is empty"),
    ("Mon 8-9", "'Mon 8-9': '8' is not a time such as 08:00"),
    ("Mon 20:00", "'20:00' is not a range of times"),
    ("Mon 20:00-08:00-09:00", "is not a range of times"),
    ("Mun 20:00-08:00", "'Mun' is not a day"),
    ("nan", "'nan' is not a day"),
    ("inf-NaN", "'inf' is not a day"),
    ("Mon,,Tue", "an empty part between commas"),
    ("Mon,", "an empty part between commas"),
    ("", "cannot be empty"),
    ("   ", "cannot be empty"),
    ("outside", "'outside' needs the opening hours"),
    ("Mon ٢٠:00-08:00", "the character '٢' (U+0662)"),
    ("Mon 20:00-08:00\u202e", r"the character '\u202e' (U+202E)"),
    ("Mon\x1b[2J", r"'\x1b' (U+001B)"),
    ("Mon 20.00-08.00", "'.' (U+002E)"),
    ("x" * 1_000_000, "at most 500 characters (this one has 1,000,000)"),
    (", ".join(["Mon 01:00-02:00"] * 29), f"at most {MAX_RANGES} ranges (this one has 29)"),
    ("Mon-Tue-Wed", "is not a day"),
])
def test_hostile_or_mistyped_schedules_are_refused_naming_the_part(text, message):
    with pytest.raises(InvalidInputError) as refused:
        parse_schedule(text)
    assert message in str(refused.value)
    assert len(str(refused.value)) < 200  # a wall of input is never echoed back


def test_a_long_refused_part_is_quoted_short():
    with pytest.raises(InvalidInputError) as refused:
        parse_schedule("Mon 20:00-08:00, " + "a" * 300)
    assert "'" + "a" * 39 + "…'" in str(refused.value)


def test_the_largest_schedule_allowed_is_read():
    text = ", ".join(f"{day} 00:00-01:00 02:00-03:00 04:00-05:00 06:00-07:00" for day in
                     ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
    assert sum(parse_schedule(text).week()) == 7 * 4 * HOUR


times = st.integers(0, MINUTES_PER_DAY - 1)
ranges = st.tuples(times, st.integers(0, MINUTES_PER_DAY)).filter(lambda r: r[0] != r[1] % MINUTES_PER_DAY or
                                                                  (r[0] == 0 and r[1] == MINUTES_PER_DAY))
entries = st.builds(Entry, st.integers(0, 6), st.integers(0, 6), st.lists(ranges, max_size=3).map(tuple))
schedules = st.builds(Schedule, st.lists(entries, min_size=1, max_size=7).map(tuple), st.booleans())


@given(schedules, st.sampled_from(["en", "fr"]))
def test_a_written_schedule_reads_back_the_same(schedule, language):
    assert parse_schedule(format_schedule(schedule, language)) == schedule


def covers(entry: Entry, day: int, minute: int) -> bool:
    """Whether an entry covers a minute, said the other way round: the day's own ranges, or the previous day's
    ranges that cross midnight."""
    days = entry.days()
    if not entry.ranges:
        return day in days
    for start, end in entry.ranges:
        crosses = end <= start
        if day in days and start <= minute and (crosses or minute < end):
            return True
        if crosses and (day - 1) % 7 in days and minute < end:
            return True
    return False


@given(schedules, st.integers(0, 6), times)
def test_the_week_covers_exactly_the_minutes_the_entries_say(schedule, day, minute):
    covered = any(covers(entry, day, minute) for entry in schedule.entries)
    assert armed(schedule, day, 0, minute) == (covered != schedule.outside)


@settings(max_examples=300)
@given(st.text(alphabet="MonTueSatSunlundimhorsoutside0123456789:-–, h\n\t٣", max_size=60))
def test_any_text_parses_or_is_refused_with_a_clear_error(text):
    try:
        schedule = parse_schedule(text)
    except InvalidInputError as error:
        assert str(error) and "Traceback" not in str(error)
    else:
        assert parse_schedule(format_schedule(schedule)) == schedule
