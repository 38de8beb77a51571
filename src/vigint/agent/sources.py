"""Camera sources, read with PyAV in a thread: RTSP, video files, V4L2 devices and the test pattern.

H.264 passes through untouched (only converted to Annex-B with SPS/PPS before each IDR); any other
codec is decoded and re-encoded with libx264. Timestamps are mapped from the source's clock onto wall
time, continuously across reopenings and loops, so the server sees one steady clock per camera.
"""

import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction

import av
from av.bitstream import BitStreamFilterContext

from vigint import h264
from vigint.agent import testpattern
from vigint.agent.encoder import H264Encoder, scaled_size
from vigint.agent.settings import TEST_SOURCE, AgentSettings, Camera, redact
from vigint.errors import VigintError
from vigint.media import Packet

log = logging.getLogger(__name__)

OPEN_TIMEOUT_SECONDS = 10.0
TEST_PATTERN_SIZE = (640, 360)
TEST_PATTERN_FPS = 15
FALLBACK_FPS = 15.0  # a source that does not say its rate (some RTSP cameras)
# A camera is trusted, but a broken one must not stall its reader: past this the access unit is an error
# (the server refuses more than its max_nal_units, 256 by default, anyway).
MAX_NAL_UNITS = 4096


class SourceError(VigintError):
    """A source could not be opened or stopped delivering video; the agent reopens it later."""


class SourceFinished(Exception):
    """A video file played to its end and is not looped."""


class WallClock:
    """Maps a source's timestamps (µs from any origin) onto wall-clock µs since the Unix epoch.

    `start` at each (re)opening anchors the source's first timestamp at now, or just after the last
    mapped time if that is later, so the mapped clock never goes back across reopenings and loops.
    """

    def __init__(self):
        self._offset = 0
        self._last: int | None = None

    def start(self, first_us: int) -> None:
        now = time.time_ns() // 1000
        self._offset = max(now, (self._last or 0) + 1) - first_us

    def map(self, timestamp_us: int) -> int:
        mapped = timestamp_us + self._offset
        self._last = mapped if self._last is None else max(self._last, mapped)
        return mapped


class SourceReader:
    """Reads one camera in a thread and hands each access unit to `emit` (called from that thread)."""

    def __init__(self, camera: Camera, settings: AgentSettings, emit: Callable[[Packet], None]):
        self.camera = camera
        self._settings = settings
        self._emit = emit
        self._clock = WallClock()
        self.stopping = threading.Event()
        live = "://" in camera.source or camera.source.startswith("/dev/")
        self.paced = camera.source == TEST_SOURCE or not live

    def read(self) -> None:
        """Read until the source ends (SourceFinished), fails (SourceError) or `stopping` is set."""
        if self.camera.source == TEST_SOURCE:
            return self._test_pattern()
        while not self.stopping.is_set():
            self._read_once()
            if not self._settings.loop or not self.paced:
                raise SourceFinished() if self.paced else SourceError("the stream ended")

    def _open(self) -> av.container.InputContainer:
        source = self.camera.source
        options = {}
        kind = None
        if source.startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": "tcp"}  # UDP loses packets through NAT and busy Wi-Fi
        elif source.startswith("/dev/"):
            kind = "v4l2"
        try:
            return av.open(source, format=kind, options=options,
                           timeout=(OPEN_TIMEOUT_SECONDS, self._settings.stall_seconds))
        except (av.FFmpegError, OSError) as error:
            raise SourceError(f"cannot open {redact(source)}: {_reason(error)}") from None

    def _read_once(self) -> None:
        with self._open() as container:
            if not container.streams.video:
                raise SourceError(f"{redact(self.camera.source)} has no video")
            stream = container.streams.video[0]
            try:
                if stream.codec_context.name == "h264":
                    self._pass_through(container, stream)
                else:
                    self._transcode(container, stream)
            except av.FFmpegError as error:
                raise SourceError(f"reading {redact(self.camera.source)} failed: {_reason(error)}") from None

    def _pass_through(self, container, stream) -> None:
        to_annexb = BitStreamFilterContext("h264_mp4toannexb", stream)
        extradata = stream.codec_context.extradata or b""
        # Annex-B extradata (RTSP's sprop-parameter-sets) is what an IDR without in-band SPS/PPS lacks.
        parameter_sets = extradata if extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")) else b""
        started = False
        for packet in container.demux(stream):
            for unit in to_annexb.filter(packet if packet.size else None):
                data = bytes(unit)
                types = h264.nal_types(data, MAX_NAL_UNITS)
                if h264.IDR in types and h264.SPS not in types:
                    data = parameter_sets + data
                    types = h264.nal_types(data, MAX_NAL_UNITS)
                pts = _micro(unit.pts, stream.time_base)
                dts = _micro(unit.dts, stream.time_base)
                if not started:
                    self._clock.start(dts if dts is not None else pts or 0)
                    started = True
                self._deliver(Packet(*self._times(pts, dts), h264.is_keyframe(types), data))
            if self.stopping.is_set():
                return

    def _transcode(self, container, stream) -> None:
        rate = float(stream.average_rate or stream.guessed_rate or FALLBACK_FPS)
        encoder = None
        started = False
        for packet in container.demux(stream):
            for frame in packet.decode():
                if encoder is None:
                    width, height = scaled_size(frame.width, frame.height, self._settings.max_width)
                    encoder = H264Encoder(width, height, rate, self._settings.bitrate)
                pts = _micro(frame.pts, stream.time_base)
                if not started:
                    self._clock.start(pts or 0)
                    started = True
                for unit in encoder.encode(frame, self._times(pts, pts)[0]):
                    self._deliver(unit)
            if self.stopping.is_set():
                return
        for unit in encoder.flush() if encoder else []:
            self._deliver(unit)

    def _test_pattern(self) -> None:
        width, height = TEST_PATTERN_SIZE
        encoder = H264Encoder(width, height, TEST_PATTERN_FPS, min(self._settings.bitrate, 1_000_000))
        self._clock.start(0)
        step = 1_000_000 // TEST_PATTERN_FPS
        for index, frame in enumerate(testpattern.frames(width, height)):
            if self.stopping.is_set():
                return
            for unit in encoder.encode(frame, self._clock.map(index * step)):
                self._deliver(unit)

    def _times(self, pts: int | None, dts: int | None) -> tuple[int, int]:
        if pts is None and dts is None:
            now = time.time_ns() // 1000
            return now, now
        pts = dts if pts is None else pts
        dts = pts if dts is None else dts
        return self._clock.map(pts), self._clock.map(dts)

    def _deliver(self, packet: Packet) -> None:
        if self.paced:
            # Files and the test pattern play at real time, like a camera.
            self.stopping.wait(max(0.0, packet.dts / 1e6 - time.time()))
        self._emit(packet)


def _micro(timestamp: int | None, time_base: Fraction) -> int | None:
    return None if timestamp is None else int(timestamp * time_base * 1_000_000)


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)
