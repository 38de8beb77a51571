"""A camera's motion tuning as its customer sets it: masks drawn on the picture and the sensitivity (pure).

The page and `vigint camera set` take these from users, so every value is checked here, once, for whoever
stores or uses it: a mask is a polygon of at most MAX_MASK_POINTS corners inside the picture, with an area; a
camera has at most MAX_MASKS of them; the sensitivity is a finite number within the bounds `[motion]
sensitivity` has in config.ini, with the same meaning (it divides the motion detector's threshold).
Coordinates are fractions of the picture's width and height (0 to 1, from the top left corner), so masks
survive a change of resolution. A rectangle, as config.ini's `[camera CLIENT_ID/NAME] masks` and `--mask
X,Y,W,H` give them, is stored as its four corners.
"""

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vigint.config import MotionSettings
from vigint.errors import InvalidInputError

# A few regions (a street, a tree, a TV) cover what a customer needs; 32 leaves room without letting a page
# fill the database or slow the mask's drawing at each stream start.
MAX_MASKS = 32
# Enough corners to follow a tree or a window by hand on a phone; a polygon of thousands is a hostile form.
MAX_MASK_POINTS = 64
_SENSITIVITY = {f.name: f for f in dataclasses.fields(MotionSettings)}["sensitivity"].metadata
MIN_SENSITIVITY = _SENSITIVITY["minimum"]
MAX_SENSITIVITY = _SENSITIVITY["maximum"]

# A plain decimal number: float() would also read "١", "1_0" or "infinity", which nobody types as a fraction.
_NUMBER = re.compile(r"[+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[+-]?[0-9]+\.")
Point = tuple[float, float]


def is_finite_number(value: object) -> bool:
    """Tell whether a value from a form, a command or JSON is an int or float (not a bool), neither NaN nor
    infinite."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _fraction(value: object, what: str) -> float:
    if not is_finite_number(value) or not 0 <= value <= 1:
        raise InvalidInputError(f"{what} {value!r:.20} is not a fraction of the picture between 0 and 1")
    return float(value)


@dataclass(frozen=True)
class Mask:
    """A region of the picture that motion detection ignores: a polygon, its corners (x, y) in drawing order
    as fractions of the picture's width and height. Checked when made.

    Raises:
        InvalidInputError: fewer than 3 or more than MAX_MASK_POINTS corners, a coordinate that is not a
            number between 0 and 1, or no area.
    """

    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        if not 3 <= len(self.points) <= MAX_MASK_POINTS:
            raise InvalidInputError(f"a mask has 3 to {MAX_MASK_POINTS} corners "
                                    f"(this one has {len(self.points):,})")
        points = []
        for point in self.points:
            if not isinstance(point, Sequence) or len(point) != 2:
                raise InvalidInputError(f"a mask's corner {point!s:.30} is not a pair x, y")
            points.append((_fraction(point[0], "a mask's x"), _fraction(point[1], "a mask's y")))
        object.__setattr__(self, "points", tuple(points))
        # Twice the signed area (shoelace): a mask that covers nothing is a mistake worth saying.
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))
        if abs(area) < 1e-9:
            raise InvalidInputError("a mask covers no area: its corners are on one line")


def rectangle(x: float, y: float, width: float, height: float) -> Mask:
    """Return the mask of a rectangle: its top left corner and size, as fractions of the picture.

    Raises:
        InvalidInputError: a value outside 0 to 1, or the rectangle reaching past the picture's edge.
    """
    x = _fraction(x, "a rectangle's x")
    y = _fraction(y, "a rectangle's y")
    width = _fraction(width, "a rectangle's width")
    height = _fraction(height, "a rectangle's height")
    if x + width > 1 + 1e-9 or y + height > 1 + 1e-9:
        raise InvalidInputError(f"the rectangle {x:g},{y:g},{width:g},{height:g} reaches past the "
                                "picture's edge")
    right = min(1.0, x + width)
    bottom = min(1.0, y + height)
    return Mask(((x, y), (right, y), (right, bottom), (x, bottom)))


def parse_rectangle(text: str) -> Mask:
    """Parse `X,Y,W,H` (`--mask`, config.ini's masks): a rectangle in fractions of the picture.

    Raises:
        InvalidInputError: not four numbers, or not a rectangle inside the picture.
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 4 or not all(_NUMBER.fullmatch(part) for part in parts):
        raise InvalidInputError(f"{text!r:.40} is not X,Y,W,H: "
                                "four fractions of the picture such as 0,0.5,0.25,0.5")
    return rectangle(*(float(part) for part in parts))


def check_masks(masks: Sequence[Mask]) -> tuple[Mask, ...]:
    """Return a camera's masks as a tuple. Raises InvalidInputError: more than MAX_MASKS."""
    if len(masks) > MAX_MASKS:
        raise InvalidInputError(f"a camera has at most {MAX_MASKS} masks (this one has {len(masks):,})")
    return tuple(masks)


def masks_to_json(masks: Sequence[Mask]) -> str:
    """Return masks as the database keeps them: a JSON list of polygons, each a list of [x, y]."""
    return json.dumps([[list(point) for point in mask.points] for mask in masks], separators=(",", ":"))


def masks_from_json(text: str) -> tuple[Mask, ...]:
    """Read masks written by `masks_to_json` (or sent by the page's script the same way).

    Raises:
        InvalidInputError: not such a list, or a mask or their number that is refused.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, list) or not all(isinstance(mask, list) for mask in document):
        raise InvalidInputError("masks are a list of polygons, each a list of [x, y] fractions of the "
                                "picture")
    check_masks(document)  # their number first: ten thousand polygons are refused before any is read
    return tuple(Mask(tuple(tuple(point) if isinstance(point, list) else point for point in mask))
                 for mask in document)


def check_sensitivity(value: float) -> float:
    """Return a sensitivity a camera may have. Raises InvalidInputError: not a number within the allowed
    range."""
    if not is_finite_number(value) or not MIN_SENSITIVITY <= value <= MAX_SENSITIVITY:
        raise InvalidInputError(f"the sensitivity {value!r:.20} is not a number from {MIN_SENSITIVITY:g} "
                                f"to {MAX_SENSITIVITY:g} (1: the usual; 2 sees fainter changes, 0.5 only "
                                "strong ones)")
    return float(value)
