"""Clips: a stream's packets remuxed into MP4 as they arrive, with no re-encoding (run in worker threads).

A clip grows while its incident is recorded, as a fragmented MP4 (a fragment per GOP, each written out as it
ends): whatever a crash leaves of it plays, in browsers as in FFmpeg. Once its end is known it is remuxed into
a plain MP4 with its index first (faststart), which phones play while it downloads, and replaces the growing
one whole.
"""

import io
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

from vigint import h264
from vigint.errors import VigintError
from vigint.files import make_private_folders
from vigint.media import MICROSECONDS, Packet

MP4_TIME_BASE = Fraction(1, 90_000)
# A fragment per GOP, announced by an empty index up front and addressed from its own start (what Chromium,
# Firefox and Safari play); each packet flushed to the file at once, so a killed server loses at most the GOP
# it was writing, never what the file holds.
GROWING_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
# The index (moov) before the media (mdat), as iOS Safari needs to play a clip while it downloads.
FASTSTART_OPTIONS = {"movflags": "+faststart"}


def select(packets: list[Packet], start_us: int, end_us: int) -> list[Packet]:
    """Return the packets from the last keyframe at or before `start_us` up to `end_us` (decode times)."""
    first = 0
    for index, packet in enumerate(packets):
        if packet.keyframe and packet.dts <= start_us:
            first = index
    chosen = [p for p in packets[first:] if p.dts <= end_us]
    return chosen if chosen and chosen[0].keyframe else []


def mp4_stream(container: av.container.OutputContainer, first: Packet, width: int,
               height: int) -> av.video.stream.VideoStream:
    """Add to `container` a stream for H.264 packets as received, described by the parameter sets of `first`,
    a keyframe. Added by codec name, PyAV would open an H.264 encoder with the muxer, 5.6 MiB at 720p for
    nothing: it is made from a template instead, the stream of those parameter sets read as raw H.264.
    Raises av.FFmpegError."""
    parameter_sets = h264.parameter_sets(first.data)
    with av.open(io.BytesIO(parameter_sets), format="h264") as raw:
        stream = container.add_stream_from_template(raw.streams.video[0])
    stream.width = width
    stream.height = height
    stream.time_base = MP4_TIME_BASE
    stream.codec_context.extradata = parameter_sets
    return stream


def mp4_packet(stream: av.video.stream.VideoStream, packet: Packet, last_dts: int,
               ticks: Callable[[int], int]) -> av.Packet:
    """Return `packet` for an MP4 `stream` in MP4_TIME_BASE (`ticks` converts its µs times), following a
    packet at `last_dts`. MP4 needs decode times that strictly increase and presentation times never before
    them; a camera's clock may step back, and two µs times may round to one 90 kHz tick, so both are enforced
    here."""
    out = av.Packet(packet.data)
    out.stream = stream
    out.time_base = MP4_TIME_BASE
    out.dts = max(last_dts + 1, ticks(packet.dts))
    out.pts = max(out.dts, ticks(packet.pts))
    out.is_keyframe = packet.keyframe
    return out


class ClipError(VigintError):
    """FFmpeg refused to write or read a clip."""


def _private_file(path: Path) -> None:
    """Create `path` empty and owner-only (0600) in owner-only folders (0700), before FFmpeg opens it by name
    (which truncates, keeping the mode): clips show the inside of customers' premises, even half-written."""
    make_private_folders(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)  # a file left by a crash keeps its old mode through O_CREAT


class GrowingClip:
    """An MP4 that grows with the stream (see the module's docstring). Its methods block: call them in a
    worker thread, one at a time."""

    def __init__(self, path: Path, first: Packet, width: int, height: int):
        """Start the clip at `path` (its header written at once) with `first`, a keyframe, whose parameter
        sets describe the stream; `base` is its decode time, the clip's time 0. Raises OSError, or
        ClipError."""
        self.path = path
        self.base = first.dts
        self._last_dts = -1
        _private_file(path)
        try:
            self._container = av.open(str(path), "w", format="mp4", options=GROWING_OPTIONS)
            self._stream = mp4_stream(self._container, first, width, height)
            self._container.start_encoding()
        except av.FFmpegError as error:
            raise ClipError(f"FFmpeg could not start the clip: {error}") from None

    def ticks(self, at_us: int) -> int:
        """Return stream time `at_us` as MP4 ticks of the clip."""
        return round((at_us - self.base) * MP4_TIME_BASE.denominator / MICROSECONDS)

    def add(self, packets: list[Packet]) -> None:
        """Append `packets`, in decode order (see `mp4_packet`). Raises ClipError (a full disk among its
        causes)."""
        try:
            for packet in packets:
                out = mp4_packet(self._stream, packet, self._last_dts, self.ticks)
                self._last_dts = out.dts
                self._container.mux(out)
        except av.FFmpegError as error:
            raise ClipError(f"FFmpeg could not write the clip: {error}") from None

    def close(self) -> None:
        """Write the last fragment and close the file. Raises ClipError."""
        try:
            self._container.close()
        except av.FFmpegError as error:
            raise ClipError(f"FFmpeg could not close the clip: {error}") from None


def finish(growing: Path, path: Path, until_ticks: int) -> float:
    """Remux the closed growing clip at `growing` into a faststart MP4 at `path` (which may be `growing`
    itself), keeping its packets decoded up to `until_ticks`; return the clip's duration in seconds.

    The file appears whole or not at all: it is written beside `path` (owner-only) and renamed over it.
    Raises OSError, or ClipError when FFmpeg cannot read or write it.
    """
    partial = path.with_name(path.name + ".part")
    first = end = None
    try:
        _private_file(partial)
        with av.open(str(growing)) as source, \
                av.open(str(partial), "w", format="mp4", options=FASTSTART_OPTIONS) as target:
            incoming = source.streams.video[0]
            outgoing = target.add_stream_from_template(incoming)
            outgoing.time_base = incoming.time_base  # PyAV 15 leaves it unset: ticks would merge
            for packet in source.demux(incoming):
                if packet.dts is None or packet.dts > until_ticks:
                    continue  # the demuxer's last, empty packet; or past the clip's end
                first = packet.pts if first is None else min(first, packet.pts)
                end = max(end or 0, packet.pts + packet.duration)
                packet.stream = outgoing
                target.mux(packet)
            time_base = incoming.time_base
        os.replace(partial, path)
    except av.FFmpegError as error:
        raise ClipError(f"FFmpeg could not finish the clip: {error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return float((end - first) * time_base) if first is not None else 0.0


def footage_end(path: Path) -> float | None:
    """Return how far into the clip at `path` (growing, or cut by a crash, or finished) its footage goes: the
    end of its last packet that reads, in seconds from its time 0; None if none does. Packets are read, not
    decoded. Raises OSError, or ClipError when FFmpeg cannot open it."""
    end = None
    try:
        with av.open(str(path)) as source:
            incoming = source.streams.video[0]
            try:
                for packet in source.demux(incoming):
                    if packet.pts is not None:
                        end = max(end or 0, packet.pts + (packet.duration or 0))
            except av.FFmpegError:
                pass  # a fragment cut short by the crash: the footage ends before it
            time_base = incoming.time_base
    except (av.FFmpegError, IndexError) as error:
        raise ClipError(f"FFmpeg could not read the clip: {error}") from None
    return float(end * time_base) if end is not None else None
