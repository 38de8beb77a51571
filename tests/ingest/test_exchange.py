"""A backfill's acknowledgement rule, fed facts without a socket (see vigint/ingest/exchange.py)."""

from vigint import protocol
from vigint.ingest.exchange import BackfillExchange, SeenFootage


def test_footage_an_incident_holds_or_may_still_need_is_not_acknowledged_until_it_is_recorded():
    exchange = BackfillExchange(holdback_us=100)
    exchange.analysed(until=1000, held=500, caught_up=True)  # an incident holds the footage from 500 on
    exchange.analysed(until=1050, held=500, caught_up=True)  # nothing more while it is held
    assert exchange.data_to_send() == [protocol.ack(500)]
    exchange.analysed(until=1050, held=None, caught_up=True)  # recorded: all but the last 100 µs, not yet known
    exchange.analysed(until=900, held=None, caught_up=True)  # never less than before
    assert exchange.data_to_send() == [protocol.ack(949)]
    exchange.ended(until=1050, caught_up=True)
    assert exchange.data_to_send() == [protocol.ack(1050)] and exchange.acked == 1050


def test_footage_delivered_live_is_acknowledged_once_what_came_before_it_is_analysed():
    exchange = BackfillExchange(holdback_us=0)
    exchange.seen = SeenFootage([(100, 200)])
    assert exchange.skips(150, lambda: True) and exchange.skipped(150)
    exchange.analysed(until=None, held=None, caught_up=False)  # footage before it still queued
    assert exchange.data_to_send() == []
    exchange.analysed(until=None, held=None, caught_up=True)
    assert exchange.data_to_send() == [protocol.ack(150)]
