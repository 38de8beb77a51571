"""Clips: a remux of a stream's buffered packets into MP4, with no re-encoding (run in a worker thread)."""

import os
from fractions import Fraction
from pathlib import Path

import av

from vigint import h264
from vigint.encoder import MICROSECONDS
from vigint.files import make_private_folders
from vigint.ring import Packet

MP4_TIME_BASE = Fraction(1, 90_000)


def select(packets: list[Packet], start_us: int, end_us: int) -> list[Packet]:
    """Return the packets from the last keyframe at or before `start_us` up to `end_us` (decode times)."""
    first = 0
    for index, packet in enumerate(packets):
        if packet.keyframe and packet.dts <= start_us:
            first = index
    chosen = [p for p in packets[first:] if p.dts <= end_us]
    return chosen if chosen and chosen[0].keyframe else []


def write_mp4(packets: list[Packet], path: Path, width: int, height: int) -> float:
    """Write `packets` (starting at a keyframe) to an MP4 at `path`; return its duration in seconds.

    The file appears complete or not at all: it is written beside `path` and renamed. It is owner-only
    (0600), and so are the folders made for it (0700): clips show the inside of customers' premises.
    Raises OSError or av.FFmpegError.
    """
    partial = path.with_name(path.name + ".part")
    make_private_folders(path.parent)
    base = min(p.dts for p in packets)
    try:
        # Created owner-only before FFmpeg opens it by name (which truncates, keeping the mode): the
        # footage is never readable by others, not even while it is being written.
        os.close(os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
        os.chmod(partial, 0o600)  # a .part left by a crash keeps its old mode through O_CREAT
        with av.open(str(partial), "w", format="mp4") as container:
            stream = container.add_stream("h264")
            stream.width, stream.height, stream.time_base = width, height, MP4_TIME_BASE
            stream.codec_context.extradata = h264.parameter_sets(packets[0].data)
            for packet in packets:
                out = av.Packet(packet.data)
                out.stream, out.time_base = stream, MICROSECONDS
                out.pts, out.dts, out.is_keyframe = packet.pts - base, packet.dts - base, packet.keyframe
                container.mux(out)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    frame_us = packets[1].dts - packets[0].dts if len(packets) > 1 else 0
    return (max(p.pts for p in packets) - min(p.pts for p in packets) + frame_us) / 1e6
