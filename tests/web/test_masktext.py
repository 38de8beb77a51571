"""The settings page's masks as text, and when "mute until tomorrow morning" ends (pure)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vigint.arming import next_morning
from vigint.errors import InvalidInputError
from vigint.tuning import Mask, rectangle
from vigint.web.masktext import format_masks, parse_masks

PARIS = ZoneInfo("Europe/Paris")


def test_rectangles_and_polygons_read_and_written_back_alike():
    text = "0,0.5,0.25,0.5\n\n  0.1 0.2, 0.6 0.2 ,0.4 0.7  \n"
    masks = parse_masks(text)
    assert masks == (rectangle(0, 0.5, 0.25, 0.5), Mask(((0.1, 0.2), (0.6, 0.2), (0.4, 0.7))))
    assert format_masks(masks) == "0,0.5,0.25,0.5\n0.1 0.2, 0.6 0.2, 0.4 0.7"
    assert parse_masks(format_masks(masks)) == masks
    # Four corners of a rectangle drawn the other way round are a polygon, never a negative width.
    backwards = Mask(((0.5, 0.5), (0.2, 0.5), (0.2, 0.8), (0.5, 0.8)))
    assert parse_masks(format_masks((backwards,))) == (backwards,)
    assert parse_masks("") == ()


@pytest.mark.parametrize(("text", "message"), [
    ("0 0, 1 0", "3 to 64 corners"),
    (", ".join(["0.5 0.5"] * 10_000), "at most 64 corners"),
    ("0,0,0.1,0.1\n" * 33, "at most 32 masks"),
    ("0.1 0.1 0.1, 0.2 0.2, 0.3 0.1", "is not a corner"),
    ("nan 0, 1 0, 1 1", "'nan' is not a number"),
    ("inf 0, 1 0, 1 1", "'inf' is not a number"),
    ("1_0 0, 1 0, 1 1", "'1_0' is not a number"),
    ("\u0661 0, 1 0, 1 1", "is not a number"),
    ("1e999 0, 1 0, 1 1", "is not a fraction"),
    ("-0.1 0, 1 0, 1 1", "is not a fraction"),
    ("0 0, 0.5 0.5, 1 1", "no area"),
    ("0.9,0,0.2,0.5", "past the picture's edge"),
])
def test_a_hostile_mask_line_is_refused_and_named(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_masks(text)


@pytest.mark.parametrize(("now", "morning"), [
    (datetime(2026, 3, 6, 14, 0, tzinfo=PARIS), datetime(2026, 3, 7, 8, 0, tzinfo=PARIS)),  # the afternoon
    (datetime(2026, 3, 6, 23, 59, tzinfo=PARIS), datetime(2026, 3, 7, 8, 0, tzinfo=PARIS)),
    (datetime(2026, 3, 7, 1, 30, tzinfo=PARIS), datetime(2026, 3, 7, 8, 0, tzinfo=PARIS)),  # still the night
    (datetime(2026, 3, 7, 5, 0, tzinfo=PARIS), datetime(2026, 3, 8, 8, 0, tzinfo=PARIS)),
    # The night the clocks go forward: 08:00 on the clock, 22 hours after 09:00 the day before.
    (datetime(2026, 3, 28, 9, 0, tzinfo=PARIS), datetime(2026, 3, 29, 8, 0, tzinfo=PARIS)),
])
def test_tomorrow_morning_is_the_next_8_oclock_after_the_night(now, morning):
    ends = next_morning(now.astimezone(UTC), PARIS)
    assert ends == morning and ends.astimezone(PARIS).hour == 8
    if now.day == 28:
        assert (ends.astimezone(UTC) - now.astimezone(UTC)).total_seconds() == 22 * 3600
