"""Masks and sensitivity as a customer sets them: inside the picture, bounded, with config.ini's meaning."""

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigint.config import MotionSettings
from vigint.errors import InvalidInputError
from vigint.tuning import (
    MAX_MASK_POINTS,
    MAX_MASKS,
    Mask,
    check_sensitivity,
    masks_from_json,
    masks_to_json,
    parse_rectangle,
    rectangle,
)


def test_a_rectangle_is_its_four_corners_and_reads_as_config_ini_writes_it():
    assert parse_rectangle("0, 0.5, 0.25,0.5") == rectangle(0, 0.5, 0.25, 0.5) == Mask(
        ((0, 0.5), (0.25, 0.5), (0.25, 1), (0, 1)))
    assert rectangle(0.7, 0.9, 0.3, 0.1).points[2] == (1.0, 1.0)  # to the very edge, whatever the rounding


@pytest.mark.parametrize(("text", "message"), [
    ("0.5,0.5,0.6,0.1", "reaches past the picture's edge"),
    ("-0.1,0,0.5,0.5", "x -0.1 is not a fraction"),
    ("nan,0,0.5,0.5", "is not X,Y,W,H"),
    ("0,0,inf,0.5", "is not X,Y,W,H"),
    ("0,0,1e400,0.5", "width inf is not a fraction"),
    ("0,0,0,0.5", "covers no area"),
    ("1,2,3", "is not X,Y,W,H"),
    ("0,0,0.5,0.5," * 1000, "is not X,Y,W,H"),
    ("٠,0,0.5,0.5", "is not X,Y,W,H"),  # float() would read the Arabic-Indic zero
])
def test_a_rectangle_outside_the_picture_or_not_one_is_refused(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_rectangle(text)


@pytest.mark.parametrize(("document", "message"), [
    ([[[0.1, 0.1]] * 10_000], f"3 to {MAX_MASK_POINTS} corners (this one has 10,000)"),
    ([[[0, 0], [1, 0], [1, 1]]] * (MAX_MASKS + 1), f"at most {MAX_MASKS} masks"),
    ([[[0, 0], [1, 0], [1.5, 1]]], "x 1.5 is not a fraction"),
    ([[[0, 0], [1, 0], [True, 1]]], "x True is not a fraction"),
    ([[[0, 0], [1, 0], ["1", 1]]], "x '1' is not a fraction"),
    ([[[0, 0], [1, 0], [1, 1, 1]]], "is not a pair x, y"),
    ([[[0, 0], [0.5, 0.5], [1, 1]]], "covers no area"),
    ({"rectangle": [0, 0, 1, 1]}, "masks are a list of polygons"),
])
def test_hostile_masks_are_refused(document, message):
    with pytest.raises(InvalidInputError) as refused:
        masks_from_json(json.dumps(document))
    assert message in str(refused.value) and len(str(refused.value)) < 200


def test_masks_that_are_not_json_are_refused():
    for text in ("[[[0,0],[1,0],[NaN,1]]]", "[" * 100_000, "", "null"):
        with pytest.raises(InvalidInputError):
            masks_from_json(text)


fractions = st.floats(0, 1)
polygons = st.lists(st.tuples(fractions, fractions), min_size=3, max_size=MAX_MASK_POINTS)


@given(st.lists(polygons, max_size=4))
def test_masks_read_back_as_written(points):
    masks = []
    for corners in points:
        try:
            masks.append(Mask(tuple(corners)))
        except InvalidInputError:  # corners on one line
            pass
    assert masks_from_json(masks_to_json(masks)) == tuple(masks)


def test_the_sensitivity_has_the_bounds_and_meaning_of_config_ini():
    field = {f.name: f for f in dataclasses.fields(MotionSettings)}["sensitivity"]
    low, high = field.metadata["minimum"], field.metadata["maximum"]
    assert check_sensitivity(low) == low and check_sensitivity(high) == high and check_sensitivity(1) == 1.0
    for value in (low / 2, high * 2, float("nan"), float("inf"), True, "2", None):
        with pytest.raises(InvalidInputError, match="is not a number from 0.1 to 10"):
            check_sensitivity(value)
