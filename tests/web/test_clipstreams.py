"""Clips streamed at once, pure: per link, per client and in total, each place given back once."""

from vigint.web.clipstreams import Cap, ClipStreams


def test_each_cap_refuses_the_stream_past_it_and_a_place_given_back_is_free_again():
    streams = ClipStreams(max_total=4, max_per_client=3, max_per_link=2)
    assert [streams.take(1, 10), streams.take(1, 10), streams.take(1, 10)] == [None, None, Cap.LINK]
    assert [streams.take(1, 11), streams.take(1, 12)] == [None, Cap.CLIENT]  # client 1 holds 3
    assert [streams.take(2, 20), streams.take(3, 30)] == [None, Cap.TOTAL]  # 4 in all
    streams.give_back(1, 10)
    assert streams.take(3, 30) is None  # client 1's place went back to everyone
    assert streams.take(4, 40) is Cap.TOTAL


def test_a_refused_stream_counts_nothing():
    streams = ClipStreams(max_total=10, max_per_client=10, max_per_link=1)
    assert streams.take(1, 10) is None
    assert [streams.take(1, 10) for _ in range(50)] == [Cap.LINK] * 50
    streams.give_back(1, 10)
    assert streams.take(1, 10) is None
