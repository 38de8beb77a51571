"""Clips: a remux of a stream's buffered packets into MP4, with no re-encoding (run in a worker thread)."""

import os
from fractions import Fraction
from pathlib import Path

import av

from vigint import h264
from vigint.errors import VigintError
from vigint.files import make_private_folders
from vigint.media import MICROSECONDS, Packet

MP4_TIME_BASE = Fraction(1, 90_000)


def select(packets: list[Packet], start_us: int, end_us: int) -> list[Packet]:
    """Return the packets from the last keyframe at or before `start_us` up to `end_us` (decode times)."""
    first = 0
    for index, packet in enumerate(packets):
        if packet.keyframe and packet.dts <= start_us:
            first = index
    chosen = [p for p in packets[first:] if p.dts <= end_us]
    return chosen if chosen and chosen[0].keyframe else []


class ClipError(VigintError):
    """FFmpeg refused to write a clip of these packets."""


def _mp4_times(packets: list[Packet]) -> list[tuple[int, int]]:
    """Return each packet's (pts, dts) in MP4 ticks from the first decode time.

    MP4 needs decode times that strictly increase and presentation times never before them; a camera's
    clock may step back, and two µs times may round to one 90 kHz tick, so both are enforced here.
    """
    base, last, times = min(p.dts for p in packets), -1, []
    for packet in packets:
        dts = max(last + 1, round((packet.dts - base) * MP4_TIME_BASE.denominator / MICROSECONDS))
        pts = max(dts, round((packet.pts - base) * MP4_TIME_BASE.denominator / MICROSECONDS))
        times.append((pts, dts))
        last = dts
    return times


def write_mp4(packets: list[Packet], path: Path, width: int, height: int) -> float:
    """Write `packets` (starting at a keyframe) to an MP4 at `path`; return its duration in seconds.

    The file appears complete or not at all: it is written beside `path` and renamed. It is owner-only
    (0600), and so are the folders made for it (0700): clips show the inside of customers' premises.
    Raises OSError, or ClipError when FFmpeg refuses the packets.
    """
    partial = path.with_name(path.name + ".part")
    make_private_folders(path.parent)
    try:
        # Created owner-only before FFmpeg opens it by name (which truncates, keeping the mode): the
        # footage is never readable by others, not even while it is being written.
        os.close(os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
        os.chmod(partial, 0o600)  # a .part left by a crash keeps its old mode through O_CREAT
        # faststart: the index (moov) goes before the media (mdat), as iOS Safari needs to play a clip while
        # it downloads; FFmpeg moves it there once the clip is whole.
        with av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("h264")
            stream.width, stream.height, stream.time_base = width, height, MP4_TIME_BASE
            stream.codec_context.extradata = h264.parameter_sets(packets[0].data)
            for packet, (pts, dts) in zip(packets, _mp4_times(packets)):
                out = av.Packet(packet.data)
                out.stream, out.time_base = stream, MP4_TIME_BASE
                out.pts, out.dts, out.is_keyframe = pts, dts, packet.keyframe
                container.mux(out)
        os.replace(partial, path)
    except av.FFmpegError as error:
        raise ClipError(f"FFmpeg could not write the clip: {error}") from None
    finally:
        partial.unlink(missing_ok=True)
    frame_us = packets[1].dts - packets[0].dts if len(packets) > 1 else 0
    return (max(p.pts for p in packets) - min(p.pts for p in packets) + frame_us) / 1e6
