import json

import pytest

from vigint import protocol
from vigint.protocol import CloseCode, ProtocolViolation


def hello(**fields) -> str:
    return json.dumps({"type": "hello", "version": 1, "key": "vig_secret", "camera": "front-door", **fields})


def test_hello_is_parsed_with_its_optional_fields():
    parsed = protocol.parse_hello(hello(width=1280, height=720, fps=15, agent="vigint-agent/0.1"))
    assert (parsed.camera, parsed.codec, parsed.width, parsed.height, parsed.fps) == ("front-door", "h264", 1280, 720, 15)


def test_the_key_never_appears_in_a_repr_or_an_error():
    assert "vig_secret" not in repr(protocol.parse_hello(hello()))
    with pytest.raises(ProtocolViolation) as error:
        protocol.parse_hello(hello(camera="../../etc"))
    assert "vig_secret" not in str(error.value)


@pytest.mark.parametrize("message, why", [
    ("{", "not JSON"),
    ("[]", '{"type": "hello"'),
    (json.dumps({"type": "welcome"}), '{"type": "hello"'),
    (hello(version=2), "unsupported protocol version 2"),
    (hello(key=5), "no 'key' string"),
    (hello(camera=""), "camera names"),
    (hello(camera="x" * 65), "camera names"),
    (hello(codec="hevc"), "unsupported codec 'hevc'"),
    (hello(width="wide"), "'width' has the wrong type"),
    (hello(fps=True), "'fps' has the wrong type"),
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
