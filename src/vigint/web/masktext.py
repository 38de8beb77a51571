"""Masks as the settings page's text field holds them, one per line (pure): the form works without a script.

    0,0.5,0.25,0.5                  a rectangle X,Y,W,H: its top left corner, width and height (as `--mask`)
    0.1 0.2, 0.6 0.2, 0.4 0.7       a polygon: its corners `x y`, separated by commas

Every number is a fraction of the picture's width or height, 0 to 1 from the top left corner. The page's
script writes the same lines, so what a customer draws can be read, corrected or typed by hand. A line is told
apart by its parts: four single numbers make a rectangle, pairs make a polygon. Counts are checked before any
number is read, so a hostile field of thousands of corners costs nothing; each mask is then checked by
`tuning.Mask`.
"""

import re

from vigint.errors import InvalidInputError
from vigint.tuning import MAX_MASK_POINTS, MAX_MASKS, Mask, parse_rectangle

# A plain decimal number in ASCII: float() also reads "nan", "1_0" or other scripts' digits, meant by no form.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_QUOTED = 40  # characters of a refused line quoted in an error


def _quote(line: str) -> str:
    return repr(line if len(line) <= _QUOTED else line[:_QUOTED - 1] + "…")


def read_number(text: str, what: str) -> float:
    """Read a plain decimal number a customer typed. Raises InvalidInputError, naming `what`, for others."""
    if _NUMBER.fullmatch(text) is None:
        raise InvalidInputError(f"{what}: {_quote(text)} is not a number such as 0.25")
    return float(text)


def _polygon(parts: list[str], line: str) -> Mask:
    corners = []
    where = f"mask {_quote(line)}"
    for part in parts:
        numbers = part.split()
        if len(numbers) != 2:
            raise InvalidInputError(f"{where}: {_quote(part)} is not a corner 'x y' such as 0.25 0.5")
        corners.append((read_number(numbers[0], where), read_number(numbers[1], where)))
    return Mask(tuple(corners))


def _mask(line: str) -> Mask:
    parts = [part.strip() for part in line.split(",")]
    if len(parts) > MAX_MASK_POINTS:
        raise InvalidInputError(f"a mask has at most {MAX_MASK_POINTS} corners (mask {_quote(line)} has "
                                f"{len(parts):,})")
    try:
        if len(parts) == 4 and all(len(part.split()) == 1 for part in parts):
            return parse_rectangle(line)
        return _polygon(parts, line)
    except InvalidInputError as error:
        message = str(error)  # the line quoted once, whichever check refused it
        quoted = message if message.startswith("mask ") else f"mask {_quote(line)}: {message}"
        raise InvalidInputError(quoted) from None


def parse_masks(text: str) -> tuple[Mask, ...]:
    """Read the masks of the page's field, one per line (blank lines skipped).

    Raises:
        InvalidInputError: more than MAX_MASKS lines, or a line that is no mask inside the picture; the
            message quotes the line.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_MASKS:
        raise InvalidInputError(f"a camera has at most {MAX_MASKS} masks (this field has {len(lines):,} "
                                "lines)")
    return tuple(_mask(line) for line in lines)


def _fraction(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def format_masks(masks: tuple[Mask, ...]) -> str:
    """Return masks as `parse_masks` reads them: a rectangle as X,Y,W,H, any other polygon as its corners."""
    lines = []
    for mask in masks:
        points = mask.points
        left, top = points[0]
        right, bottom = points[2]
        # The corners in the order `tuning.rectangle` gives them.
        corners = ((left, top), (right, top), (right, bottom), (left, bottom))
        if points == corners and right > left and bottom > top:
            lines.append(",".join(_fraction(value) for value in (left, top, right - left, bottom - top)))
        else:
            lines.append(", ".join(f"{_fraction(x)} {_fraction(y)}" for x, y in points))
    return "\n".join(lines)
