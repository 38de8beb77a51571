"""A built-in moving test pattern, encoded to H.264 with PyAV's libx264.

It lets a first run need no camera (`vigint agent --source test`), and gives the tests and benchmarks
real H.264 made at run time: a bright square crossing a textured background.
"""

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np


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


def encode(seconds: float, width: int = 320, height: int = 180, fps: int = 15, gop: int = 30,
           bframes: int = 0, bitrate: int = 500_000, busy: bool = False, preset: str = "ultrafast") -> EncodedVideo:
    """Encode `seconds` of the test pattern; SPS/PPS come before every IDR (Annex-B, in-band headers).

    `busy` pans the background and adds sensor-like noise, so the encoder spends its whole bitrate
    as on a real camera (benchmarks); otherwise only the square moves. `preset` "ultrafast" encodes
    fastest but leaves out CABAC and the deblocking filter, which make a camera's stream costlier to
    decode: benchmarks use a slower preset.
    """
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, fps), Fraction(fps, 1)
    encoder.bit_rate = bitrate
    encoder.options = {"preset": preset, "g": str(gop), "keyint_min": str(gop), "bf": str(bframes),
                       "sc_threshold": "0", **({} if bframes else {"tune": "zerolatency"})}
    rng = np.random.default_rng(7)
    background = rng.integers(60, 120, (height * 3 // 2, width), dtype=np.uint8)
    background[height:] = 128  # neutral chroma
    size = max(8, height // 5)
    step = 1_000_000 // fps
    units = []
    for index in range(int(seconds * fps)):
        if busy:
            picture = np.roll(background, index * 3, axis=1)
            picture[:height] += rng.integers(0, 12, (height, width), dtype=np.uint8)
        else:
            picture = background.copy()
        x = (index * max(1, width // 80)) % max(1, width - size)
        picture[height // 3: height // 3 + size, x: x + size] = 235
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = index
        units += _units(encoder.encode(frame), step)
    units += _units(encoder.encode(None), step)
    # With B-frames libx264's first decode times are negative: shift both clocks to start at zero.
    offset = -min(min(dts for _, dts, _, _ in units), 0)
    return EncodedVideo(width, height, fps, gop,
                        tuple((pts + offset, dts + offset, key, data) for pts, dts, key, data in units))


def _units(packets, step: int) -> list[tuple[int, int, bool, bytes]]:
    return [(p.pts * step, p.dts * step, p.is_keyframe, bytes(p)) for p in packets]
