import json
from random import Random

import pytest
from attacks import MAX_REASON_BYTES, random_hello
from helpers import hello
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigint import keys, protocol
from vigint.protocol import CloseCode, ProtocolViolation


def test_hello_is_parsed_with_its_optional_fields():
    parsed = protocol.parse_hello(hello(width=1280, height=720, fps=15, agent="vigint-agent/0.1"))
    assert ((parsed.camera, parsed.codec, parsed.width, parsed.height, parsed.fps)
            == ("front-door", "h264", 1280, 720, 15))


def test_the_key_never_appears_in_a_repr_or_an_error():
    assert "vig_secret" not in repr(protocol.parse_hello(hello()))
    with pytest.raises(ProtocolViolation) as error:
        protocol.parse_hello(hello(camera="../../etc"))
    assert "vig_secret" not in str(error.value)


@pytest.mark.parametrize("message, why", [
    ("{", "JSON object"),
    ("[]", '{"type": "hello"'),
    (json.dumps({"type": "welcome"}), '{"type": "hello"'),
    (hello(version=2), "unsupported protocol version"),
    (hello(key=5), "no 'key' string"),
    (hello(camera=""), "camera names"),
    (hello(camera="x" * 65), "camera names"),
    (hello(codec="hevc"), "unsupported codec"),
    (hello(width="wide"), "'width' has the wrong type"),
    (hello(fps=True), "'fps' has the wrong type"),
    ('{"type": "hello", "version": 1, "key": "k", "camera": "door", "fps": 1e999}', "'fps' is out of range"),
    ('{"type": "hello", "version": 1, "key": "k", "camera": "door", "fps": NaN}', "'fps' is out of range"),
    ('{"type": "hello", "version": 1, "key": "k", "camera": "door", "fps": -Infinity}', "'fps' is out of range"),
    (hello(fps=0), "'fps' is out of range"),
    (hello(fps=121), "'fps' is out of range"),
    (hello(width=10 ** 400), "'width' is out of range"),
    (hello(height=0), "'height' is out of range"),
    (hello(spooled_seconds=-1), "'spooled_seconds' is out of range"),
    ('{"type": "hello", "version": 1, "key": "k", "camera": "door", "spooled_seconds": 1e999}',
     "'spooled_seconds' is out of range"),
    (b'{"type": "hello"}', "text JSON hello"),
])
def test_bad_hellos_are_4400_with_a_reason(message, why):
    with pytest.raises(ProtocolViolation) as error:
        protocol.parse_hello(message)
    assert error.value.code == CloseCode.BAD_HELLO and why in error.value.reason


def test_media_message_round_trip():
    message = protocol.media(1_700_000_000_000_000, 1_699_999_999_933_334, b"\x00\x00\x00\x01\x65abc")
    parsed = protocol.parse_media(message)
    assert (parsed.pts, parsed.dts, parsed.data) == (1_700_000_000_000_000, 1_699_999_999_933_334,
                                                      b"\x00\x00\x00\x01\x65abc")
    assert message[:8] == (1_700_000_000_000_000).to_bytes(8, "big")


def test_media_message_without_payload_is_bad_media():
    with pytest.raises(ProtocolViolation) as error:
        protocol.parse_media(b"\x00" * 16)
    assert error.value.code == CloseCode.BAD_MEDIA


def test_welcome():
    assert json.loads(protocol.welcome(5, "door", "abc")) == {"type": "welcome", "client_id": 5, "camera": "door",
                                                              "session": "abc"}


def test_the_welcome_and_the_key_notice_say_when_the_key_stops_working():
    welcome = json.loads(protocol.welcome(5, "door", "abc", key_expires_at=1_767_225_600.5))
    assert welcome["key_expires_at"] == "2026-01-01T00:00:00.500000+00:00"
    assert protocol.key_expiry(welcome) == 1_767_225_600.5
    assert protocol.key_expiry(json.loads(protocol.welcome(5, "door", "abc"))) is None  # a key without expiry
    notice = json.loads(protocol.key_notice(1_767_225_600.0))
    assert notice["type"] == protocol.KEY_NOTICE and protocol.key_expiry(notice) == 1_767_225_600.0
    assert protocol.key_expiry(json.loads(protocol.key_notice(None))) is None
    for nonsense in ("tomorrow", "2026-01-01T00:00:00", 1_767_225_600, None, ["x"]):  # no zone, not a text: ignored
        assert protocol.key_expiry({"type": "key", "key_expires_at": nonsense}) is None


# Properties: whatever an agent sends, the parsers answer with a value or a ProtocolViolation, never a crash.

KEY = keys.generate()
VALID_HELLO = {"type": "hello", "version": 1, "key": KEY, "camera": "front-door", "codec": "h264",
               "width": 1280, "height": 720, "fps": 15, "agent": "vigint-agent/0.1"}
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300)
json_values = st.recursive(json_scalars, lambda children: st.lists(children, max_size=5)
                           | st.dictionaries(st.text(max_size=10), children, max_size=5), max_leaves=20)
one_field_changed = st.builds(lambda name, value: json.dumps({**VALID_HELLO, name: value}),
                              st.sampled_from([*VALID_HELLO, "extra"]), json_values)
one_field_dropped = st.sampled_from(list(VALID_HELLO)).map(
    lambda name: json.dumps({field: value for field, value in VALID_HELLO.items() if field != name}))
CLOSERS = {"[": "]", '{"a":': "}"}
deep_nesting = st.builds(lambda depth, opener, closed: opener * depth + CLOSERS[opener] * depth * closed,
                         st.integers(1, 5000), st.sampled_from(list(CLOSERS)), st.booleans())
first_messages = (json_values.map(json.dumps) | one_field_changed | one_field_dropped | deep_nesting
                  | st.text(max_size=500) | st.binary(max_size=500))
fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_first_message(message: str | bytes) -> None:
    """The hello contract: a Hello only for a hello that follows the protocol; otherwise 4400 with a short,
    non-empty reason that never echoes the key."""
    try:
        parsed = protocol.parse_hello(message)
    except ProtocolViolation as violation:
        assert violation.code == CloseCode.BAD_HELLO
        assert 0 < len(violation.reason.encode()) <= MAX_REASON_BYTES, violation.reason
        assert KEY not in violation.reason
        return
    document = json.loads(message)
    assert document["type"] == "hello" and type(document["version"]) is int and document["version"] == 1
    assert parsed.codec == "h264" and protocol.CAMERA_NAME.fullmatch(parsed.camera) and len(parsed.camera) <= 64
    assert parsed.key == document["key"] and isinstance(parsed.key, str)


@fast
@given(first_messages)
def test_any_first_message_is_a_hello_or_a_4400_with_a_short_reason(message):
    check_first_message(message)


@fast
@given(st.randoms(use_true_random=False))
def test_the_fuzz_campaigns_hellos_are_each_a_hello_or_a_4400(rng):
    check_first_message(random_hello(Random(rng.random()), KEY))


@pytest.mark.parametrize("value", [True, 1.0, "1", [1], None])
def test_a_version_that_only_looks_like_1_is_refused(value):
    with pytest.raises(ProtocolViolation) as error:
        protocol.parse_hello(json.dumps({**VALID_HELLO, "version": value}))
    assert error.value.code == CloseCode.BAD_HELLO


@fast
@given(st.binary(max_size=64))
def test_any_binary_message_is_media_or_a_protocol_violation(message):
    try:
        parsed = protocol.parse_media(message)
    except ProtocolViolation as violation:
        assert len(message) <= protocol.HEADER.size and violation.code == CloseCode.BAD_MEDIA
        return
    assert parsed.data == message[protocol.HEADER.size:] and parsed.data
    assert (parsed.pts, parsed.dts) == protocol.HEADER.unpack_from(message)


@fast
@given(st.integers(-2**63, 2**63 - 1), st.integers(-2**63, 2**63 - 1), st.binary(min_size=1, max_size=100))
def test_media_messages_round_trip_at_any_time(pts, dts, access_unit):
    parsed = protocol.parse_media(protocol.media(pts, dts, access_unit))
    assert (parsed.pts, parsed.dts, parsed.data) == (pts, dts, access_unit)


@fast
@given(json_values.map(json.dumps) | deep_nesting | st.text(max_size=300))
def test_any_control_message_gives_a_type_or_none(message):
    kind = protocol.parse_control(message)
    assert kind is None or isinstance(kind, str)


def test_a_control_message_over_64_kib_is_1009():
    with pytest.raises(ProtocolViolation) as error:
        protocol.parse_control(json.dumps({"type": "note", "padding": "é" * 40_000}))
    assert error.value.code == CloseCode.MESSAGE_TOO_BIG


def test_a_backfill_hello_round_trips_and_a_live_one_says_how_much_is_spooled():
    backfill = protocol.parse_hello(protocol.hello("vig_x", "front-door", "a/1", backfill=True))
    live = protocol.parse_hello(protocol.hello("vig_x", "front-door", "a/1", spooled_seconds=61.5))
    assert (backfill.backfill, backfill.spooled_seconds) == (True, None)
    assert (live.backfill, live.spooled_seconds) == (False, 61.5)


@pytest.mark.parametrize("field", [{"backfill": 1}, {"backfill": "yes"}, {"spooled_seconds": -1},
                                   {"spooled_seconds": True}, {"spooled_seconds": "60"}])
def test_backfill_fields_of_the_wrong_type_are_refused(field):
    with pytest.raises(ProtocolViolation) as refused:
        protocol.parse_hello(json.dumps({**VALID_HELLO, **field}))
    assert refused.value.code == CloseCode.BAD_HELLO and "hello field" in refused.value.reason


def test_only_a_well_formed_ack_is_taken():
    assert protocol.parse_ack(protocol.ack(1_700_000_000_000_000)) == 1_700_000_000_000_000
    for message in ('{"type": "ack", "until": "5"}', '{"type": "ack", "until": true}', '{"type": "ack"}',
                    '{"type": "incident", "until": 5}', "[1]", b'{"type": "ack", "until": 5}', "x" * 70_000):
        assert protocol.parse_ack(message) is None
