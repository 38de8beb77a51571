"""Stills: JPEG pictures of an incident (its thumbnail, a strip over its event, frames for the AI check),
decoded and encoded with PyAV. Every function blocks: call them in a worker thread, never on the event
loop."""

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av

from vigint.media import Packet

# Wide enough for an email or a page to show what happened, small enough to stay about 20-50 KB.
JPEG_WIDTH = 640
MAX_STILLS = 6  # an incident's thumbnail (its first) and the strip after it


def decoded(packets: Iterable[Packet]) -> Iterator[av.VideoFrame]:
    """Decode `packets` (from a keyframe on) and yield their frames, times in µs; packets that cannot be
    decoded are skipped."""
    decoder = av.CodecContext.create("h264", "r")
    for packet in [*packets, None]:  # None drains the decoder: the last frames come out
        if packet is None:
            encoded = None
        else:
            encoded = av.Packet(packet.data)
            encoded.pts = packet.pts
            encoded.dts = packet.dts
        try:
            yield from decoder.decode(encoded)
        except av.FFmpegError:
            continue


def jpegs(frames: list[av.VideoFrame]) -> list[bytes]:
    """Encode `frames` as JPEGs at most JPEG_WIDTH wide, keeping their aspect."""
    if not frames:
        return []
    encoder = av.CodecContext.create("mjpeg", "w")
    width = min(JPEG_WIDTH, frames[0].width) // 2 * 2
    height = round(frames[0].height * width / frames[0].width) // 2 * 2
    encoder.width = width
    encoder.height = height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    return [bytes(encoded) for frame in frames
            for encoded in encoder.encode(frame.reformat(width=width, height=height, format="yuvj420p"))]


def still_at(packets: list[Packet], at_us: int) -> bytes | None:
    """Return a JPEG of the first frame of `packets` shown at or after `at_us` (the last one if none is), or
    None if none decodes. Only the packets from the last keyframe before `at_us` on are decoded."""
    keyframes = (index for index, packet in enumerate(packets) if packet.keyframe and packet.dts <= at_us)
    start = max(keyframes, default=0)
    chosen = None
    for frame in decoded(packets[start:]):
        chosen = frame
        if frame.pts is not None and frame.pts >= at_us:
            break
    return jpegs([chosen])[0] if chosen is not None else None


def strip(clip: Path, seconds: list[float], after: float) -> list[bytes]:
    """Return JPEGs of the keyframes of the MP4 `clip` at or before each of `seconds` (into the clip,
    ascending), each one later than the one before and than `after`: keyframes are decoded alone, so a strip
    over a long clip costs a few frames. Raises av.FFmpegError if the clip cannot be read."""
    frames = []
    shown = after
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for at in seconds:
            container.seek(int(at / stream.time_base), stream=stream, backward=True)
            frame = next(container.decode(stream), None)
            if frame is not None and frame.time is not None and frame.time > shown:
                frames.append(frame)
                shown = frame.time
    return jpegs(frames)
