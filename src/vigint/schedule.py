"""When a camera is armed: the SCHEDULE syntax of `--armed` and the camera page, parsed and written back
(pure).

A customer types a schedule, so the text is hostile until parsed: it is checked character by character, its
size and number of ranges are bounded, and every error names the part it refuses ("'Mon-Sat 25:00-08:00':
25:00 is not a time of day"). A parsed `Schedule` is written back in one canonical form (`format_schedule`),
which is what the database keeps and the page shows; parsing that form gives the same `Schedule` again.

Grammar (case and spaces do not matter; an en dash may stand for any "-")::

    arming  = "always" | "never" | ["outside"] entry {"," entry}     (French: toujours, jamais, hors)
    entry   = days {range}               (no range: the whole of each day)
    days    = day ["-" day]              (Mon-Sat; Sat-Mon wraps over the week-end)
    day     = Mon | Tue | Wed | Thu | Fri | Sat | Sun        (or Monday …, or French: lun … dim, lundi …)
    range   = time "-" time              (an end at or before its start crosses midnight)
    time    = H:MM | HH:MM | HHh | HHhMM (00:00 to 23:59; 24:00 as an end only)

Times are wall-clock times in the client's time zone. A range that crosses midnight belongs to the day it
starts on: "Mon-Sat 20:00-08:00, Sun" is armed from each evening of Monday to Saturday until 08:00 the next
morning, and all Sunday. "outside" arms the camera whenever the entries that follow do not hold: "outside
Mon-Fri 09:00-18:00, Sat 10:00-16:00" is the preset "armed outside opening hours", built from the opening
hours. Ranges may overlap: their union counts. `vigint.arming` says when a schedule changes, DST included.
"""

import re
from dataclasses import dataclass

from vigint.errors import InvalidInputError

# A week's schedule fits in a few dozen characters; 500 leaves room for a split day every day of the week and
# keeps a hostile megabyte from being scanned at all.
MAX_SCHEDULE_CHARS = 500
# Four ranges a day, every day: more than any shop's opening hours (morning, lunch break, afternoon, evening).
MAX_RANGES = 28
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
# Each language's day names as a customer may type them; `format_schedule` writes the first.
DAY_NAMES = {
    "en": (("mon", "monday"), ("tue", "tuesday"), ("wed", "wednesday"), ("thu", "thursday"),
           ("fri", "friday"), ("sat", "saturday"), ("sun", "sunday")),
    "fr": (("lun", "lundi"), ("mar", "mardi"), ("mer", "mercredi"), ("jeu", "jeudi"),
           ("ven", "vendredi"), ("sam", "samedi"), ("dim", "dimanche")),
}
# Each language's words for always, never and outside, the same way.
WORDS = {"en": ("always", "never", "outside"), "fr": ("toujours", "jamais", "hors")}
_ALWAYS = {words[0] for words in WORDS.values()}
_NEVER = {words[1] for words in WORDS.values()}
_DAY = {name: index for names in DAY_NAMES.values() for index, pair in enumerate(names) for name in pair}
# ASCII digits only: str.isdigit() and int() also take "٣" or "３", which nobody means in a schedule.
_ALLOWED = re.compile(r"[A-Za-z0-9:,\- \t\r\n\u2013]*")
_TIME = re.compile(r"([0-9]{1,2})(?::([0-9]{2})|h([0-9]{2})?)", re.IGNORECASE)
_DASH = re.compile(r"\s*[-\u2013]\s*")
_OUTSIDE = re.compile(rf"(?:{'|'.join(words[2] for words in WORDS.values())})(?: |$)", re.IGNORECASE)
_QUOTED = 40  # characters of a refused part quoted in an error: enough to find it, never a wall of text


@dataclass(frozen=True)
class Entry:
    """Some days of the week, all day or within time ranges."""

    first: int  # weekday, 0 = Monday
    last: int  # weekday of the last day; before `first`: the days wrap over Sunday
    ranges: tuple[tuple[int, int], ...] = ()  # (start, end) minutes of the day; empty: the whole day

    def days(self) -> list[int]:
        """Return the weekdays this entry covers, in order."""
        return [(self.first + offset) % 7 for offset in range((self.last - self.first) % 7 + 1)]


@dataclass(frozen=True)
class Schedule:
    """When a camera is armed: within its entries, or outside them (`outside`). No entries: always (outside
    nothing) or never."""

    entries: tuple[Entry, ...] = ()
    outside: bool = False

    @property
    def mode(self) -> str:
        """Return "always", "never" or "schedule", as the database's `armed` column says it."""
        if self.entries:
            return "schedule"
        return "always" if self.outside else "never"

    def week(self) -> bytes:
        """Return whether the camera is armed at each wall-clock minute of the week (Monday 00:00 first)."""
        covered = bytearray(MINUTES_PER_WEEK)
        for entry in self.entries:
            for day in entry.days():
                for start, end in entry.ranges or ((0, MINUTES_PER_DAY),):
                    first = day * MINUTES_PER_DAY + start
                    last = first + ((end - start) % MINUTES_PER_DAY or MINUTES_PER_DAY)
                    within = min(last, MINUTES_PER_WEEK)
                    covered[first:within] = b"\x01" * (within - first)
                    covered[:last - within] = b"\x01" * (last - within)  # Sunday night into Monday morning
        return bytes(covered).translate(_INVERT) if self.outside else bytes(covered)


_INVERT = bytes.maketrans(b"\x00\x01", b"\x01\x00")
ALWAYS = Schedule(outside=True)
NEVER = Schedule()


def _quote(part: str) -> str:
    part = " ".join(part.split())
    return repr(part if len(part) <= _QUOTED else part[:_QUOTED - 1] + "…")


def _minutes(text: str, entry: str, end: bool) -> int:
    match = _TIME.fullmatch(text)
    if match is None:
        raise InvalidInputError(f"{_quote(entry)}: {_quote(text)} is not a time such as 08:00 or 20:30")
    hours = int(match[1])
    minutes = int(match[2] or match[3] or 0)
    if (hours, minutes) == (24, 0) and end:
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        hint = " (24:00 only ends a range)" if (hours, minutes) == (24, 0) else ""
        raise InvalidInputError(f"{_quote(entry)}: {text} is not a time of day{hint}")
    return hours * 60 + minutes


def _day(name: str, entry: str) -> int:
    if name.lower() not in _DAY:
        raise InvalidInputError(f"{_quote(entry)}: {_quote(name)} is not a day "
                                "(Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    return _DAY[name.lower()]


def _range(text: str, entry: str) -> tuple[int, int]:
    start, separator, end = text.partition("-")
    if not separator or "-" in end:
        raise InvalidInputError(f"{_quote(entry)}: {_quote(text)} is not a range of times "
                                "such as 20:00-08:00")
    first = _minutes(start, entry, end=False)
    last = _minutes(end, entry, end=True)
    if first == last:
        raise InvalidInputError(f"{_quote(entry)}: {text} is empty (for a whole day, write the day alone)")
    return first, last


def _entry(text: str) -> Entry:
    """Parse one entry, its dashes already without spaces around them: days, then ranges."""
    if not text:
        raise InvalidInputError("a schedule has an empty part between commas: remove the extra comma")
    days, *ranges = text.split(" ")
    first, separator, last = days.partition("-")
    first_day = _day(first, text)
    last_day = _day(last, text) if separator else first_day
    return Entry(first_day, last_day, tuple(_range(word, text) for word in ranges))


def parse_schedule(text: str) -> Schedule:
    """Parse an `--armed` value: always, never, or a SCHEDULE (see the module's grammar).

    Raises:
        InvalidInputError: the text is too long, has too many ranges, a character or a part that the grammar
            does not allow; the message names the part.
    """
    if len(text) > MAX_SCHEDULE_CHARS:
        raise InvalidInputError(f"a schedule is at most {MAX_SCHEDULE_CHARS} characters "
                                f"(this one has {len(text):,})")
    if _ALLOWED.fullmatch(text) is None:
        character = next(c for c in text if _ALLOWED.fullmatch(c) is None)
        raise InvalidInputError(f"a schedule cannot hold the character {character!r} "
                                f"(U+{ord(character):04X}): write days, times with ASCII digits, '-' and ','")
    text = " ".join(_DASH.sub("-", text).split())  # one space between words, none around a dash
    if text.lower() in _ALWAYS | _NEVER:
        return ALWAYS if text.lower() in _ALWAYS else NEVER
    if not text:
        raise InvalidInputError("a schedule cannot be empty: write always, never, or days and hours such as "
                                "'Mon-Fri 20:00-08:00, Sat-Sun'")
    outside = _OUTSIDE.match(text)
    if outside:
        text = text[outside.end():]
        if not text:
            raise InvalidInputError("'outside' needs the opening hours after it, "
                                    "such as 'outside Mon-Fri 09:00-18:00'")
    entries = tuple(_entry(part.strip()) for part in text.split(","))
    count = sum(len(entry.ranges) or 1 for entry in entries)
    if count > MAX_RANGES:
        raise InvalidInputError(f"a schedule has at most {MAX_RANGES} ranges (this one has {count})")
    return Schedule(entries, outside is not None)


def _time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_schedule(schedule: Schedule, language: str = "en") -> str:
    """Return a schedule as `parse_schedule` reads it, in its canonical form: "always", "never", or entries
    such as "outside Mon-Fri 09:00-18:00, Sat 10:00-16:00" (in French words for `language` "fr")."""
    always, never, outside = WORDS[language]
    if not schedule.entries:
        return always if schedule.outside else never
    names = [pair[0].capitalize() for pair in DAY_NAMES[language]]
    entries = []
    for entry in schedule.entries:
        days = names[entry.first]
        if entry.last != entry.first:
            days = f"{days}-{names[entry.last]}"
        entries.append(" ".join([days, *(f"{_time(start)}-{_time(end)}" for start, end in entry.ranges)]))
    return (f"{outside} " if schedule.outside else "") + ", ".join(entries)
