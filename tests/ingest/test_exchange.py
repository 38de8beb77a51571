"""One stream's exchange, fed messages and facts without a socket (see vigint/ingest/exchange.py)."""

import pytest

from vigint import protocol
from vigint.ingest.exchange import BackfillEnded, Ignored, Media, SeenFootage, Skipped, StreamExchange

IDR = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce\x00\x00\x00\x01\x65\x88"  # SPS, PPS, IDR slice
SLICE = b"\x00\x00\x00\x01\x41\x9a"  # a frame that needs the one before


def welcomed(backfill: bool, holdback_us: int = 0) -> StreamExchange:
    exchange = StreamExchange(backfill, holdback_us, max_nal_units=16)
    exchange.welcome(7, "door", "s1", None)
    assert exchange.data_to_send() == [protocol.welcome(7, "door", "s1", None)]
    return exchange


def test_media_is_read_only_after_the_welcome_and_a_live_stream_ignores_an_end():
    exchange = StreamExchange(False, 0, max_nal_units=16)
    with pytest.raises(RuntimeError):
        exchange.receive_data(protocol.media(0, 0, IDR))
    exchange.welcome(7, "door", "s1", None)
    message = protocol.media(0, 0, IDR)
    assert exchange.receive_data(message) == [Media(message)]
    assert exchange.receive_data(protocol.end_of_backfill()) == [Ignored(protocol.END_OF_BACKFILL)]


def test_a_backfill_skips_footage_delivered_live_and_reads_nothing_after_its_end():
    exchange = welcomed(backfill=True)
    exchange.seen = SeenFootage([(100, 200)])
    live, after, fresh = (protocol.media(100, 100, IDR), protocol.media(250, 250, SLICE),
                          protocol.media(300, 300, IDR))
    assert exchange.receive_data(live) == [Skipped(live, ack_due=True)]
    assert exchange.receive_data(after) == [Skipped(after, ack_due=True)]  # the rest of the GOP begun live
    assert exchange.receive_data(fresh) == [Media(fresh)]
    assert exchange.receive_data(protocol.end_of_backfill()) == [BackfillEnded()]
    with pytest.raises(RuntimeError):
        exchange.receive_data(fresh)


def test_footage_an_incident_holds_or_may_still_need_is_not_acknowledged_until_it_is_recorded():
    exchange = welcomed(backfill=True, holdback_us=100)
    exchange.analysed(until=1000, held=500, caught_up=True)  # an incident holds the footage from 500 on
    exchange.analysed(until=1050, held=500, caught_up=True)  # nothing more while it is held
    assert exchange.data_to_send() == [protocol.ack(500)]
    exchange.analysed(until=1050, held=None, caught_up=True)  # recorded: all but the last 100 µs, not yet known
    exchange.analysed(until=900, held=None, caught_up=True)  # never less than before
    assert exchange.data_to_send() == [protocol.ack(949)]
    exchange.ended(until=1050, caught_up=True)
    assert exchange.data_to_send() == [protocol.ack(1050)] and exchange.acked == 1050


def test_footage_delivered_live_is_acknowledged_once_what_came_before_it_is_analysed():
    exchange = welcomed(backfill=True)
    exchange.seen = SeenFootage([(100, 200)])
    assert exchange.receive_data(protocol.media(150, 150, IDR))[0].ack_due
    exchange.analysed(until=None, held=None, caught_up=False)  # footage before it still queued
    assert exchange.data_to_send() == []
    exchange.analysed(until=None, held=None, caught_up=True)
    assert exchange.data_to_send() == [protocol.ack(150)]
