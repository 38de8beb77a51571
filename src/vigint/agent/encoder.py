"""H.264 encoding with PyAV's libx264, for sources that are not H.264 and for the test pattern."""

from fractions import Fraction

import av
from av.video.reformatter import VideoReformatter

from vigint.media import MICROSECOND, Packet


class H264Encoder:
    """Encode frames to Annex-B H.264 with SPS/PPS before every IDR; times in µs in and out.

    Defaults suit a camera uplink: ultrafast and zerolatency (cheap on a small box, no frame delay),
    no B-frames, and a keyframe every 2 s at most so clips and recovery after a drop stay short.
    """

    def __init__(self, width: int, height: int, fps: float, bitrate: int, *, gop: int | None = None,
                 bframes: int = 0, preset: str = "ultrafast"):
        self.width = width
        self.height = height
        self._codec = av.CodecContext.create("libx264", "w")
        self._codec.width = width
        self._codec.height = height
        self._codec.pix_fmt = "yuv420p"
        self._codec.time_base = MICROSECOND
        self._codec.framerate = Fraction(fps).limit_denominator(1001)
        self._codec.bit_rate = bitrate
        gop = gop or max(1, int(2 * fps))
        self._codec.options = {"preset": preset, "g": str(gop), "keyint_min": str(gop), "bf": str(bframes),
                               "sc_threshold": "0", **({} if bframes else {"tune": "zerolatency"})}
        self._scaler = VideoReformatter()

    def encode(self, frame: av.VideoFrame, pts_us: int) -> list[Packet]:
        """Encode one frame shown at `pts_us`; return the access units that came out (maybe none)."""
        if (frame.width, frame.height, frame.format.name) != (self.width, self.height, "yuv420p"):
            frame = self._scaler.reformat(frame, width=self.width, height=self.height, format="yuv420p")
        frame.pts = pts_us
        frame.time_base = MICROSECOND
        return self._packets(self._codec.encode(frame))

    def flush(self) -> list[Packet]:
        """Return the access units the encoder still holds."""
        return self._packets(self._codec.encode(None))

    @staticmethod
    def _packets(packets) -> list[Packet]:
        return [Packet(p.pts, p.dts, p.is_keyframe, bytes(p)) for p in packets]


def scaled_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Return (width, height) scaled down to `max_width` at most, keeping the aspect, both even."""
    if width > max_width:
        height = height * max_width / width
        width = max_width
    return int(width) // 2 * 2, max(2, int(round(height)) // 2 * 2)
