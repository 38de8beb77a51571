"""What to answer a GET of a stored object, pure: the status, the headers and the bytes to read from the bucket."""

from vigint.web.ranges import answer_for

TAG = '"0123abcd"'


def test_no_range_is_the_whole_object_and_a_range_only_its_bytes():
    whole = answer_for({}, 1000, TAG)
    assert (whole.status, whole.part, whole.headers["Content-Length"]) == (200, range(1000), "1000")
    assert whole.headers["ETag"] == TAG and whole.headers["Accept-Ranges"] == "bytes"
    part = answer_for({"Range": "bytes=100-199"}, 1000, TAG)
    assert (part.status, part.part) == (206, range(100, 200))
    assert part.headers["Content-Range"] == "bytes 100-199/1000" and part.headers["Content-Length"] == "100"


def test_what_the_player_holds_or_cannot_have_reads_nothing():
    held = answer_for({"If-None-Match": TAG, "Range": "bytes=0-1"}, 1000, TAG)
    assert (held.status, held.part) == (304, range(0))
    past = answer_for({"Range": "bytes=1000-"}, 1000, TAG)
    assert (past.status, past.part, past.headers["Content-Range"]) == (416, range(0), "bytes */1000")


def test_if_range_of_another_version_asks_for_the_whole_object():
    assert answer_for({"Range": "bytes=0-1", "If-Range": '"older"'}, 1000, TAG).part == range(1000)
    assert answer_for({"Range": "bytes=0-1", "If-Range": TAG}, 1000, TAG).part == range(2)
