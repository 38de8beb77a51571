"""Byte ranges of clips (RFC 9110 section 14), pure: what a `Range` header asks of a body."""

import pytest

from vigint.web.ranges import Unsatisfiable, byte_range


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-1", range(0, 2)),  # a player's first probe
    ("bytes=100-", range(100, 1000)),
    ("bytes=-100", range(900, 1000)),  # the last 100 bytes (where a non-faststart MP4 keeps its index)
    ("bytes=990-5000", range(990, 1000)),  # past the end: cut to the body
    ("bytes=-5000", range(0, 1000)),
    (None, None), ("", None), ("bytes=5-1", None), ("bytes=0-1,5-6", None), ("items=0-1", None),
    ("bytes=-", None),
    ("bytes=" + "9" * 5000 + "-", None),  # a 5,000-digit bound is no range (and costs no big-integer parse)
])
def test_a_range_header_selects_bytes_or_the_whole_body(header, expected):
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_is_unsatisfiable(header):
    with pytest.raises(Unsatisfiable):
        byte_range(header, 1000)
