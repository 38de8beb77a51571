"""One stream's exchange, fed messages and facts without a socket (see vigint/ingest/exchange.py): its hello,
the answer to its key's look-up, its welcome, its media, acks and end."""

import json

import pytest
from helpers import hello

from vigint import keys, protocol
from vigint.ingest.exchange import (
    Admitted,
    Authenticate,
    BackfillEnded,
    Close,
    Ignored,
    Media,
    Refused,
    SeenFootage,
    Skipped,
    State,
    StreamExchange,
)
from vigint.limiter import RateLimiter
from vigint.store import ApiKey, ClientStatus

IDR = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce\x00\x00\x00\x01\x65\x88"  # SPS, PPS, IDR slice
SLICE = b"\x00\x00\x00\x01\x41\x9a"  # a frame that needs the one before
API_KEY = keys.generate()
INVALID_KEY = Close(protocol.CloseCode.INVALID_KEY, protocol.INVALID_KEY_REASON)
NOW = 1_700_000_000.0


def record(**changes) -> ApiKey:
    """The store's record of API_KEY (client 7), as its look-up returns it."""
    fields = {"id": 3, "client_id": 7, "prefix": keys.display_prefix(API_KEY), "label": "",
              "created_at": NOW - 60, "expires_at": None, "revoked_at": None, "last_used_at": None,
              "client_status": ClientStatus.ACTIVE}
    return ApiKey(**{**fields, **changes})


def exchange_from(address: str = "192.0.2.1", failures: RateLimiter | None = None,
                  holdback_us: int = 0) -> StreamExchange:
    """A connection's exchange from `address` (the clock stands still at NOW)."""
    failures = failures if failures is not None else RateLimiter(3, 60.0)
    return StreamExchange(holdback_us, 16, failures, address, clock=lambda: NOW)


def welcomed(backfill: bool, holdback_us: int = 0) -> StreamExchange:
    exchange = exchange_from(holdback_us=holdback_us)
    fields = {"backfill": True} if backfill else {}
    assert exchange.receive_data(hello(API_KEY, "door", **fields)) == [Authenticate(keys.hash_key(API_KEY))]
    exchange.looked_up(record())
    exchange.accepted("s1", None)
    assert exchange.data_to_send() == [protocol.welcome(7, "door", "s1", None)]
    return exchange


def test_a_good_hello_is_looked_up_by_its_hash_admitted_and_welcomed_once_its_name_is_reserved():
    exchange = exchange_from()
    first = hello(API_KEY, "door", spooled_seconds=12)
    assert exchange.receive_data(first) == [Authenticate(keys.hash_key(API_KEY))]
    [admitted] = exchange.looked_up(record(expires_at=NOW + 3600))
    assert isinstance(admitted, Admitted) and admitted.key.client_id == 7
    assert admitted.hello.camera == "door" and admitted.hello.spooled_seconds == 12
    assert exchange.data_to_send() == []  # nothing goes out while the camera's name is being reserved
    exchange.accepted("s1", NOW + 1800)  # a rotation seen meanwhile moved the key's expiry
    assert exchange.data_to_send() == [protocol.welcome(7, "door", "s1", NOW + 1800)]
    assert exchange.state is State.STREAMING and not exchange.backfill


@pytest.mark.parametrize("first", [
    "not json", json.dumps(["hello"]), hello(API_KEY, "door", version=2), hello(API_KEY, "../door"),
    hello(API_KEY, "door", codec="h265"), hello(API_KEY, "door").encode(),
], ids=["not json", "not an object", "version 2", "bad camera name", "codec h265", "binary"])
def test_a_malformed_hello_is_refused_with_4400_and_counted_against_its_address(first):
    failures = RateLimiter(3, 60.0)
    exchange = exchange_from(failures=failures)
    [refused] = exchange.receive_data(first)
    [close] = exchange.data_to_send()
    assert refused == Refused("bad_hello") and close.code == protocol.CloseCode.BAD_HELLO and close.reason
    assert API_KEY not in close.reason and exchange.state is State.CLOSED
    assert failures.retry_after("192.0.2.1", NOW) == 0 and failures.blocked(NOW + 1) == []
    for _ in range(2):
        exchange_from(failures=failures).receive_data(first)
    assert failures.blocked(NOW) == [("192.0.2.1", 3)]


def test_media_before_the_hello_is_a_malformed_hello():
    exchange = exchange_from()
    assert exchange.receive_data(protocol.media(0, 0, IDR)) == [Refused("bad_hello")]
    reason = "the first message must be a text JSON hello"
    assert exchange.data_to_send() == [Close(protocol.CloseCode.BAD_HELLO, reason)]


def test_an_oversized_hello_is_refused_with_1009_and_counted():
    exchange = exchange_from()
    padded = hello(API_KEY, "door", agent="x" * protocol.MAX_HELLO_BYTES)
    assert exchange.receive_data(padded) == [Refused("too_large")]
    assert exchange.data_to_send() == [Close(protocol.CloseCode.MESSAGE_TOO_BIG, "")]
    late = exchange_from()  # the socket refused it before the exchange saw it: the adapter says so
    assert late.hello_too_big() == [Refused("too_large")] and late.state is State.CLOSED


def test_no_hello_in_time_is_refused_with_4408_without_counting_against_the_address():
    failures = RateLimiter(1, 60.0)
    exchange = exchange_from(failures=failures)
    assert exchange.hello_timed_out() == [Refused("timeout")]
    assert exchange.data_to_send() == [Close(protocol.CloseCode.HELLO_TIMEOUT, "no hello in time")]
    assert failures.retry_after("192.0.2.1", NOW) == 0


@pytest.mark.parametrize("found", [
    None,  # a well-formed key nobody holds
    record(revoked_at=NOW - 1),
    record(client_status=ClientStatus.REVOKED),
    record(expires_at=NOW),
    record(handover_expires_at=NOW + 60),  # handed over by a link not opened yet
], ids=["unknown", "revoked key", "revoked client", "expired", "awaiting pick-up"])
def test_a_wrong_revoked_or_expired_key_is_refused_alike_with_4401(found):
    exchange = exchange_from()
    [ask] = exchange.receive_data(hello(API_KEY, "door"))
    assert exchange.looked_up(found) == [Refused("invalid_key")]
    assert exchange.data_to_send() == [INVALID_KEY] and exchange.key is None
    assert ask == Authenticate(keys.hash_key(API_KEY))


def test_a_key_that_is_no_key_is_refused_without_a_look_up():
    exchange = exchange_from()
    assert exchange.receive_data(hello("vig_secret", "door")) == [Refused("invalid_key")]
    assert exchange.data_to_send() == [INVALID_KEY]


def test_an_address_past_its_failures_hears_4429_with_the_delay_and_a_good_key_still_passes():
    failures = RateLimiter(2, 60.0)
    for _ in range(2):
        exchange_from(failures=failures).receive_data(hello(keys.generate()[:-1], "door"))
    blocked = exchange_from(failures=failures)
    assert blocked.receive_data("{}") == [Refused("bad_hello", rate_limited=True)]
    assert blocked.data_to_send() == [Close(protocol.CloseCode.TOO_MANY_FAILURES,
                                            "too many failed attempts; retry in 60 s")]
    other = exchange_from("192.0.2.2", failures)  # its neighbours are not blocked
    assert other.receive_data("{}") == [Refused("bad_hello")]
    good = exchange_from(failures=failures)  # keys are 256-bit: a valid one is no guess
    good.receive_data(hello(API_KEY, "door"))
    assert isinstance(good.looked_up(record())[0], Admitted)


def test_a_refusal_while_the_name_is_reserved_is_the_close_sent():
    exchange = exchange_from()
    exchange.receive_data(hello(API_KEY, "door"))
    exchange.looked_up(record())
    taken = protocol.camera_taken("door")
    exchange.close(taken.code, taken.reason)
    exchange.close(protocol.CloseCode.GOING_AWAY, "")  # the first close decided is the one sent
    assert exchange.data_to_send() == [Close(protocol.CloseCode.OVER_LIMIT, taken.reason)]
    with pytest.raises(RuntimeError):
        exchange.accepted("s1", None)


def test_a_second_hello_after_the_welcome_is_an_ignored_control_message():
    exchange = welcomed(backfill=False)
    assert exchange.receive_data(hello(API_KEY, "door")) == [Ignored("hello")]
    assert exchange.data_to_send() == [] and exchange.state is State.STREAMING


def test_nothing_is_read_while_the_key_is_looked_up():
    exchange = exchange_from()
    exchange.receive_data(hello(API_KEY, "door"))
    with pytest.raises(RuntimeError):  # the adapter reads the socket again only once it is welcomed
        exchange.receive_data(hello(API_KEY, "door"))


def test_an_oversized_control_message_closes_the_stream_with_1009():
    exchange = welcomed(backfill=False)
    assert exchange.receive_data(json.dumps({"type": "x", "pad": "y" * protocol.MAX_CONTROL_BYTES})) == []
    assert [close.code for close in exchange.data_to_send()] == [protocol.CloseCode.MESSAGE_TOO_BIG]
    assert exchange.state is State.CLOSED


def test_media_is_read_only_after_the_welcome_and_a_live_stream_ignores_an_end():
    exchange = exchange_from()
    exchange.receive_data(hello(API_KEY, "door"))
    exchange.looked_up(record())
    with pytest.raises(RuntimeError):
        exchange.receive_data(protocol.media(0, 0, IDR))
    exchange.accepted("s1", None)
    message = protocol.media(0, 0, IDR)
    assert exchange.receive_data(message) == [Media(message)]
    assert exchange.receive_data(protocol.end_of_backfill()) == [Ignored(protocol.END_OF_BACKFILL)]


def test_a_backfill_skips_footage_delivered_live_and_reads_nothing_after_its_end():
    exchange = welcomed(backfill=True)
    exchange.seen = SeenFootage([(100, 200)])
    live = protocol.media(100, 100, IDR)
    after = protocol.media(250, 250, SLICE)
    fresh = protocol.media(300, 300, IDR)
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
    # Recorded: all but the last 100 µs, which an incident not known yet may need.
    exchange.analysed(until=1050, held=None, caught_up=True)
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
