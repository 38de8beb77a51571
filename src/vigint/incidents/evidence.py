"""Evidence that cannot be rewritten: footage sent again for an incident whose alert went out is compared with
the incident's clip, never recorded over it (`compare_resent`, which the incident desk calls).

An agent resends footage the server did not acknowledge (it died after alerting, before the ack): the same
footage adds nothing. Footage that differs for the same times (a stolen .env sending other pictures) is
refused: the clip, stills and end stay as alerted, and the refusal is audited and flagged for the operator.

Access units are compared by their slices (the NAL units that hold the picture), hashed: the clip holds them
length-prefixed in MP4, the stream in Annex-B, with parameter sets and SEI that the muxer may move.
"""

import asyncio
import hashlib
import io
import logging
import time

import av

from vigint.incidents.clipfiles import ClipContext
from vigint.incidents.feed import Feed
from vigint.incidents.recorder import CLIP_POLL_SECONDS
from vigint.incidents.storage import StorageError
from vigint.incidents.writes import persist
from vigint.media import MICROSECONDS, Packet
from vigint.store import FlagKind, Incident, Store

log = logging.getLogger(__name__)

# An offline incident resent after a restart starts where the first server saw it start, give or take the
# footage it was resent from (whole GOPs from before its pre-roll) and a few frames of analysis cadence.
REUSE_SLACK_SECONDS = 5.0
SLICE_TYPES = range(1, 6)
# A resent access unit within this much of the clip's first or last one is compared with it (MP4 ticks are 90
# kHz).
TIME_TOLERANCE_US = 1000


def _fingerprint(units: list[bytes]) -> bytes:
    """Return the hash of an access unit's slice NAL units (trailing zero bytes stripped, as Annex-B leaves
    them)."""
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
    units = []
    position = 0
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
                at = round(packet.dts * stream.time_base * MICROSECONDS)
                found.append((at, avcc_fingerprint(bytes(packet))))
    return found


def resent(packets: list[Packet]) -> list[tuple[int, bytes]]:
    """Return the decode time (µs) and fingerprint of each resent packet."""
    return [(packet.dts, annexb_fingerprint(packet.data)) for packet in packets]


def matches(sent: list[tuple[int, bytes]], clip: list[tuple[int, bytes]], core: tuple[int, int]) -> bool:
    """Tell whether footage sent again (`sent`: decode times in µs, fingerprints) agrees with an incident's
    clip (`clip`: times from the clip's start): every access unit sent within the clip's span, or within the
    incident's `core` (its start to its end, µs) which the clip holds, must be one of the clip's. The clip's
    span is placed by the first access unit sent that the clip holds; footage outside it adds nothing and is
    not compared."""
    held = {fingerprint: at for at, fingerprint in clip}
    anchor = next(((at, held[fingerprint]) for at, fingerprint in sent if fingerprint in held), None)
    if anchor is None:
        return not any(core[0] <= at <= core[1] for at, _ in sent)
    offset = anchor[0] - anchor[1]
    first = offset + clip[0][0] - TIME_TOLERANCE_US
    last = offset + clip[-1][0] + TIME_TOLERANCE_US
    return all(fingerprint in held for at, fingerprint in sent
               if first <= at <= last or core[0] <= at <= core[1])


async def compare_resent(feed: Feed, row: Incident, context: ClipContext, store: Store) -> None:
    """Compare the footage a backfill sends again for an alerted offline incident with its clip: the same
    changes nothing; footage that differs is refused, audited and flagged for the operator, and the clip and
    stills stay."""
    sent = await _resent(feed, row, context)
    if row.clip_path is None or not sent:
        return  # nothing to compare: nothing is recorded either
    loop = asyncio.get_running_loop()
    try:
        data = await loop.run_in_executor(context.pool, context.storage.read, row.clip_path)
        clip = await loop.run_in_executor(context.pool, clip_fingerprints, data or b"")
    except (av.FFmpegError, StorageError) as error:
        log.error("incident %d: its clip cannot be read to compare footage sent again: %s", row.id, error)
        return
    core = (round(row.started_at * MICROSECONDS), round((row.ended_at or row.started_at) * MICROSECONDS))
    if clip and matches(sent, clip, core):
        log.info("incident %d: footage sent again matches its clip; nothing changes", row.id)
        return
    detail = (f"camera {feed.camera!r} sent footage again for incident {row.id}, alerted already, that "
              "differs from its clip: refused, the clip and stills are kept")
    log.warning("client %d: %s", feed.client_id, detail)
    now = time.time()
    await persist(f"incident {row.id}",
                  lambda: store.footage_refused(feed.client_id, feed.key_id, row.id, detail, now))
    await persist(f"incident {row.id}", lambda: store.raise_flag(
        FlagKind.EVIDENCE, f"incident:{row.id}", feed.client_id, feed.key_id, detail, now))


async def _resent(feed: Feed, row: Incident, context: ClipContext) -> list[tuple[int, bytes]]:
    """Return the fingerprints of the footage a backfill sends again over an alerted incident's clip (from its
    pre-roll to its post-roll), taken from the stream's ring as it arrives: a long incident is never held
    whole in memory."""
    motion = context.settings.motion
    first = round((row.started_at - motion.pre_roll_seconds - REUSE_SLACK_SECONDS) * MICROSECONDS)
    last = round(((row.ended_at or row.started_at) + motion.post_roll_seconds) * MICROSECONDS)
    sent = []
    newest = first - 1
    while True:
        over = feed.over  # read before the last look: nothing arrives after it
        fresh = [packet for packet in feed.packets() if newest < packet.dts <= last]
        sent += resent(fresh)
        newest = fresh[-1].dts if fresh else newest
        if over or (feed.newest_dts() or first) >= last:
            return sent
        await asyncio.sleep(CLIP_POLL_SECONDS)
