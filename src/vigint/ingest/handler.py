"""One connection's path through `vigint serve`, from its hello to its end.

Per connection: hello → authenticate → reserve the camera name under its client → welcome → media into the
stream's analysis (decoded in a thread pool, never on the loop), whose events go to the incident desk.
The handler is given the stages it feeds and the node's `ServerState`, never the server that built them
(serve/, which this room must not import).

A backfill connection (recorded footage, docs/protocol.md 4a) takes the same path without claiming its
camera's name: one per camera beside its live stream, decoded in full by its own smaller pool of
low-priority threads, read only as fast as it is analysed, acknowledged as its incidents are recorded, and
closed with 1000 once the agent's end is analysed.
"""

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial

from websockets.exceptions import ConnectionClosed

from vigint import protocol
from vigint.analysis.pipeline import Analysed, StreamAnalysis
from vigint.billing.meter import UsageMeter
from vigint.config import Settings
from vigint.incidents.desk import IncidentDesk
from vigint.ingest import backfill
from vigint.ingest.auth import Hellos
from vigint.ingest.connections import AdmittedConnection
from vigint.ingest.exchange import Admitted, BackfillEnded, Close, Ignored, Skipped, StreamExchange
from vigint.ingest.footage import LiveFootage
from vigint.ingest.registry import Registry
from vigint.ingest.session import Session
from vigint.ingest.state import ServerState
from vigint.ingest.watch import CameraWatch
from vigint.metrics import Metrics
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.tasks import TaskSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stages:
    """What a connection feeds and is counted by: built once by the composition root."""

    settings: Settings
    metrics: Metrics
    usage: UsageMeter
    hellos: Hellos
    registry: Registry
    desk: IncidentDesk
    footage: LiveFootage
    cameras: CameraWatch  # each live stream's arming, sensitivity and masks
    tasks: TaskSet
    pool: Executor  # live streams' decoding
    backfill_pool: Executor  # backfills' decoding, at a lower priority


class StreamHandler:
    """Takes each connection of the node from its hello to its end (websockets' connection handler)."""

    def __init__(self, state: ServerState):
        self._state = state
        self._stages: Stages | None = None  # see `attach`
        self._holdback_us = 0
        self._last_used: dict[int, float] = {}  # by key: when it was last streamed with, since the last flush

    def attach(self, stages: Stages) -> None:
        """Take the stages, built once the node listens (they are named by its port), before it accepts."""
        self._stages = stages
        self._holdback_us = backfill.holdback_us(stages.settings.motion)

    async def __call__(self, connection: AdmittedConnection) -> None:
        stages = self._stages
        exchange = StreamExchange(self._holdback_us, stages.settings.server.max_nal_units,
                                  stages.hellos.failures, connection.remote_address[0])
        session = None
        try:
            admitted = await stages.hellos.read(connection, exchange)
            if admitted is not None:
                session = self._register(connection, exchange, admitted)
                # Recorded footage does not take the camera's name from its live stream
                if not session.backfill:
                    await stages.registry.claim(session.entry(stages.registry.node_id))
                    session.claimed = True
                    await stages.cameras.watch(session)
                else:
                    await stages.cameras.follow_recorded(session)
                await self._welcome(session)
                await self._receive(session)
        except Exception as error:  # noqa: BLE001 - every failure ends in a close code, see close_for
            exchange.close(*close_for(error))
        finally:
            closing = start_closing(connection, exchange.data_to_send())
            if session is not None:
                await self._end_session(session)
                session = None  # its decoder and ring (megabytes) freed now, not after the closing handshake
        if closing is not None:
            await closing

    def _register(self, connection: AdmittedConnection, exchange: StreamExchange,
                  admitted: Admitted) -> Session:
        """Reserve the camera name for this connection, or refuse it (billing and decoding start at the
        welcome)."""
        if self._state.draining:  # the agent retries soon, through its load balancer to another node
            raise ProtocolViolation(CloseCode.TRY_AGAIN_LATER, "this server is draining; try again")
        stages = self._stages
        key = admitted.key
        hello = admitted.hello
        undecodable = partial(count_undecodable, stages.metrics, key.client_id, hello.camera)
        analysis = StreamAnalysis(stages.settings, key.client_id, hello.camera, undecodable,
                                  self._state.decode_load, hello.backfill,
                                  armed=hello.backfill)  # live: see watch.py
        session = Session(connection, key, hello.camera, analysis, address=connection.remote_address[0],
                          spooled_seconds=hello.spooled_seconds, exchange=exchange)
        self._state.streams.add(session)
        return session

    async def _welcome(self, session: Session) -> None:
        """Send the welcome; from then on the stream is billed, decoded and may send media."""
        session.exchange.accepted(session.id, session.key.expires_at)  # its latest record: see KeyWatch
        await session.send(session.exchange.data_to_send())
        session.connection.raise_message_limit(protocol.MAX_MEDIA_BYTES)
        session.accounted_until = time.time()
        self._last_used[session.key.id] = session.accounted_until
        session.decode_task = self._stages.tasks.spawn(self._analyse(session))
        log.info("client %d key %s camera %r connected from %s", session.client_id, session.key.prefix,
                 session.camera, session.address)

    async def _end_session(self, session: Session) -> None:
        """Every way out of a stream ends here: its billing stops and its camera name is free at once; its
        decoder is flushed (an unflushed threaded decoder can hang the exit), then it is unregistered."""
        session.ended = True
        tasks = self._stages.tasks
        registry = self._stages.registry
        # Written with the next flush; this node's backfills see it at once
        self._stages.footage.ended(session)
        if session.claimed:  # its name is free at once, on every node, as on this one
            tasks.spawn(registry.release(session.entry(registry.node_id)))
        with self._state.streams.finishing(session):
            await self._finish(session)

    async def _finish(self, session: Session) -> None:
        """Stop the stream's billing, drain and flush its decoder, then unregister it."""
        if session.welcomed:
            self._bill(session, time.time())
            session.analysis.end()
            await asyncio.gather(session.decode_task, return_exceptions=True)  # its failure was logged there
            log.info("client %d camera %r disconnected (%s)", session.client_id, session.camera,
                     session.connection.close_code)
        # After the last frames were analysed: they may extend the incident
        self._stages.desk.stream_ended(session)
        if session.backfill:
            # Until then the same footage sent again could open a second incident.
            await self._stages.desk.settled(session)
        self._state.streams.remove(session)
        self._stages.cameras.forget(session)
        self._state.streams_ended = True  # its decoder and ring freed: the next flush trims the heap

    async def _receive(self, session: Session) -> None:
        stages = self._stages
        exchange = session.exchange
        if session.backfill:
            exchange.delivered_live(await stages.footage.of_camera(session.client_id, session.camera))
        async for message in session.connection:
            for event in exchange.receive_data(message):
                if isinstance(event, BackfillEnded):
                    await backfill.finish(session, stages.desk)
                    return
                if isinstance(event, Ignored):
                    log.debug("client %d camera %r sent control message %r (ignored)", session.client_id,
                              session.camera, event.kind)
                    continue
                stages.metrics.bytes_received += len(event.message)
                if isinstance(event, Skipped):  # delivered live already: neither analysed nor billed
                    if event.ack_due:
                        backfill.acknowledge(session, stages.desk, stages.tasks)
                    continue
                await self._take(session, event.message)
            if exchange.closed:  # it refused the message: its close goes out (see __call__)
                return

    async def _take(self, session: Session, message: bytes) -> None:
        """Analyse and bill a media message; read no further ahead of a backfill's analysis than it may be."""
        usage = self._stages.usage
        now = time.time()
        packet = session.analysis.receive(message)  # first: a backfill's footage time is what its gate takes
        if session.backfill:
            usage.add_backfill(session.key.id, len(message), backfill.footage_in(session), now)
        else:
            usage.add_bytes(session.key.id, len(message), now)
            if packet is not None:
                session.received(packet.dts, now)
        if session.backfill and session.analysis.backlogged:
            await backfill.drained(session)

    async def _analyse(self, session: Session) -> None:
        """Run the stream's analysis until its end; if it fails, only this stream is closed."""
        stages = self._stages
        pool = stages.backfill_pool if session.backfill else stages.pool
        try:
            async for analysed in session.analysis.run(pool, stages.settings.server.decode_batch_seconds):
                self._absorb(session, analysed)
                if session.backfill:
                    backfill.acknowledge(session, stages.desk, stages.tasks)
        except Exception:  # noqa: BLE001 - a bug must cost one stream, never the server or a ghost session
            log.exception("decoding client %d camera %r failed; closing that stream", session.client_id,
                          session.camera)
            stages.tasks.spawn(session.connection.close(CloseCode.INTERNAL_ERROR, "stream failed"))

    def _absorb(self, session: Session, analysed: Analysed) -> None:
        stages = self._stages
        metrics = stages.metrics
        for settled in stages.desk.observe(session, analysed.events):
            # Once recorded, the incident no longer holds the footage: more is acknowledged
            if session.backfill:
                acknowledging = backfill.acknowledge_when_settled(session, stages.desk, stages.tasks, settled)
                stages.tasks.spawn(acknowledging)
        metrics.frames_decoded += analysed.decoded
        if session.backfill:
            metrics.backfill_frames_decoded += analysed.decoded
        stages.usage.add_frames(session.key.id, analysed.decoded, time.time())
        for seconds in analysed.waited:
            metrics.decode_lag.observe(seconds)
        metrics.decode_cpu_seconds[analysed.mode] += analysed.cpu_seconds
        if analysed.woke is not None:
            metrics.wakes[analysed.woke] += 1
        if analysed.refusal is not None:
            stages.tasks.spawn(session.connection.close(analysed.refusal.code, analysed.refusal.reason))

    def _bill(self, session: Session, now: float) -> None:
        """Count a stream's time up to `now` and mark its key used then. A backfill's connection time is not
        stream time (its camera's live stream runs beside it): its footage time is counted as it arrives."""
        if not session.backfill:
            self._stages.usage.add_stream_time(session.key.id, session.accounted_until, now)
        session.accounted_until = now
        self._last_used[session.key.id] = now

    def take_usage(self, now: float) -> dict[int, float]:
        """Bill every open stream up to `now`; return when each key was last used since the last call."""
        for session in self._state.streams.open():
            if session.welcomed:
                self._bill(session, now)
        last_used = self._last_used
        self._last_used = {}
        return last_used

    def keep_usage(self, last_used: dict[int, float]) -> None:
        """Take back what `take_usage` returned, for the next flush (its write failed)."""
        self._last_used = {**last_used, **self._last_used}


def start_closing(connection: AdmittedConnection, decided: list[str | Close]) -> asyncio.Future | None:
    """Start sending the close the exchange decided, if any (every message decided before it was sent as soon
    as it was decided). The close frame goes out at once, but the stream ends before the closing handshake
    does: a sender that stops reading would otherwise hold its name, billing and decoder for close_timeout."""
    for item in decided:
        if isinstance(item, Close):
            return asyncio.gather(connection.close(item.code, item.reason), connection.drop_unread())
    return None


def close_for(error: Exception) -> tuple[int, str]:
    """Map an exception to the close code and reason sent to the agent (no detail for surprises)."""
    if isinstance(error, ProtocolViolation):
        return error.code, error.reason
    if isinstance(error, ConnectionClosed):
        return CloseCode.GOING_AWAY, ""  # already closed: close() is a no-op
    log.exception("stream failed unexpectedly")
    return CloseCode.INTERNAL_ERROR, "internal error"


def count_undecodable(metrics: Metrics, client_id: int, camera: str, count: int, first: bool) -> None:
    """Count messages of a stream that cannot be decoded (its intake decides which).

    Given the ids, not the session: a callback held by the session's own intake must not make a reference
    cycle, which would keep each ended stream's decoder alive until a full GC pass.
    """
    metrics.decode_errors += count
    if first:  # once per stream: a broken camera must not flood the log
        log.warning("client %d camera %r sent media that cannot be decoded; waiting for a keyframe",
                    client_id, camera)
