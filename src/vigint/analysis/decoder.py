"""Per-stream H.264 decoding with PyAV, run in worker threads (decode, parse and scale release the GIL).

One `StreamDecoder` per stream: a single-threaded FFmpeg decoder (6 MiB at 720p after a full decode,
measured 2026-12-07; a threaded one holds a picture context per thread, and streams run in parallel across
the worker pool instead) and one reusable scaler, since building a scaler per frame costs more than decoding
the frame. Only the frames analysis needs, at `analysis_fps`, are scaled to small gray pictures; nothing
full-size is kept. A stream that goes from full decoding to keyframe checks (idle, or following an incident)
gets a fresh codec: FFmpeg keeps the frames it once needed, where keyframe checks need 2.1 MiB.

An analysis decode, not a display decode: the deblocking filter is skipped (`skip_loop_filter`), 16% of a
720p decode. Its absence leaves block edges a gray level or two off, drifting a little over a GOP, far below
what the motion detector calls a change after the area scaling; the pictures people see (stills,
snapshots, the AI check's frames: incidents/stills.py) come from a decoder of their own with every filter on.
The scaler reads the luma plane only (gray output) and scales it in one area-averaging step to the motion
detector's picture, half the analysis size: each of its pixels the mean of 2×2 analysed ones, the light blur
that takes out pixel noise. FFmpeg's area scaler costs less than averaging in numpy, and it runs in the calling
thread: FFmpeg's own scaling threads cost more to wake than a picture this small takes (3% of the CPU of a
busy camera, measured with bench/ingest.py).
"""

from dataclasses import dataclass, field

import av
from av.video.reformatter import Interpolation, VideoReformatter

from vigint.media import MICROSECONDS, Frame, Packet


def analysis_size(width: int, height: int, box: int) -> tuple[int, int]:
    """Return the even size, at most `box` on its longer side, that a `width`×`height` picture is analysed at.

    Fitting the longer side (not always the width) keeps a 16×2160 picture from becoming 320×43200.
    """
    scale = box / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


@dataclass
class DecodeResult:
    """What one batch of packets produced."""

    frames: list[Frame] = field(default_factory=list)  # the sampled, scaled gray frames
    decoded: int = 0  # every frame the decoder produced, sampled or not
    errors: int = 0  # packets the decoder rejected
    size: tuple[int, int] | None = None  # the stream's full picture size, once a frame was decoded


class StreamDecoder:
    """Decode one stream's packets into sampled gray frames. Not thread-safe: one batch at a time."""

    def __init__(self, analysis_width: int, analysis_fps: float, max_pixels: int):
        """`max_pixels` is FFmpeg's own cap on a picture's size: a second guard behind the SPS check."""
        self._max_pixels = max_pixels
        self._codec = self._open()
        self._in_full = False  # frames were decoded in full since the codec was opened
        self._scaler = VideoReformatter()
        self._box = analysis_width // 2  # the motion detector's picture (see the module's docstring)
        self._interval = int(MICROSECONDS / analysis_fps)
        self._next_sample = None

    def _open(self) -> av.CodecContext:
        codec = av.CodecContext.create("h264", "r")
        codec.thread_count = 1
        codec.options = {"max_pixels": str(self._max_pixels), "skip_loop_filter": "all"}
        return codec

    @property
    def interval(self) -> int:
        """The stream time between two frames analysed (µs)."""
        return self._interval

    def decode(self, packets: list[Packet]) -> DecodeResult:
        """Decode `packets` in order; a packet the decoder rejects is counted and skipped."""
        self._in_full = self._in_full or bool(packets)
        return self._decode(packets)

    def _decode(self, packets: list[Packet]) -> DecodeResult:
        result = DecodeResult()
        for packet in packets:
            av_packet = av.Packet(packet.data)
            av_packet.pts = packet.pts
            av_packet.dts = packet.dts
            try:
                self._collect(self._codec.decode(av_packet), result)
            except av.FFmpegError:  # also a picture the scaler refuses (av.ArgumentError)
                result.errors += 1
        return result

    def _due(self, pts: int | None) -> bool:
        """Tell whether the frame at `pts` is the next to analyse, keeping a steady analysis_fps cadence.

        Sampling follows the stream's own clock, with a quarter-interval tolerance so that a camera whose
        timestamps jitter by a few µs is not sampled at a lower rate than asked.
        """
        if pts is None:
            return False
        if self._next_sample is not None and pts < self._next_sample - self._interval // 4:
            return False
        on_cadence = self._next_sample is not None and pts - self._next_sample < self._interval
        self._next_sample = (self._next_sample if on_cadence else pts) + self._interval
        return True

    def _collect(self, frames: list[av.VideoFrame], result: DecodeResult) -> None:
        for frame in frames:
            result.decoded += 1
            result.size = (frame.width, frame.height)
            if not self._due(frame.pts):
                continue
            width, height = analysis_size(frame.width, frame.height, self._box)
            gray = self._scaler.reformat(frame, width=width, height=height, format="gray",
                                         interpolation=Interpolation.AREA, threads=1)
            result.frames.append(Frame(frame.pts, gray.to_ndarray()))

    def flush(self) -> DecodeResult:
        """Drain the decoder at the end of a stream: the frames it still holds come out."""
        result = DecodeResult()
        try:
            self._collect(self._codec.decode(None), result)
        except av.FFmpegError:
            result.errors += 1
        return result

    def sample(self, keyframe: Packet) -> DecodeResult:
        """Decode one keyframe on its own and drain its frame out at once (an idle stream's check); the
        decoder then holds nothing, ready for the next check or a `reset` and replay. The first check after a
        full decode opens the codec afresh (see the module's docstring)."""
        if self._in_full:
            self._codec = self._open()
            self._in_full = False
        result = self._decode([keyframe])
        drained = self.flush()
        self._codec.flush_buffers()
        return DecodeResult(result.frames + drained.frames, result.decoded + drained.decoded,
                            result.errors + drained.errors, drained.size or result.size)

    def reset(self) -> None:
        """Forget the stream so far (frames held for reordering are dropped): the next packet is a keyframe
        from anywhere in the stream, earlier ones included, and its frames are all due for analysis."""
        self._codec.flush_buffers()
        self._next_sample = None
