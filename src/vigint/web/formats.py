"""How each language the page speaks writes a moment, a month, a day and a number (pure: no I/O).

The days' and months' names are spelt out here rather than taken from the C library's locale (`%a`, `%b`),
which depends on how the server was started: `Fri 27 Nov 2026` and `ven. 27 nov. 2026` whatever it is. An
unknown language is written as English.
"""

from datetime import date, datetime

# The French abbreviations are the usual ones (the Unicode CLDR's, as a French calendar prints them).
DAYS = {"en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        "fr": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")}
SHORT_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
}
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
}
DAY_FORMAT = {"en": "%Y-%m-%d", "fr": "%d/%m/%Y"}  # as the alert emails write a day
DECIMAL_POINT = {"en": ".", "fr": ","}


def _known(language: str) -> str:
    return language if language in DAYS else "en"


def moment(when: datetime, language: str) -> str:
    """`Fri 27 Nov 2026, 14:03:12 CET`, `ven. 27 nov. 2026, 14:03:12 CET`: the day and month by name, and the
    zone's abbreviation always (a customer travelling, or a camera in another zone, knows which time it
    is)."""
    language = _known(language)
    written_day = f"{DAYS[language][when.weekday()]} {when.day:02d} {SHORT_MONTHS[language][when.month - 1]}"
    return f"{written_day} {when.year}, {when.strftime('%H:%M:%S %Z')}"


def month(when: date | str, language: str) -> str:
    """A month, a date's or a YYYY-MM one (as it is, if malformed): `November 2026`, `novembre 2026`."""
    if isinstance(when, str):
        try:
            when = date.fromisoformat(f"{when}-01")
        except ValueError:
            return when
    return f"{MONTHS[_known(language)][when.month - 1]} {when.year}"


def day(iso: str, language: str) -> str:
    """A YYYY-MM-DD day as `language` writes it: `2026-01-31`, `31/01/2026` (a malformed one as it is)."""
    try:
        return date.fromisoformat(iso).strftime(DAY_FORMAT[_known(language)])
    except ValueError:
        return iso


def decimal(number: float, digits: int, language: str) -> str:
    """`number` with `digits` decimals: `1.5` in English, `1,5` in French."""
    return f"{number:.{digits}f}".replace(".", DECIMAL_POINT[_known(language)])
