"""A built-in moving test pattern, encoded to H.264 with PyAV's libx264.

It lets a first run need no camera (`vigint agent --source test`), and gives the tests and benchmarks
real H.264 made at run time: a bright square crossing a textured background.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from vigint.agent.encoder import H264Encoder


@dataclass(frozen=True)
class EncodedVideo:
    """Access units in decode order, with times in µs from the first frame."""

    width: int
    height: int
    fps: int
    gop: int
    units: tuple[tuple[int, int, bool, bytes], ...]  # (pts, dts, keyframe, Annex-B access unit)

    @property
    def frames(self) -> int:
        return len(self.units)


def frames(width: int, height: int, busy: bool = False) -> Iterator[av.VideoFrame]:
    """Yield the pattern's frames forever: a square crossing a textured background.

    `busy` pans the background and adds sensor-like noise, so an encoder spends its whole bitrate as
    on a real camera; otherwise only the square moves.
    """
    rng = np.random.default_rng(7)
    background = rng.integers(60, 120, (height * 3 // 2, width), dtype=np.uint8)
    background[height:] = 128  # neutral chroma
    size = max(8, height // 5)
    index = 0
    while True:
        if busy:
            picture = np.roll(background, index * 3, axis=1)
            picture[:height] += rng.integers(0, 12, (height, width), dtype=np.uint8)
        else:
            picture = background.copy()
        x = (index * max(1, width // 80)) % max(1, width - size)
        picture[height // 3: height // 3 + size, x: x + size] = 235
        yield av.VideoFrame.from_ndarray(picture, format="yuv420p")
        index += 1


def encode(seconds: float, width: int = 320, height: int = 180, fps: int = 15, gop: int = 30,
           bframes: int = 0, bitrate: int = 500_000, busy: bool = False,
           preset: str = "ultrafast") -> EncodedVideo:
    """Encode `seconds` of the pattern at once (see `frames` for `busy`).

    `preset` "ultrafast" encodes fastest but leaves out CABAC and the deblocking filter, which make a
    camera's stream costlier to decode: benchmarks use a slower preset.
    """
    encoder = H264Encoder(width, height, fps, bitrate, gop=gop, bframes=bframes, preset=preset)
    step = 1_000_000 // fps
    packets = []
    for index, frame in zip(range(int(seconds * fps)), frames(width, height, busy)):
        packets += encoder.encode(frame, index * step)
    packets += encoder.flush()
    # With B-frames libx264's first decode times are negative: shift both clocks to start at zero.
    offset = -min(min(p.dts for p in packets), 0)
    return EncodedVideo(width, height, fps, gop,
                        tuple((p.pts + offset, p.dts + offset, p.keyframe, p.data) for p in packets))
