"""A camera's live view as fragmented MP4: its H.264 packets as received, remuxed (never decoded) into
fragments of one frame each, which a browser's Media Source Extensions append as they come.

FFmpeg's mp4 muxer writes the index up front empty (`empty_moov`), every fragment addressed from its own
start (`default_base_moof`, what Chromium, Firefox and Safari play), and a fragment per packet
(`frag_every_frame`): a frame's fragment is written when the next packet comes, which gives it its duration,
so the view is one frame behind what the server received (67 ms at 15 frame/s). `flush_packets` hands each
fragment over whole as soon as it is written. Measured with PyAV 18.1 / FFmpeg 8.1: the init segment comes
out of `start_encoding`, then one moof+mdat per muxed packet but the first.
"""

from dataclasses import dataclass

import av

from vigint import h264
from vigint.incidents.clips import MP4_TIME_BASE, mp4_packet, mp4_stream
from vigint.media import MICROSECONDS, Packet

LIVE_OPTIONS = {"movflags": "frag_every_frame+empty_moov+default_base_moof", "flush_packets": "1"}


@dataclass(frozen=True)
class Fragment:
    """One frame's moof+mdat; `keyframe`: a player may start at it."""

    keyframe: bool
    data: bytes


def sps_of(keyframe: bytes) -> bytes:
    """Return the SPS NAL unit (from its header byte) of an Annex-B keyframe. Raises ValueError if it has
    none."""
    for unit in h264.parameter_sets(keyframe).split(b"\x00\x00\x00\x01"):
        if len(unit) >= 4 and unit[0] & 0x1F == h264.SPS:
            return unit
    raise ValueError("the keyframe carries no SPS")


def codec_string(sps: bytes) -> str:
    """Return the RFC 6381 codec of an SPS (`avc1.42c01e`: profile, constraints, level), which a player needs
    to open its MSE buffer."""
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"


class _Sink:
    """What FFmpeg writes, kept until taken."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


class FragmentMuxer:
    """One camera's live fragmented MP4. Its methods block: call them in a worker thread, one at a time.

    Times are the muxer's own, from 0 at its first packet (FFmpeg starts the first fragment there whatever
    the packets' times): `origin` is that packet's decode time, which a player adds back.
    """

    def __init__(self, first: Packet):
        """Start with `first`, a keyframe whose parameter sets describe the stream (the init segment is then
        in `init`). Raises ValueError (no valid SPS), av.FFmpegError."""
        sps = sps_of(first.data)
        size = h264.sps_picture_size(sps)
        self.origin = first.dts
        self.codec = codec_string(sps)
        self._last_dts = -1
        self._pending_keyframe = False  # whether the packet FFmpeg holds until the next one is a keyframe
        self._sink = _Sink()
        self._container = av.open(self._sink, "w", format="mp4", options=LIVE_OPTIONS)
        self._stream = mp4_stream(self._container, first, size.width, size.height)
        self._container.start_encoding()
        self.init = self._sink.take()

    def _ticks(self, at_us: int) -> int:
        return round((at_us - self.origin) * MP4_TIME_BASE.denominator / MICROSECONDS)

    def add(self, packets: list[Packet]) -> list[Fragment]:
        """Mux `packets` (decode order, times made valid for MP4 as a clip's: `clips.mp4_packet`); return the
        fragments they completed. Raises av.FFmpegError."""
        fragments = []
        for packet in packets:
            out = mp4_packet(self._stream, packet, self._last_dts, self._ticks)
            self._last_dts = out.dts
            self._container.mux(out)
            data = self._sink.take()
            if data:
                fragments.append(Fragment(self._pending_keyframe, data))
            self._pending_keyframe = packet.keyframe
        return fragments

    def close(self) -> None:
        """Let FFmpeg go (what it still holds is of no use to anyone: the viewers have left)."""
        try:
            self._container.close()
        except av.FFmpegError:
            pass
