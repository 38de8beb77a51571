"""A backfill connection's side of the server (docs/protocol.md 4a): how fast it is read, what it acknowledges,
what it skips, and how it ends. Given the session and the incident desk, never the server.

Footage the camera's live streams already delivered (an agent stopped with a GOP still in its spool sends that GOP
again) is skipped: acknowledged without analysis or billing, so that it never becomes a second, "offline",
incident. A GOP whose keyframe was received live is skipped whole: its other frames cannot be decoded without it.
"""

import asyncio
import bisect
import logging
from collections.abc import Callable

from vigint import h264, protocol
from vigint.analysis.events import MAX_GAP_SECONDS
from vigint.billing.meter import footage_seconds
from vigint.incidents.desk import IncidentDesk
from vigint.ingest.session import Session
from vigint.media import MICROSECONDS
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.tasks import TaskSet

log = logging.getLogger(__name__)

# The frames after a skipped keyframe that are skipped with it: at most a GOP, never more than this.
MAX_SKIPPED_TAIL_US = 10 * MICROSECONDS
# Skipped footage is acknowledged a step at a time, not per frame.
SKIPPED_ACK_STEP_US = MICROSECONDS


class SeenFootage:
    """Which of a backfill's media its camera's live streams delivered already (pure): those at capture times
    within a live stream's span, and the rest of a GOP begun there."""

    def __init__(self, spans: list[tuple[int, int]]):
        self._starts: list[int] = []
        self._ends: list[int] = []  # merged: a camera reconnecting all day has thousands of spans
        for first, last in sorted(spans):
            if self._ends and first <= self._ends[-1]:
                self._ends[-1] = max(self._ends[-1], last)
            else:
                self._starts.append(first)
                self._ends.append(last)
        self._tail_until: int | None = None  # non-keyframes up to then continue a skipped GOP
        self._newest: int | None = None  # the newest decode time looked at
        self.until: int | None = None  # the newest decode time skipped

    def skips(self, dts: int, keyframe: Callable[[], bool]) -> bool:
        """Tell whether the media at decode time `dts` (whose `keyframe()` says if a decoder can start there) was
        delivered live, or continues a GOP that was. Only footage in decode order is skipped: what is not is left
        to the analysis, which refuses it (see `Intake.accept`), so a sender cannot repeat footage unbilled."""
        if self._newest is not None and dts <= self._newest:
            return False
        self._newest = dts
        index = bisect.bisect_right(self._starts, dts) - 1
        if index >= 0 and dts <= self._ends[index]:
            self._tail_until = dts + MAX_SKIPPED_TAIL_US
        elif self._tail_until is None or dts > self._tail_until or keyframe():
            self._tail_until = None
            return False
        self.until = dts
        return True


def is_keyframe(message: bytes, max_units: int) -> bool:
    """Tell whether a media message is a keyframe (False for one that cannot be parsed)."""
    try:
        return h264.is_keyframe(h264.nal_types(protocol.parse_media(message).data, max_units))
    except (ProtocolViolation, h264.TooManyUnits):
        return False


def skipped(session: Session, desk: IncidentDesk, tasks: TaskSet, message: bytes) -> bool:
    """Tell whether a backfill's media message was delivered live already (see `SeenFootage`): then it is neither
    analysed nor billed, and acknowledged as soon as what came before it is."""
    dts, max_units = protocol.media_dts(message), desk.settings.server.max_nal_units
    if session.seen is None or dts is None or not session.seen.skips(dts, lambda: is_keyframe(message, max_units)):
        return False
    if session.acked is None or dts - session.acked >= SKIPPED_ACK_STEP_US:
        acknowledge(session, desk, tasks)
    return True


async def drained(session: Session) -> None:
    """Read no more of a backfill until its analysis has caught up (TCP then slows its agent down), it failed, or
    its connection closed (a revoked key)."""
    waits = [asyncio.ensure_future(session.analysis.drained()), asyncio.ensure_future(session.connection.wait_closed())]
    try:
        await asyncio.wait([*waits, session.decode_task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def footage_in(session: Session) -> float:
    """Return the footage time a backfill's media message just taken added (see `meter.footage_seconds`): how far
    it moved the decode times its gate took, which the gate makes advance like frames (see `Intake`). Measured on
    what the gate took, not on the message's header: a message it refused would move the footage along unanalysed."""
    newest = session.analysis.intake.newest_dts
    seconds = footage_seconds(session.billed_dts, newest)
    session.billed_dts = newest
    return seconds


def acknowledge(session: Session, desk: IncidentDesk, tasks: TaskSet) -> None:
    """Acknowledge a backfill's footage as far as it is analysed, less what an incident may still need; only ever
    more than before.

    An incident is known only once its motion has lasted `min_motion_seconds` (a run may pause MAX_GAP_SECONDS),
    and its clip reaches `pre_roll_seconds` before its start: the footage that close to the end of what was
    analysed may belong to an incident not known yet, and is held back like that of one open or being recorded.
    Footage skipped as delivered live (see `skipped`) is acknowledged once everything before it is analysed and no
    incident holds it.
    """
    until, held = session.analysis.until, desk.holding(session)
    if session.analysis.ended:
        return  # once the footage ended, its last ack goes out before the close (see `finish`), in order
    if until is not None:
        motion = desk.settings.motion
        until -= int((motion.pre_roll_seconds + motion.min_motion_seconds + MAX_GAP_SECONDS) * MICROSECONDS) + 1
        until = until if held is None else min(until, held)
    seen = session.seen.until if session.seen is not None else None
    caught_up = not session.analysis.intake.queued_packets
    if seen is not None and held is None and caught_up and (until is None or seen > until):
        until = seen
    if until is not None and (session.acked is None or until > session.acked):
        session.acked = until
        tasks.spawn(session.notify(protocol.ack(until)))


async def finish(session: Session, desk: IncidentDesk) -> None:
    """The agent sent all its footage: analyse the rest, end an open incident at its last motion, wait until its
    incidents are recorded, acknowledge everything analysed and close with 1000 (footage a failed analysis did not
    reach stays unacknowledged: the agent sends it again)."""
    session.analysis.end()
    await asyncio.gather(session.decode_task, return_exceptions=True)
    desk.stream_ended(session)
    await desk.settled(session)
    until = session.analysis.until
    seen = session.seen.until if session.seen is not None and not session.analysis.intake.queued_packets else None
    until = seen if until is None or seen is not None and seen > until else until
    if until is not None and (session.acked is None or until > session.acked):
        session.acked = until
        await session.connection.send(protocol.ack(until))
    log.info("client %d camera %r: backfill analysed through %s", session.client_id, session.camera, session.acked)
    await session.connection.close(CloseCode.DONE, "all footage analysed")
