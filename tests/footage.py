"""Real H.264 for tests (the built-in test pattern, cached), and a minimal protocol-v1 sender."""

import asyncio
import json
import time
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from helpers import hello
from websockets.asyncio.client import ClientConnection, connect

from vigint import protocol
from vigint.agent import testpattern
from vigint.agent.encoder import H264Encoder
from vigint.agent.testpattern import EncodedVideo
from vigint.incidents import clips
from vigint.media import Packet

make_h264 = lru_cache(maxsize=None)(testpattern.encode)


async def open_stream(url: str, key: str, camera: str = "front-door", **extra) -> tuple[ClientConnection, dict]:
    """Connect, say hello, return the connection and the welcome (raises ConnectionClosed if refused)."""
    connection = await connect(url, max_size=None)
    await connection.send(hello(key, camera, **extra))
    return connection, json.loads(await connection.recv())


async def send_video(connection: ClientConnection, video: EncodedVideo, start_us: int | None = None,
                     speed: float | None = None) -> int:
    """Send every access unit, as fast as the link allows or at `speed` × real time; return the bytes sent."""
    start_us = int(time.time() * 1_000_000) if start_us is None else start_us
    began = time.monotonic()
    sent = 0
    for pts, dts, _, data in video.units:
        if speed:
            await asyncio.sleep(max(0.0, began + dts / 1e6 / speed - time.monotonic()))
        message = protocol.media(start_us + pts, start_us + dts, data)
        await connection.send(message)
        sent += len(message)
    return sent


@lru_cache(maxsize=None)
def make_scene(seconds: float, moving: tuple[float, float] | None = None, brightness_jump_at: float | None = None,
               fps: int = 15, width: int = 320, height: int = 180) -> EncodedVideo:
    """A camera's view: a textured wall with sensor noise; a square crossing it during `moving` (start, end
    seconds); the light level jumping at `brightness_jump_at`. One keyframe a second."""
    rng = np.random.default_rng(11)
    wall = rng.integers(50, 150, (height, width)).astype(np.int16)
    encoder = H264Encoder(width, height, fps, 400_000, gop=fps)
    packets = []
    for index in range(int(seconds * fps)):
        at = index / fps
        picture = wall + rng.integers(-5, 6, wall.shape)
        if brightness_jump_at is not None and at >= brightness_jump_at:
            picture += 50
        if moving and moving[0] <= at < moving[1]:
            x = int((at - moving[0]) / (moving[1] - moving[0]) * (width - 50))
            picture[60:110, x:x + 50] = 235
        yuv = np.full((height * 3 // 2, width), 128, np.uint8)
        yuv[:height] = np.clip(picture, 0, 255)
        packets += encoder.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p"), index * 1_000_000 // fps)
    packets += encoder.flush()
    return EncodedVideo(width, height, fps, fps, tuple((p.pts, p.dts, p.keyframe, p.data) for p in packets))


def write_video_file(path: Path, seconds: float, codec: str = "libx264", *, bframes: int = 0, fps: int = 15,
                     width: int = 320, height: int = 180, gop: int | None = None, bitrate: int | None = None,
                     busy: bool = False) -> int:
    """Write the test pattern to a real file with PyAV (H.264 in MP4, MPEG-4, MJPEG, …); return its frame count.

    H.264 gets a keyframe every `gop` frames (2 s by default); `bitrate` (bit/s) and a `busy` pattern make
    a file that fills a link fast.
    """
    frame_count = int(seconds * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if bitrate:
            stream.bit_rate = bitrate
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "bf": str(bframes), "g": str(gop or 2 * fps)}
        for index, frame in zip(range(frame_count), testpattern.frames(width, height, busy)):
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


def _texture(rng: np.random.Generator, height: int, width: int, grain: int) -> np.ndarray:
    """A smooth, blotchy picture (a shop's shelves and floor at a distance), values 30-200."""
    small = rng.integers(30, 200, (height // grain + 2, width // grain + 2)).astype(np.float32)
    big = np.kron(small, np.ones((grain, grain), np.float32))
    k = grain // 2
    summed = np.cumsum(np.cumsum(np.pad(big, k, mode="edge"), 0), 1)
    smooth = (summed[2 * k:, 2 * k:] - summed[:-2 * k, 2 * k:] - summed[2 * k:, :-2 * k] + summed[:-2 * k, :-2 * k])
    return (smooth / (4 * k * k))[:height, :width]


@lru_cache(maxsize=None)
def make_footage(seconds: float, gop_seconds: float = 2, people: tuple[tuple[float, float], ...] = (),
                 noise: float = 2.0, flicker: float = 0.0, bframes: int = 0, fps: int = 15, width: int = 480,
                 height: int = 270, bitrate: int | None = None, crf: int = 24, shadow: float = 0.0) -> EncodedVideo:
    """Real-looking camera footage: a still, textured room with sensor noise (σ `noise` gray levels), encoded
    as a VBR camera does (x264 veryfast, constant quality capped at 1.5 Mbit/s, a keyframe every
    `gop_seconds`); a person-sized figure crossing it during each (start, end) of `people`; with `flicker`,
    the light dips by that fraction on a random third of the frames (a failing tube, an IR lamp). With
    `bitrate` (bit/s), average-bitrate encoding instead, the way a CBR-like camera spends its budget. A higher
`crf` quantises harder, as a camera does at night: with strong grain (σ 6) at 27, its still frames cost a
steady few hundred bytes that a person walking in raises by only a half to twice. With `shadow`, the edge of a
shadow 60 gray levels dark creeps across the room at that many pixels a second (the sun moving): no motion."""
    rng = np.random.default_rng(5)
    room = _texture(rng, height, width, 12)
    figure = _texture(np.random.default_rng(9), height // 2, width // 10, 6) * 0.4 + 15
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base, codec.framerate = Fraction(1, 1_000_000), fps
    gop = str(int(gop_seconds * fps))
    rate = {"b": str(bitrate)} if bitrate else {"crf": str(crf), "maxrate": "1500000", "bufsize": "3000000"}
    codec.options = {"preset": "veryfast", "g": gop, "keyint_min": gop, "sc_threshold": "0", "bf": str(bframes), **rate}
    units = []
    for index in range(int(seconds * fps)):
        at = index / fps
        picture = room * (1 - flicker * (rng.random() < 1 / 3)) + rng.normal(0, noise, room.shape)
        picture[:, :int(width / 8 + shadow * at) if shadow else 0] -= 60
        for start, end in people:
            if start <= at < end:
                x = int((at - start) / (end - start) * (width - figure.shape[1]))
                picture[height // 3:height // 3 + figure.shape[0], x:x + figure.shape[1]] = figure
        frame = av.VideoFrame.from_ndarray(np.clip(picture, 0, 255).astype(np.uint8), format="gray")
        frame = frame.reformat(format="yuv420p")
        frame.pts = index * 1_000_000 // fps
        units += codec.encode(frame)
    units += codec.encode(None)
    return EncodedVideo(width, height, fps, int(gop), tuple((p.pts, p.dts, p.is_keyframe, bytes(p)) for p in units))


def write_clip(packets: list[Packet], path: Path, width: int, height: int) -> None:
    """Write `packets` (from a keyframe on) as the server leaves a finished clip: grown, then made faststart."""
    clip = clips.GrowingClip(path, packets[0], width, height)
    clip.add(packets)
    clip.close()
    clips.finish(path, path, clip.ticks(packets[-1].dts))


@lru_cache(maxsize=None)
def make_jpeg(width: int = 64, height: int = 36) -> bytes:
    """A real JPEG picture (the test pattern's first frame, PyAV's MJPEG encoder), as an incident's still."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = width, height, "yuvj420p", Fraction(1, 25)
    frame = next(iter(testpattern.frames(width, height, False))).reformat(format="yuvj420p")
    [packet] = codec.encode(frame) + codec.encode(None)
    return bytes(packet)
