"""A backfill connection's side of the server (docs/protocol.md 4a): how fast it is read, what it acknowledges,
and how it ends. Given the session and the incident desk, never the server."""

import asyncio
import logging

from vigint import protocol
from vigint.analysis.events import MAX_GAP_SECONDS
from vigint.billing.meter import footage_seconds
from vigint.incidents.desk import IncidentDesk
from vigint.ingest.session import Session
from vigint.media import MICROSECONDS
from vigint.protocol import CloseCode
from vigint.tasks import TaskSet

log = logging.getLogger(__name__)


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
    """
    until, held = session.analysis.until, desk.holding(session)
    if until is None or session.analysis.ended:
        return  # once the footage ended, its last ack goes out before the close (see `finish`), in order
    motion = desk.settings.motion
    until -= int((motion.pre_roll_seconds + motion.min_motion_seconds + MAX_GAP_SECONDS) * MICROSECONDS) + 1
    until = until if held is None else min(until, held)
    if session.acked is None or until > session.acked:
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
    if until is not None and (session.acked is None or until > session.acked):
        session.acked = until
        await session.connection.send(protocol.ack(until))
    log.info("client %d camera %r: backfill analysed through %s", session.client_id, session.camera, session.acked)
    await session.connection.close(CloseCode.DONE, "all footage analysed")
