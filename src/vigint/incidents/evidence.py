"""Evidence that cannot be rewritten: footage sent again for an incident whose alert went out is compared with the
incident's clip, never recorded over it.

An agent resends footage the server did not acknowledge (it died after alerting, before the ack): the same
footage adds nothing. Footage that differs for the same times (a stolen .env sending other pictures) is refused:
the clip, stills and end stay as alerted, and the refusal is audited and flagged for the operator.

Access units are compared by their slices (the NAL units that hold the picture), hashed: the clip holds them
length-prefixed in MP4, the stream in Annex-B, with parameter sets and SEI that the muxer may move.
"""

import hashlib
import io

import av

from vigint.media import MICROSECONDS, Packet

SLICE_TYPES = range(1, 6)
# A resent access unit within this much of the clip's first or last one is compared with it (MP4 ticks are 90 kHz).
TIME_TOLERANCE_US = 1000


def _fingerprint(units: list[bytes]) -> bytes:
    """Return the hash of an access unit's slice NAL units (trailing zero bytes stripped, as Annex-B leaves them)."""
    digest = hashlib.sha256()
    for unit in units:
        unit = unit.rstrip(b"\x00")
        if unit and unit[0] & 0x1F in SLICE_TYPES:
            digest.update(len(unit).to_bytes(4, "big") + unit)
    return digest.digest()


def annexb_fingerprint(access_unit: bytes) -> bytes:
    """Fingerprint an Annex-B access unit (as streams carry them)."""
    return _fingerprint(access_unit.split(b"\x00\x00\x01"))


def avcc_fingerprint(access_unit: bytes) -> bytes:
    """Fingerprint a length-prefixed access unit (as MP4 holds them)."""
    units, position = [], 0
    while position + 4 <= len(access_unit):
        size = int.from_bytes(access_unit[position:position + 4], "big")
        units.append(access_unit[position + 4:position + 4 + size])
        position += 4 + size
    return _fingerprint(units)


def clip_fingerprints(clip: bytes) -> list[tuple[int, bytes]]:
    """Return the decode time (µs from the clip's start) and fingerprint of each access unit of an MP4 clip.
    Raises av.FFmpegError if it cannot be read. Blocks: run it in a worker thread."""
    found = []
    with av.open(io.BytesIO(clip)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.dts is not None and packet.size:
                found.append((round(packet.dts * stream.time_base * MICROSECONDS), avcc_fingerprint(bytes(packet))))
    return found


def resent(packets: list[Packet]) -> list[tuple[int, bytes]]:
    """Return the decode time (µs) and fingerprint of each resent packet."""
    return [(packet.dts, annexb_fingerprint(packet.data)) for packet in packets]


def matches(sent: list[tuple[int, bytes]], clip: list[tuple[int, bytes]], core: tuple[int, int]) -> bool:
    """Tell whether footage sent again (`sent`: decode times in µs, fingerprints) agrees with an incident's clip
    (`clip`: times from the clip's start): every access unit sent within the clip's span, or within the incident's
    `core` (its start to its end, µs) which the clip holds, must be one of the clip's. The clip's span is placed by
    the first access unit sent that the clip holds; footage outside it adds nothing and is not compared."""
    held = {fingerprint: at for at, fingerprint in clip}
    anchor = next(((at, held[fingerprint]) for at, fingerprint in sent if fingerprint in held), None)
    if anchor is None:
        return not any(core[0] <= at <= core[1] for at, _ in sent)
    offset = anchor[0] - anchor[1]
    first, last = offset + clip[0][0] - TIME_TOLERANCE_US, offset + clip[-1][0] + TIME_TOLERANCE_US
    return all(fingerprint in held for at, fingerprint in sent if first <= at <= last or core[0] <= at <= core[1])
