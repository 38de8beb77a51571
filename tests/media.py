"""Real H.264 made with PyAV's libx264 at test time, and a minimal protocol-v1 sender for tests."""

import json
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import av
import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from vigint import protocol


@dataclass(frozen=True)
class EncodedVideo:
    """Access units in decode order, with times in µs relative to the first frame."""

    width: int
    height: int
    fps: int
    gop: int
    units: tuple[tuple[int, int, bool, bytes], ...]  # (pts, dts, keyframe, Annex-B access unit)

    @property
    def frames(self) -> int:
        return len(self.units)


@lru_cache(maxsize=None)
def make_h264(seconds: float, width: int = 320, height: int = 180, fps: int = 15, gop: int = 30,
              bframes: int = 0, bitrate: int = 500_000) -> EncodedVideo:
    """Encode a moving square over a textured background (cached: the same video for every test)."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, fps), Fraction(fps, 1)
    encoder.bit_rate = bitrate
    encoder.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop), "bf": str(bframes),
                       "sc_threshold": "0", **({} if bframes else {"tune": "zerolatency"})}
    rng = np.random.default_rng(7)
    background = rng.integers(60, 120, (height * 3 // 2, width), dtype=np.uint8)
    background[height:] = 128  # neutral chroma
    units = []
    step = 1_000_000 // fps
    for index in range(int(seconds * fps)):
        picture = background.copy()
        x = (index * 4) % max(1, width - 40)
        picture[height // 3: height // 3 + 40, x: x + 40] = 235
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = index
        units += _packets(encoder.encode(frame), step)
    units += _packets(encoder.encode(None), step)
    # libx264 gives DTS that may be negative with B-frames; shift so both clocks start at zero or later.
    offset = -min(min(dts for _, dts, _, _ in units), 0)
    shifted = tuple((pts + offset, dts + offset, key, data) for pts, dts, key, data in units)
    return EncodedVideo(width, height, fps, gop, shifted)


def _packets(packets, step: int) -> list[tuple[int, int, bool, bytes]]:
    return [(p.pts * step, p.dts * step, p.is_keyframe, bytes(p)) for p in packets]


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
