"""Wire protocol v1, as pure functions and data: parse the hello, build replies, split media messages.

No I/O here: the server feeds messages in and gets typed values or a `ProtocolViolation` out; docs/protocol.md
describes the same protocol for third-party agents.
"""

import enum
import json
import math
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone

from vigint.errors import VigintError

VERSION = 1
PATH = "/v1/stream"
MAX_HELLO_BYTES = 4 * 1024  # before authentication: enough for any hello, too small to hurt
MAX_MEDIA_BYTES = 4 * 1024 * 1024  # after: an access unit of a 4K keyframe at a high bitrate
MAX_CONTROL_BYTES = 64 * 1024  # a control message is a few fields: parsing more on the event loop only costs
HEADER = struct.Struct(">qq")  # presentation time, decode time: µs since the Unix epoch, capture clock
MAX_CAMERA_NAME = 64
CAMERA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]*")
CODECS = frozenset({"h264"})
RETRY_AFTER = re.compile(r"retry in (\d+) s")
MAX_PICTURE_SIDE = 16384  # the most any [server] picture limit allows
# Frames per second of any camera a security service takes (high-speed cameras film at 120): a stream whose
# times advance faster is no camera's (see analysis/intake.py).
MAX_FRAME_RATE = 120
MAX_SPOOLED_SECONDS = 366 * 24 * 3600  # a year: more than any spool holds


class CloseCode(enum.IntEnum):
    """Close codes the server uses, and whether an agent should reconnect after each."""

    DONE = 1000  # a backfill connection's footage is all analysed and acknowledged
    GOING_AWAY = 1001  # server shutting down (or a drained node handing its streams on): reconnect at once
    MESSAGE_TOO_BIG = 1009  # a message over the current size limit: fix the agent
    INTERNAL_ERROR = 1011  # unexpected server error: reconnect after backoff
    TRY_AGAIN_LATER = 1013  # the server is draining (about to stop): reconnect after backoff, to another node
    BAD_HELLO = 4400  # hello missing fields, not JSON, wrong type or version: do not reconnect
    INVALID_KEY = 4401  # key unknown, revoked, expired or malformed: do not reconnect
    OVER_LIMIT = 4403  # over the client's stream cap, or camera already streaming: after backoff
    HELLO_TIMEOUT = 4408  # no hello within auth_timeout: reconnect
    TOO_MANY_FAILURES = 4429  # too many failed hellos from this address: after the given delay
    BAD_MEDIA = 4415  # the media cannot be decoded at all: do not reconnect without a fix


# One reason for every kind of invalid key, so that the answer reveals nothing about which keys exist.
INVALID_KEY_REASON = "invalid API key"


class ProtocolViolation(VigintError):
    """A message breaks the protocol; `code` and `reason` are what the connection is closed with."""

    def __init__(self, code: CloseCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Hello:
    """The agent's first message."""

    key: str = field(repr=False)  # a secret: never in a repr or a log line
    camera: str
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    agent: str | None = None
    # the connection carries recorded footage (see docs/protocol.md, 4a), not live video
    backfill: bool = False
    spooled_seconds: float | None = None  # a live stream's recorded footage about to be backfilled


@dataclass(frozen=True)
class MediaMessage:
    """One access unit with its timestamps (µs since the Unix epoch)."""

    pts: int
    dts: int
    data: bytes


def _bad(reason: str) -> ProtocolViolation:
    return ProtocolViolation(CloseCode.BAD_HELLO, reason)


def _optional(document: dict, name: str, kinds: tuple[type, ...]):
    value = document.get(name)
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
        raise _bad(f"hello field {name!r} has the wrong type")
    return value


def _number(document: dict, name: str, kinds: tuple[type, ...], low: float, high: float, *,
            above_low: bool = False):
    """Return an optional numeric field, refused unless `low` <= value <= `high` (or `low` < value): JSON
    allows `1e999`, which Python reads as infinity, and integers of thousands of digits."""
    value = _optional(document, name, kinds)
    if value is not None and not (low < value <= high if above_low else low <= value <= high):
        raise _bad(f"hello field {name!r} is out of range")
    return value


def _json_object(message: str) -> dict | None:
    """Parse a JSON text; return it if it is an object, None if it is not JSON or not an object.

    Callers bound the size first. Nesting is bounded by the json module's recursion guard, which raises
    RecursionError for a text like ``[[[[…`` thousands deep: that is malformed input, not a server failure.
    """
    try:
        document = json.loads(message)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def is_camera_name(name: str) -> bool:
    """Tell whether `name` may name a camera: 1-MAX_CAMERA_NAME letters, digits, spaces, '.', '_' or '-'."""
    return len(name) <= MAX_CAMERA_NAME and CAMERA_NAME.fullmatch(name) is not None


def hello(key: str, camera: str, agent: str, *, backfill: bool = False,
          spooled_seconds: float | None = None) -> str:
    """Build the first message of a connection (what an agent sends): a live stream's, or with `backfill` a
    connection carrying recorded footage. `spooled_seconds` tells the server how much a live stream will
    backfill."""
    document = {"type": "hello", "version": VERSION, "key": key, "camera": camera, "codec": "h264",
                "agent": agent}
    if backfill:
        document["backfill"] = True
    if spooled_seconds is not None:
        document["spooled_seconds"] = round(spooled_seconds, 3)
    return json.dumps(document)


def parse_hello(message: str | bytes) -> Hello:
    """Parse and validate the first message of a connection.

    Raises:
        ProtocolViolation: code 4400 with a short reason naming what is wrong; values sent by the agent are
            never echoed (a key must not reach a log, and a long value would overflow the close frame).
    """
    if isinstance(message, bytes):
        raise _bad("the first message must be a text JSON hello")
    document = _json_object(message)
    if document is None or document.get("type") != "hello":
        raise _bad('the first message must be a JSON object {"type": "hello", ...}')
    version = document.get("version")
    if type(version) is not int or version != VERSION:  # `true == 1` in Python: a bool is not a version
        raise _bad(f"unsupported protocol version; this server speaks {VERSION}")
    for name in ("key", "camera"):
        if not isinstance(document.get(name), str):
            raise _bad(f"the hello has no {name!r} string")
    camera = document["camera"]
    if not is_camera_name(camera):
        raise _bad(f"camera names are 1-{MAX_CAMERA_NAME} letters, digits, spaces, '.', '_' or '-'")
    codec = document.get("codec", "h264")
    if not isinstance(codec, str) or codec not in CODECS:
        raise _bad("unsupported codec; send h264")
    backfill = document.get("backfill", False)
    if not isinstance(backfill, bool):
        raise _bad("hello field 'backfill' has the wrong type")
    return Hello(key=document["key"], camera=camera, codec=codec,
                 width=_number(document, "width", (int,), 1, MAX_PICTURE_SIDE),
                 height=_number(document, "height", (int,), 1, MAX_PICTURE_SIDE),
                 fps=_number(document, "fps", (int, float), 0, MAX_FRAME_RATE, above_low=True),
                 agent=_optional(document, "agent", (str,)), backfill=backfill,
                 spooled_seconds=_number(document, "spooled_seconds", (int, float), 0, MAX_SPOOLED_SECONDS))


def parse_control(message: str) -> str | None:
    """Return the `type` of a control message, or None if it has none or is not a JSON object.

    Unknown and malformed control messages are ignored, so that new types need no version change.

    Raises:
        ProtocolViolation: code 1009 if the message is over MAX_CONTROL_BYTES.
    """
    # A character is 1-4 bytes in UTF-8: count bytes only when the character count cannot decide.
    if len(message) > MAX_CONTROL_BYTES or len(message.encode()) > MAX_CONTROL_BYTES:
        raise ProtocolViolation(CloseCode.MESSAGE_TOO_BIG,
                                f"control messages are at most {MAX_CONTROL_BYTES // 1024} KiB")
    document = _json_object(message)
    kind = None if document is None else document.get("type")
    return kind if isinstance(kind, str) else None


def ack(until: int) -> str:
    """Build the server's acknowledgement of a backfill: every access unit with a decode time up to `until`
    (µs, inclusive) is analysed and recorded; the agent may forget it."""
    return json.dumps({"type": "ack", "until": until})


def parse_ack(message: str | bytes) -> int | None:
    """Return the `until` of an ack (what an agent receives), or None if the message is not a valid ack."""
    if not isinstance(message, str) or len(message) > MAX_CONTROL_BYTES:
        return None
    document = _json_object(message)
    until = None if document is None or document.get("type") != "ack" else document.get("until")
    return until if type(until) is int else None


END_OF_BACKFILL = "end"


def end_of_backfill() -> str:
    """Build the agent's word that a backfill connection has sent all its footage."""
    return json.dumps({"type": END_OF_BACKFILL})


def backfill_taken(camera: str) -> ProtocolViolation:
    """Return the refusal of a second backfill connection for a camera."""
    return ProtocolViolation(CloseCode.OVER_LIMIT, f"camera {camera!r} is already sending recorded footage")


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


def welcome(client_id: int, camera: str, session: str, key_expires_at: float | None = None) -> str:
    """Return the server's answer to an accepted hello; it says when the key stops working, if it expires."""
    document = {"type": "welcome", "client_id": client_id, "camera": camera, "session": session}
    if key_expires_at is not None:
        document["key_expires_at"] = _utc(key_expires_at)
    return json.dumps(document)


KEY_NOTICE = "key"


def key_notice(key_expires_at: float | None) -> str:
    """Build the notice telling a streaming agent that its key's expiry changed (a rotation), null for
    none."""
    expires_at = None if key_expires_at is None else _utc(key_expires_at)
    return json.dumps({"type": KEY_NOTICE, "key_expires_at": expires_at})


def key_expiry(document: dict) -> float | None:
    """Return the `key_expires_at` of a welcome or key notice (what an agent receives) as Unix time; None if
    it has none or it is not an ISO 8601 time with a zone."""
    text = document.get("key_expires_at")
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment.timestamp() if moment is not None and moment.tzinfo is not None else None


def too_many_failures(wait: float) -> ProtocolViolation:
    """Return the refusal of an address that failed too many hellos, saying when to retry (whole seconds)."""
    return ProtocolViolation(CloseCode.TOO_MANY_FAILURES,
                             f"too many failed attempts; retry in {math.ceil(wait)} s")


def camera_taken(camera: str) -> ProtocolViolation:
    """Return the refusal of a camera name the client streams already (on this node or another)."""
    return ProtocolViolation(CloseCode.OVER_LIMIT, f"camera {camera!r} is already streaming")


def over_stream_limit(most: int) -> ProtocolViolation:
    """Return the refusal of a stream beyond the client's `most` (counted on every node)."""
    return ProtocolViolation(CloseCode.OVER_LIMIT, f"over the limit of {most} streams for this client")


def retry_delay(reason: str) -> float | None:
    """Return the delay a 4429 close reason asks for, if it says one (see `too_many_failures`)."""
    found = RETRY_AFTER.search(reason)
    return float(found[1]) if found else None


def incident(incident_id: int, camera: str, kind: str, description: str, threat: int,
             started_at: float) -> str:
    """Build the notice of an incident that the server sends the stream's agent (a control message)."""
    return json.dumps({"type": "incident", "incident_id": incident_id, "camera": camera, "kind": kind,
                       "description": description, "threat": threat,
                       "started_at": _utc(started_at)})


def parse_media(message: bytes) -> MediaMessage:
    """Split a binary media message into its header times and access unit.

    Raises:
        ProtocolViolation: code 4415 if the message is shorter than its header.
    """
    if len(message) <= HEADER.size:
        raise ProtocolViolation(CloseCode.BAD_MEDIA, "a media message is a 16-byte header and an access unit")
    pts, dts = HEADER.unpack_from(message)
    return MediaMessage(pts, dts, message[HEADER.size:])


def media_dts(message: bytes) -> int | None:
    """Return the decode time of a media message without copying its access unit; None if it has no header."""
    return HEADER.unpack_from(message)[1] if len(message) > HEADER.size else None


def media(pts: int, dts: int, access_unit: bytes) -> bytes:
    """Build a media message (what an agent sends)."""
    return HEADER.pack(pts, dts) + access_unit
