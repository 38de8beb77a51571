"""A backfill connection's side of the server (docs/protocol.md 4a): how fast it is read, what it
acknowledges, and how it ends; the adapter between its exchange (exchange.py, which decides without I/O) and
its socket, the incident desk and the tasks. Given the session and the incident desk, never the server.

Footage the camera's live streams already delivered (an agent stopped with a GOP still in its spool sends that
GOP again) is skipped: acknowledged without analysis or billing, so that it never becomes a second, "offline",
incident. A GOP whose keyframe was received live is skipped whole: its other frames cannot be decoded without
it.
"""

import asyncio
import logging

from vigint.analysis.events import MAX_GAP_SECONDS
from vigint.billing.meter import footage_seconds
from vigint.config import MotionSettings
from vigint.incidents.desk import IncidentDesk
from vigint.ingest.session import Session
from vigint.media import MICROSECONDS
from vigint.protocol import CloseCode
from vigint.tasks import TaskSet

log = logging.getLogger(__name__)


def holdback_us(motion: MotionSettings) -> int:
    """Return how far before the end of what was analysed a backfill's footage is not acknowledged yet. An
    incident is known only once its motion has lasted `min_motion_seconds` (a run may pause MAX_GAP_SECONDS),
    and its clip reaches `pre_roll_seconds` before its start: that footage may belong to an incident not known
    yet."""
    return int((motion.pre_roll_seconds + motion.min_motion_seconds + MAX_GAP_SECONDS) * MICROSECONDS)


async def drained(session: Session) -> None:
    """Read no more of a backfill until its analysis has caught up (TCP then slows its agent down), it failed,
    or its connection closed (a revoked key)."""
    waits = [asyncio.ensure_future(session.analysis.drained()),
             asyncio.ensure_future(session.connection.wait_closed())]
    try:
        await asyncio.wait([*waits, session.decode_task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def footage_in(session: Session) -> float:
    """Return the footage time a backfill's media message just taken added (see `meter.footage_seconds`): how
    far it moved the decode times its gate took, which the gate makes advance like frames (see `Intake`).
    Measured on what the gate took, not on the message's header: a message it refused would move the footage
    along unanalysed."""
    newest = session.analysis.intake.newest_dts
    seconds = footage_seconds(session.exchange.billed_dts, newest)
    session.exchange.billed_dts = newest
    return seconds


def acknowledge(session: Session, desk: IncidentDesk, tasks: TaskSet) -> None:
    """Acknowledge a backfill's footage as far as it is analysed, less what an incident, known or not yet, may
    still need (see `StreamExchange.analysed`); only ever more than before. Called as its batches are
    analysed, as skipped footage moves on, and as each of its incidents is recorded (see
    `acknowledge_when_settled`)."""
    until = session.analysis.until
    held = desk.holding(session)
    if session.analysis.ended:
        return  # once the footage ended, its last ack goes out before the close (see `finish`), in order
    session.exchange.analysed(until, held, caught_up=not session.analysis.intake.queued_packets)
    for message in session.exchange.data_to_send():
        tasks.spawn(session.notify(message))


async def acknowledge_when_settled(session: Session, desk: IncidentDesk, tasks: TaskSet,
                                   settled: asyncio.Event) -> None:
    """Acknowledge more of a backfill once an incident the desk opened from its footage is recorded: until
    then the desk held its footage from the incident's pre-roll on."""
    await settled.wait()
    acknowledge(session, desk, tasks)


async def finish(session: Session, desk: IncidentDesk) -> None:
    """The agent sent all its footage: analyse the rest, end an open incident at its last motion, wait until
    its incidents are recorded, acknowledge everything analysed and close with 1000 (footage a failed analysis
    did not reach stays unacknowledged: the agent sends it again)."""
    session.analysis.end()
    await asyncio.gather(session.decode_task, return_exceptions=True)
    desk.stream_ended(session)
    await desk.settled(session)
    exchange = session.exchange
    exchange.ended(session.analysis.until, caught_up=not session.analysis.intake.queued_packets)
    await session.send(exchange.data_to_send())
    log.info("client %d camera %r: backfill analysed through %s", session.client_id, session.camera,
             exchange.acked)
    exchange.close(CloseCode.DONE, "all footage analysed")
    await session.send(exchange.data_to_send())
