"""Real H.264 for tests (the built-in test pattern, cached), and a minimal protocol-v1 sender."""

import json
import time
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av

from websockets.asyncio.client import ClientConnection, connect

from vigint import protocol, testpattern
from vigint.testpattern import EncodedVideo

make_h264 = lru_cache(maxsize=None)(testpattern.encode)


async def open_stream(url: str, key: str, camera: str = "front-door", **extra) -> tuple[ClientConnection, dict]:
    """Connect, say hello, return the connection and the welcome (raises ConnectionClosed if refused)."""
    connection = await connect(url, max_size=None)
    await connection.send(json.dumps({"type": "hello", "version": 1, "key": key, "camera": camera,
                                      "codec": "h264", **extra}))
    return connection, json.loads(await connection.recv())


async def send_video(connection: ClientConnection, video: EncodedVideo, start_us: int | None = None) -> int:
    """Send every access unit as fast as the link allows; return the bytes sent."""
    start_us = int(time.time() * 1_000_000) if start_us is None else start_us
    sent = 0
    for pts, dts, _, data in video.units:
        message = protocol.media(start_us + pts, start_us + dts, data)
        await connection.send(message)
        sent += len(message)
    return sent


def write_video_file(path: Path, seconds: float, codec: str = "libx264", *, bframes: int = 0, fps: int = 15,
                     width: int = 320, height: int = 180) -> int:
    """Write the test pattern to a real file with PyAV (H.264 in MP4, MPEG-4, MJPEG, …); return its frame count."""
    frame_count = int(seconds * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "bf": str(bframes), "g": str(2 * fps)}
        for index, frame in zip(range(frame_count), testpattern.frames(width, height)):
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return frame_count


def vcl_payloads_avcc(data: bytes) -> list[bytes]:
    """The slice NAL units of a length-prefixed (MP4) H.264 access unit."""
    units, position = [], 0
    while position + 4 <= len(data):
        size = int.from_bytes(data[position:position + 4], "big")
        units.append(data[position + 4: position + 4 + size])
        position += 4 + size
    return [unit for unit in units if unit and unit[0] & 0x1F in (1, 5)]


def vcl_payloads_annexb(data: bytes) -> list[bytes]:
    """The slice NAL units of an Annex-B H.264 access unit."""
    units = [unit.rstrip(b"\x00") for unit in data.split(b"\x00\x00\x01")]
    return [unit for unit in units if unit and unit[0] & 0x1F in (1, 5)]
