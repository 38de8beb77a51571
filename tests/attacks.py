"""What a hostile agent sends, and a real `vigint serve` to send it to.

Shared by tests/ingest/test_attacks.py, tests/ingest/test_fuzz.py, tests/test_protocol.py and scripts/fuzz.py
(which puts this folder on sys.path), so the CI fuzz campaign and the tests generate the same kinds of input:

- a tiny H.264 bit reader and writer, to rewrite the picture size in a real stream's SPS;
- crafted attacks: NAL bombs, resolution bombs, hostile hellos;
- seeded generators of hostile hellos and mutated H.264 streams, driven by a `random.Random`;
- `ServeProcess`: `vigint serve` in a subprocess (its log in a file, its RSS, the admin CLI beside it);
- `HealthyStream`: a well-behaved camera in its own thread and event loop, sending at real time and timing
  its pings, so that whatever the test's own loop is doing cannot disturb the measurement.
"""

import asyncio
import json
import os
import re
import signal
import socket
import string
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from helpers import hello
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from vigint import keys, protocol
from vigint.agent.testpattern import EncodedVideo
from vigint.tasks import wait_for_event

MiB = 1024 * 1024
AUD = b"\x00\x00\x01\x09"  # an access-unit delimiter NAL: four bytes, the cheapest NAL unit there is
SPS_TYPE = 7
MAX_REASON_BYTES = 123  # RFC 6455: a close frame's payload is at most 125 bytes, 2 of them the code


# H.264 bits: Exp-Golomb codes, emulation prevention, the SPS picture size


class BitReader:
    """Read an RBSP MSB first: fixed-width fields, ue(v) and se(v) codes."""

    def __init__(self, data: bytes):
        self._data = data
        self.length = len(data) * 8
        self.position = 0

    def u(self, bits: int) -> int:
        """Read an unsigned `bits`-bit field."""
        if self.position + bits > self.length:
            raise ValueError("read past the end of the RBSP")
        value = 0
        for position in range(self.position, self.position + bits):
            value = value << 1 | (self._data[position >> 3] >> (7 - (position & 7))) & 1
        self.position += bits
        return value

    def ue(self) -> int:
        """Read an unsigned Exp-Golomb code."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 32:
                raise ValueError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Read a signed Exp-Golomb code."""
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)

    def rest(self) -> list[int]:
        """Return the bits from here to the end, one int each."""
        return [self.u(1) for _ in range(self.length - self.position)]


class BitWriter:
    """Write an RBSP MSB first; `rbsp()` adds the stop bit and the zero padding."""

    def __init__(self):
        self._bits: list[int] = []

    def u(self, bits: int, value: int) -> None:
        """Write `value` as an unsigned `bits`-bit field."""
        self._bits += [(value >> shift) & 1 for shift in range(bits - 1, -1, -1)]

    def ue(self, value: int) -> None:
        """Write an unsigned Exp-Golomb code."""
        width = (value + 1).bit_length()
        self.u(width - 1, 0)
        self.u(width, value + 1)

    def se(self, value: int) -> None:
        """Write a signed Exp-Golomb code."""
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def bits(self, bits: list[int]) -> None:
        """Append raw bits."""
        self._bits += bits

    def rbsp(self) -> bytes:
        """Return the bytes written, closed by rbsp_stop_one_bit and zero bits up to a byte boundary."""
        bits = self._bits + [1]
        bits += [0] * (-len(bits) % 8)
        return int("".join(map(str, bits)), 2).to_bytes(len(bits) // 8, "big")


def unescape(payload: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 → 00 00) from a NAL unit's payload."""
    return re.sub(b"\x00\x00\x03(?=[\x00-\x03]|$)", b"\x00\x00", payload)


def escape(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes so that no start code appears inside a NAL unit's payload."""
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


MAX_SPS_BYTES = 1024  # a real SPS is tens of bytes; a longer "SPS" is garbage not worth rewriting
HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def _skip_scaling_lists(reader: BitReader, count: int) -> None:
    for index in range(count):
        if reader.u(1):  # seq_scaling_list_present_flag
            last = following = 8
            for _ in range(16 if index < 6 else 64):
                if following:
                    following = (last + reader.se() + 256) % 256
                last = following or last


def _size_fields(rbsp: bytes) -> tuple[BitReader, int, int]:
    """Read an SPS RBSP (header byte stripped) up to pic_width_in_mbs_minus1; return the reader, that bit
    position and chroma_format_idc."""
    reader = BitReader(rbsp)
    profile = reader.u(8)
    reader.u(16)  # constraint flags, level_idc
    reader.ue()  # seq_parameter_set_id
    chroma_format = 1
    if profile in HIGH_PROFILES:
        chroma_format = reader.ue()
        if chroma_format == 3:
            reader.u(1)  # separate_colour_plane_flag
        reader.ue(), reader.ue(), reader.u(1)  # bit depths, qpprime_y_zero_transform_bypass_flag
        if reader.u(1):  # seq_scaling_matrix_present_flag
            _skip_scaling_lists(reader, 8 if chroma_format != 3 else 12)
    reader.ue()  # log2_max_frame_num_minus4
    poc_type = reader.ue()
    if poc_type == 0:
        reader.ue()
    elif poc_type == 1:
        reader.u(1), reader.se(), reader.se()
        for _ in range(reader.ue()):
            reader.se()
    reader.ue(), reader.u(1)  # max_num_ref_frames, gaps_in_frame_num_value_allowed_flag
    return reader, reader.position, chroma_format


def sps_picture_size(nal: bytes) -> tuple[int, int]:
    """Return the (width, height) in pixels an SPS NAL unit (header byte included) declares, after cropping."""
    reader, _, chroma_format = _size_fields(unescape(nal[1:]))
    width_mbs, height_units = reader.ue() + 1, reader.ue() + 1
    frame_mbs_only = reader.u(1)
    if not frame_mbs_only:
        reader.u(1)
    reader.u(1)  # direct_8x8_inference_flag
    width, height = 16 * width_mbs, 16 * height_units * (2 - frame_mbs_only)
    if reader.u(1):  # frame_cropping_flag
        left, right, top, bottom = reader.ue(), reader.ue(), reader.ue(), reader.ue()
        crop_x = 2 if chroma_format in (1, 2) else 1
        crop_y = (2 if chroma_format == 1 else 1) * (2 - frame_mbs_only)
        width, height = width - crop_x * (left + right), height - crop_y * (top + bottom)
    return width, height


def patch_sps(nal: bytes, width: int, height: int) -> bytes:
    """Return the SPS NAL unit `nal` rewritten to declare a `width` × `height` picture (rounded up to whole
    macroblocks, no cropping); every other field, VUI included, is kept bit for bit."""
    if len(nal) > MAX_SPS_BYTES:
        raise ValueError("not an SPS: far too long")
    rbsp = unescape(nal[1:])
    reader, start, _ = _size_fields(rbsp)
    reader.ue(), reader.ue()  # the old pic_width_in_mbs_minus1, pic_height_in_map_units_minus1
    frame_mbs_only = reader.u(1)
    writer = BitWriter()
    writer.bits(BitReader(rbsp).rest()[:start])
    writer.ue(max(1, -(-width // 16)) - 1)
    writer.ue(max(1, -(-height // (16 * (2 - frame_mbs_only)))) - 1)
    writer.u(1, frame_mbs_only)
    if not frame_mbs_only:
        writer.u(1, reader.u(1))  # mb_adaptive_frame_field_flag
    writer.u(1, reader.u(1))  # direct_8x8_inference_flag
    if reader.u(1):  # frame_cropping_flag: dropped with its four offsets
        for _ in range(4):
            reader.ue()
    writer.u(1, 0)
    rest = reader.rest()
    writer.bits(rest[: len(rest) - 1 - rest[::-1].index(1)])  # VUI and the rest, up to the old stop bit
    return nal[:1] + escape(writer.rbsp())


# Access units as lists of NAL units


def split_nals(access_unit: bytes) -> list[bytes]:
    """Return the NAL units of an Annex-B access unit, without their start codes."""
    return [unit.rstrip(b"\x00") for unit in access_unit.split(b"\x00\x00\x01")[1:] if unit.rstrip(b"\x00")]


def join_nals(units: list[bytes]) -> bytes:
    """Return an Annex-B access unit of `units`, each behind a 4-byte start code."""
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)


def replace_sps(access_unit: bytes, width: int, height: int) -> bytes:
    """Return `access_unit` with every SPS in it rewritten to declare `width` × `height`."""
    return join_nals([patch_sps(unit, width, height) if unit[0] & 0x1F == SPS_TYPE else unit
                      for unit in split_nals(access_unit)])


# Crafted attacks


def nal_bomb(pts: int = 0, size: int = protocol.MAX_MEDIA_BYTES) -> bytes:
    """Return a media message of `size` bytes whose access unit is nothing but empty NAL units (about a
    million of them in the 4 MiB an authenticated agent may send)."""
    return protocol.media(pts, pts, AUD * ((size - protocol.HEADER.size) // len(AUD)))


def resolution_bomb(video: EncodedVideo, width: int, height: int, start_us: int = 0) -> list[bytes]:
    """Return `video` as media messages whose keyframes' SPS declare a `width` × `height` picture."""
    return [protocol.media(start_us + pts, start_us + dts, replace_sps(data, width, height) if keyframe else data)
            for pts, dts, keyframe, data in video.units]


def hostile_hellos(key: str) -> dict[str, str]:
    """The hostile hellos that must each be refused with 4400 (and counted as failures), by name."""
    return {
        "deep nesting": "[" * 4000,
        "long version": json.dumps({"type": "hello", "version": "9" * 200, "key": key, "camera": "a",
                                    "codec": "h264"}),
        "long codec": hello(key, "a", codec="c" * 200),
        "boolean version": json.dumps({"type": "hello", "version": True, "key": key, "camera": "a",
                                       "codec": "h264"}),
    }


# Seeded generators: hostile hellos


def random_text(rng: Random, length: int) -> str:
    """Return `length` characters mixing ASCII, control characters, non-BMP and lone surrogates."""
    pools = (string.printable, "\x00\x01\x1f\x7f\u2028\ufeff\ufffd", "éß漢字🎥𝕏", "\ud800\udfff")
    return "".join(rng.choice(rng.choice(pools)) for _ in range(length))


def random_json_value(rng: Random, depth: int = 0):
    """Return a random JSON-like value: nested lists and objects, strings, numbers, booleans, null."""
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 2, 2**31, 2**63, -(2**63), 10**30, rng.randrange(-10**6, 10**6)])
    if kind == 3:
        return rng.choice([0.5, 1.0, -0.0, 1e308, 1e-308, float("inf"), float("-inf"), float("nan")])
    if kind in (4, 5):
        return random_text(rng, rng.choice([0, 1, 5, 64, 65, 130, 300]))
    if kind in (6, 7):
        return [random_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng, rng.randrange(1, 8)): random_json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _dumps(document) -> str:
    """JSON as an agent could send it: raw UTF-8 where possible; lone surrogates, which a text frame cannot
    carry, as \\u escapes (the server then parses a string holding them)."""
    text = json.dumps(document, allow_nan=True, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.dumps(document, allow_nan=True)
    return text


def _sendable(text: str) -> str:
    """`text` with lone surrogates replaced, so that it fits in a text frame."""
    return "".join("\ufffd" if "\ud800" <= character <= "\udfff" else character for character in text)


def random_hello(rng: Random, key: str) -> str | bytes:
    """Return one generated hostile first message: a valid hello with a field mutated, dropped or added,
    a random JSON document, deep nesting, raw text or bytes. Most fit the 4 KiB pre-auth limit; some do not."""
    base = {"type": "hello", "version": 1, "key": key, "camera": "front-door", "codec": "h264",
            "width": 1280, "height": 720, "fps": 15, "agent": "fuzz/1"}
    kind = rng.randrange(10)
    if kind <= 2:  # one field given a random value
        base[rng.choice(list(base))] = random_json_value(rng)
        return _dumps(base)
    if kind == 3:  # one field dropped, one unknown field added
        del base[rng.choice(list(base))]
        base[random_text(rng, rng.randrange(1, 10))] = random_json_value(rng)
        return _dumps(base)
    if kind == 4:  # a field's value far too long to echo in a close reason
        field_name = rng.choice(["version", "codec", "camera", "type", "agent", "key"])
        base[field_name] = random_text(rng, rng.randrange(100, 1000))
        return _dumps(base)
    if kind == 5:  # deep nesting, possibly inside a hello
        depth = rng.choice([100, 1000, 3000, 4000, 5000])
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}"), ('[{"a":', "}]")])
        inner = opener * (depth // len(opener)) + closer * rng.choice([0, depth // len(opener)])
        return inner if rng.random() < 0.7 else _dumps({**base, "x": 0})[:-1] + ', "deep": ' + inner + "}"
    if kind == 6:
        return _dumps(random_json_value(rng))
    if kind == 7:  # raw text: broken JSON, a valid hello cut short, whitespace
        text = _dumps(base)
        return rng.choice([text[: rng.randrange(len(text))], _sendable(random_text(rng, rng.randrange(0, 200))),
                           " " * rng.randrange(4000), "\ufeff" + text, text + "garbage", text.replace('"', "'")])
    if kind == 8:  # bytes instead of text
        return rng.choice([_dumps(base).encode(), rng.randbytes(rng.randrange(0, 300))])
    numbers = rng.choice(["1e999999", "-" + "9" * 5000, "1" * 4000, "0." + "0" * 3000 + "1", "NaN", "-Infinity"])
    return _dumps({**base, "version": 0})[:-1] + f', "n": {numbers}}}'


# Seeded generators: mutated H.264 streams


@dataclass
class Mutation:
    """A mutated stream: what was done, and the messages to send after the welcome (bytes are media
    messages, str are control messages)."""

    kind: str
    messages: list[bytes | str] = field(default_factory=list)


def _window(rng: Random, video: EncodedVideo) -> list[tuple[int, int, bool, bytes]]:
    """Return a few consecutive access units of `video`, starting at a keyframe."""
    starts = [index for index, unit in enumerate(video.units) if unit[2]]
    first = rng.choice(starts)
    return list(video.units[first: first + rng.randrange(2, 12)])


def _flip_bits(rng: Random, data: bytes) -> bytes:
    """Return `data` with a few random bits flipped."""
    if not data:
        return data
    mutable = bytearray(data)
    for _ in range(rng.choice([1, 2, 8, 64])):
        position = rng.randrange(len(mutable))
        mutable[position] ^= 1 << rng.randrange(8)
    return bytes(mutable)


def _insert(rng: Random, data: bytes, chunk: bytes) -> bytes:
    """Return `data` with `chunk` inserted at a random position."""
    position = rng.randrange(len(data) + 1)
    return data[:position] + chunk + data[position:]


def _patched_or_kept(access_unit: bytes, width: int, height: int) -> bytes:
    """Return `access_unit` with its SPS declaring `width` × `height`, or unchanged if its SPS cannot be read."""
    try:
        return replace_sps(access_unit, width, height)
    except ValueError:  # an SPS an earlier mutation broke: nothing left to patch
        return access_unit


def _mutate_units(rng: Random, kind: str, units: list[bytes]) -> list[bytes]:
    """Apply one mutation `kind` to a list of Annex-B access units."""
    pick = rng.randrange(len(units))
    if kind == "bit flips":
        return [_flip_bits(rng, unit) if rng.random() < 0.5 or index == pick else unit
                for index, unit in enumerate(units)]
    if kind == "truncation":
        units[pick] = units[pick][: rng.randrange(len(units[pick]) + 1)]
        return units if rng.random() < 0.5 else units[: pick + 1]
    if kind == "patched SPS":
        width, height = rng.choice([(rng.randrange(16, 2048), rng.randrange(16, 1200)), (3856, 2160), (3840, 2176),
                                    (4096, 2304), (16, 4096), (4096, 16), (16, 16), (2560, 2048)])
        return [_patched_or_kept(unit, width, height) for unit in units]
    if kind == "repeated start codes":
        code = rng.choice([b"\x00\x00\x01", b"\x00\x00\x00\x01", b"\x00" * 50 + b"\x01"])
        units[pick] = _insert(rng, units[pick], code * rng.choice([1, 10, 1000, 20_000]))
        return units
    if kind == "many NAL units":
        nal = rng.choice([AUD, b"\x00\x00\x01\x0c\xff", b"\x00\x00\x01\x06\x05\x01\x00\x80", b"\x00\x00\x01\x67"])
        units[pick] = _insert(rng, units[pick], nal * rng.choice([257, 1000, 30_000, 100_000]))
        return units
    if kind == "shuffled NAL units":
        nals = split_nals(units[pick])
        rng.shuffle(nals)
        units[pick] = join_nals(nals)
        return units
    if kind == "duplicated NAL units":
        nals = split_nals(units[pick])
        units[pick] = join_nals([nal for nal in nals for _ in range(rng.choice([1, 2, 3]))])
        return units if rng.random() < 0.5 else units[:pick + 1] + units[pick:]
    if kind == "dropped NAL units":
        nals = split_nals(units[pick])
        units[pick] = join_nals([nal for nal in nals if rng.random() < 0.5])
        return units
    if kind == "garbage":
        garbage = rng.randbytes(rng.choice([1, 100, 5000, 200_000]))
        if rng.random() < 0.5:
            garbage = b"\x00\x00\x00\x01" + bytes([rng.choice([0x65, 0x41, 0x67, 0x68])]) + garbage
        units.insert(pick, garbage)
        return units
    raise ValueError(kind)


UNIT_MUTATIONS = ("bit flips", "truncation", "patched SPS", "repeated start codes", "many NAL units",
                  "shuffled NAL units", "duplicated NAL units", "dropped NAL units", "garbage")
TIME_MUTATIONS = ("times backwards", "absurd times", "decode after presentation")


def _times(rng: Random, kind: str, count: int, start_us: int) -> list[tuple[int, int]]:
    """Return (pts, dts) for `count` access units: a steady 15 fps clock, or one broken the way `kind` says."""
    step = 66_666
    if kind == "times backwards":
        return [(start_us - index * step * rng.choice([1, 1000]),) * 2 for index in range(count)]
    if kind == "absurd times":
        extremes = [-(2**63), 2**63 - 1, 0, -1, 2**62, start_us]
        return [(rng.choice(extremes), rng.choice(extremes)) for _ in range(count)]
    if kind == "decode after presentation":
        return [(start_us + index * step, start_us + index * step + rng.randrange(10**9)) for index in range(count)]
    return [(start_us + index * step,) * 2 for index in range(count)]


def _control_message(rng: Random) -> str:
    """Return a hostile control message: deep nesting, random JSON or text, one over the 64 KiB limit."""
    return rng.choice([
        "[" * rng.choice([1000, 50_000]),
        '{"a":' * 10_000,
        _dumps(random_json_value(rng)),
        _dumps({"type": random_text(rng, rng.randrange(1, 300))}),
        _sendable(random_text(rng, rng.randrange(1, 2000))),
        _dumps({"type": "ping", "pad": "x" * rng.choice([10, 70_000])}),
    ])


def mutated_stream(rng: Random, video: EncodedVideo, start_us: int) -> Mutation:
    """Return a few access units of `video` broken in one or two random ways, as messages to send."""
    window = _window(rng, video)
    units = [unit[3] for unit in window]
    kinds = rng.sample(UNIT_MUTATIONS, rng.choice([1, 1, 2]))
    for kind in kinds:
        units = _mutate_units(rng, kind, units) or [b"\x00\x00\x00\x01"]
    clock = rng.choice(TIME_MUTATIONS) if rng.random() < 0.15 else "steady"
    if clock != "steady":
        kinds.append(clock)
    times = _times(rng, clock, len(units), start_us)
    messages: list[bytes | str] = [protocol.media(pts, dts, unit) for (pts, dts), unit in zip(times, units)]
    if rng.random() < 0.1:
        kinds.append("short messages")
        messages.insert(rng.randrange(len(messages) + 1), rng.choice([b"", b"\x00" * 16, rng.randbytes(15)]))
    if rng.random() < 0.1:
        kinds.append("control messages")
        messages.insert(rng.randrange(len(messages) + 1), _control_message(rng))
    return Mutation(" + ".join(kinds), messages)


# A real `vigint serve`


def rss_bytes(pid: int) -> int:
    """Return a process's resident set size in bytes (VmRSS from /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)[1]) * 1024


@dataclass
class Cli:
    """The real admin CLI against one database, each command in its own process."""

    db: Path
    cwd: Path
    env: dict[str, str]

    async def run(self, *args: str, timeout: float = 30) -> tuple[int, str, str]:
        """Run `vigint ARGS --db DB`; return its exit code, stdout and stderr."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "vigint", *args, "--db", str(self.db), cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), timeout)
        return process.returncode, out.decode(), err.decode()

    async def json(self, *args: str):
        """Run a listing command with --json; return its document (fails on a non-zero exit)."""
        code, out, err = await self.run(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    async def create_client(self, name: str) -> tuple[int, int, str]:
        """Create a client; return (client id, key id, API key)."""
        created = await self.json("client", "create", "--name", name, "--email", f"{name.lower()}@example.test")
        return created["client_id"], created["key_id"], created["api_key"]

    async def usage(self, client_id: int) -> dict[str, float]:
        """Return a client's usage totals over all its keys: stream_seconds, frames_decoded, bytes_received."""
        rows = await self.json("usage", "--client-id", str(client_id))
        return {name: sum(row[name] for row in rows) for name in ("stream_seconds", "frames_decoded", "bytes_received")}

    async def live_cameras(self) -> dict[int, list[str]]:
        """Return the live cameras of every client, as `client list` shows them."""
        return {client["id"]: client["live_cameras"] for client in await self.json("client", "list")}


class ServeProcess:
    """`vigint serve` in a subprocess on 127.0.0.1, port 0, its stdout and stderr in `folder/serve.log`.

    `nofile` starts it under `ulimit -n NOFILE`, as a systemd unit without LimitNOFILE would.
    """

    BANNER = re.compile(r"listening\s+wss?://127\.0\.0\.1:(\d+)/v1/stream")

    def __init__(self, folder: Path, env: dict[str, str] | None = None, nofile: int | None = None,
                 tls: tuple[Path, Path] | None = None, db: Path | None = None, port: int = 0):
        """`tls` is a (certificate, key) pair to serve wss:// with; `db` a database shared with other nodes
        (default: one of its own in `folder`); `port` a fixed port, for a server restarted where agents expect it."""
        self.folder = folder
        self.tls = tls
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = db or folder / "vigint.db"
        self.log_path = folder / "serve.log"
        self.env = {**os.environ, "COLUMNS": "200", "VIGINT_STORAGE_DATA_DIR": str(folder / "data"), **(env or {})}
        self.nofile = nofile
        self.process: asyncio.subprocess.Process | None = None
        self.port = port
        # The admin CLI keeps the default flush interval: `client list` then trusts the server's snapshot
        # for 15 s, so a live camera always shows as live.
        cli_env = {name: value for name, value in self.env.items() if name != "VIGINT_SERVER_USAGE_FLUSH_SECONDS"}
        self.cli = Cli(self.db, folder, cli_env)

    async def start(self, timeout: float = 30) -> "ServeProcess":
        """Start the server and wait for its banner."""
        command = [sys.executable, "-m", "vigint", "serve", "--port", str(self.port), "--web-port", "0",
                   "--db", str(self.db)]
        if self.tls:
            command += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        if self.nofile is not None:
            command = ["bash", "-c", f'ulimit -n {self.nofile} && exec "$@"', "serve", *command]
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(*command, cwd=self.folder, env=self.env,
                                                                stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not (found := self.BANNER.search(self.log())):
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"vigint serve did not start:\n{self.log()}")
            await asyncio.sleep(0.05)
        self.port = int(found[1])
        return self

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}{protocol.PATH}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        """Return the server's resident memory in bytes."""
        return rss_bytes(self.pid)

    def log(self) -> str:
        """Return everything the server wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM the server; return its exit code, or None (after killing it) if it outlived `timeout`."""
        if self.process.returncode is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            return None


# Connections


async def connect_from(url: str, source: str = "127.0.0.1", **options) -> ClientConnection:
    """Open a WebSocket connection from the loopback address `source` (each test attacks from its own, so
    that one test's failed hellos never block another's)."""
    return await connect(url, local_addr=(source, 0), max_size=None, open_timeout=10, **options)


async def close_code(connection: ClientConnection, timeout: float = 5) -> tuple[int | None, str]:
    """Wait until the server closes `connection` (reading and dropping what it sends); return the code and
    reason it closed with, or (None, "") if it kept the connection open for `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await connection.recv()
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "no close frame")
    except TimeoutError:
        return None, ""


async def first_answer(url: str, message: str | bytes, source: str = "127.0.0.1",
                       timeout: float = 5) -> tuple[int | None, str]:
    """Send one first message on a new connection; return how the server closed it ((None, "welcome") if
    it said welcome)."""
    connection = await connect_from(url, source)
    try:
        await connection.send(message)
        reply = await asyncio.wait_for(connection.recv(), timeout)
        return None, "welcome" if json.loads(reply).get("type") == "welcome" else reply
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "no close frame")
    finally:
        await connection.close()


async def welcomed(url: str, key: str, camera: str, source: str = "127.0.0.1",
                   within: float = 1.0) -> tuple[float, tuple[int | None, str]]:
    """Say hello as `camera` again and again while the server answers 4403 (every 50 ms, for up to `within`
    seconds); return the seconds it took and the last answer ((None, "welcome") once welcomed)."""
    began = time.monotonic()
    while True:
        answer = await first_answer(url, hello(key, camera), source)
        if answer[0] != 4403 or time.monotonic() - began > within:
            return time.monotonic() - began, answer
        await asyncio.sleep(0.05)


def backlog(port: int) -> tuple[int, int]:
    """Return (connections waiting in the accept queue, handshakes not finished) of the server listening on
    127.0.0.1:`port`, from /proc/net/tcp: (0, 0) once the server has taken in every connection."""
    queued = handshaking = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state = int(fields[1].split(":")[1], 16), fields[3]
        if local_port != port:
            continue
        if state == "0A":  # LISTEN: rx_queue is the accept queue
            queued += int(fields[4].split(":")[1], 16)
        elif state == "03":  # SYN_RECV
            handshaking += 1
    return queued, handshaking


async def open_idle_sockets(port: int, sources: list[str], batch: int = 50, timeout: float = 5) -> list[socket.socket]:
    """Open one TCP connection to 127.0.0.1:`port` from each source address and return the sockets, which
    never send anything.

    Connections are opened `batch` at a time, each batch once the server has taken in the one before (or
    `timeout` has passed in all): a burst overflowing the listen backlog would otherwise leave connections
    the client thinks open but the server never saw (SYN cookies), and the server would not be exhausted.
    """
    opened, deadline = [], time.monotonic() + timeout
    for first in range(0, len(sources), batch):
        for source in sources[first:first + batch]:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.bind((source, 0))
            sock.connect_ex(("127.0.0.1", port))
            opened.append(sock)
        while backlog(port) != (0, 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    return opened


class HealthyStream:
    """A well-behaved camera: loops `video` at real time with fresh timestamps, in its own thread and event
    loop, pinging the server every 100 ms. `stop()` closes it; then `frames_sent`, `pings` (seconds) and
    `error` (why it ended early, if it did) tell how it went."""

    def __init__(self, url: str, key: str, camera: str, video: EncodedVideo, source: str = "127.0.0.1"):
        self.url, self.key, self.camera, self.video, self.source = url, key, camera, video, source
        self.frames_sent = 0
        self.pings: list[float] = []
        self.error: BaseException | None = None
        self.welcome: dict | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"healthy-{camera}", daemon=True)

    def start(self, timeout: float = 10) -> "HealthyStream":
        """Connect and start streaming; return once welcomed (raises if not)."""
        self._thread.start()
        if not self._started.wait(timeout) or self.welcome is None:
            raise AssertionError(f"the healthy stream was not welcomed: {self.error!r}")
        return self

    def stop(self, timeout: float = 10) -> None:
        """Close the stream normally and wait for its thread."""
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    @property
    def max_ping(self) -> float:
        return max(self.pings, default=0.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._stream())
        except BaseException as error:  # noqa: BLE001 - reported by the test that checks this stream
            self.error = error
        finally:
            self._started.set()

    async def _stream(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        connection = await connect_from(self.url, self.source)
        await connection.send(hello(self.key, self.camera))
        self.welcome = json.loads(await asyncio.wait_for(connection.recv(), 10))
        self._started.set()
        pinger = asyncio.create_task(self._ping(connection))
        try:
            await self._send(connection)
        finally:
            pinger.cancel()
            await connection.close()

    async def _send(self, connection: ClientConnection) -> None:
        """Send access unit after access unit at the video's frame rate until stopped; each pass over the
        video gets timestamps following the previous one's, as a camera's clock would."""
        began, start_us = time.monotonic(), int(time.time() * 1_000_000)
        pass_us = self.video.frames * 1_000_000 // self.video.fps
        while not self._stop.is_set():
            passes, index = divmod(self.frames_sent, self.video.frames)
            pts, dts, _, data = self.video.units[index]
            due = began + self.frames_sent / self.video.fps - time.monotonic()
            if due > 0 and await wait_for_event(self._stop, due):
                return
            offset = start_us + passes * pass_us
            await connection.send(protocol.media(offset + pts, offset + dts, data))
            self.frames_sent += 1

    async def _ping(self, connection: ClientConnection) -> None:
        while True:
            began = time.monotonic()
            await (await connection.ping())
            self.pings.append(time.monotonic() - began)
            await asyncio.sleep(0.1)


def hellos(rng: Random, count: int) -> Iterator[str | bytes]:
    """Yield `count` generated hostile first messages, each with a well-formed key nobody holds."""
    key = keys.generate()
    for _ in range(count):
        yield random_hello(rng, key)


# Fuzz campaigns: many connections at once, each ending with a close code

HELLO_CODES = frozenset({1009, 4400, 4401})  # what a hostile hello may get (4429 too, with a low failure limit)
STREAM_CODES = frozenset({1000, 1001, 1009, 1011, 4400, 4403, 4415})  # what a mutated stream may end with


async def send_first_message(url: str, message: str | bytes) -> int | None:
    """Send one hostile first message; return the close code (None: no close frame at all)."""
    try:
        async with connect(url, max_size=None, open_timeout=30) as connection:
            await connection.send(message)
            await asyncio.wait_for(connection.recv(), 30)
            return -1  # welcomed: a generated hello must never be
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def send_mutation(url: str, key: str, camera: str, mutation: Mutation, linger: float = 0.3) -> int | None:
    """Stream one mutated stream on a fresh connection, give the server `linger` seconds to close it, then
    close it; return how it ended: the server's close code, or 1000 if we closed it (None: no close frame)."""
    async with connect(url, max_size=None, open_timeout=30) as connection:
        try:
            await connection.send(hello(key, camera))
            json.loads(await asyncio.wait_for(connection.recv(), 30))
            for message in mutation.messages:
                await connection.send(message)
        except ConnectionClosed:
            pass
        await close_code(connection, linger)  # a decoder's verdict comes a batch (0.2 s) after the media
        await connection.close()
        return connection.protocol.close_rcvd.code if connection.protocol.close_rcvd else None


def fuzz_videos() -> list[EncodedVideo]:
    """The real streams mutations start from: libx264 baseline (ultrafast) and high profile with B-frames."""
    from footage import make_h264

    return [make_h264(2), make_h264(2, width=256, height=144, bframes=2, preset="fast")]


async def run_all(jobs: list[Callable], concurrency: int) -> list:
    """Await every job (a coroutine function), at most `concurrency` at a time; return their results in order."""
    slots = asyncio.Semaphore(concurrency)

    async def limited(job):
        async with slots:
            return await job()

    return await asyncio.gather(*(limited(job) for job in jobs))
