"""`vigint serve`: one asyncio event loop taking authenticated camera streams.

Per connection: hello → authenticate → reserve the camera name under its client → welcome → media into
the stream's analysis (decoded in a thread pool, never on the loop), whose events go to the incident desk.
Background tasks close streams whose key stopped being valid (revoked by the admin CLI, another process),
flush usage, send alerts, apply retention and watch the fleet. HTTP on the same port: see http.py.

A backfill connection (recorded footage, docs/protocol.md 4a) takes the same path without claiming its
camera's name: one per camera beside its live stream, decoded in full by its own smaller pool of
low-priority threads, read only as fast as it is analysed, acknowledged as its incidents are recorded, and
closed with 1000 once the agent's end is analysed.
"""

import asyncio
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from vigint import protocol
from vigint.admission import Admission
from vigint.alerts.links import load_link_secret
from vigint.alerts.outbox import Outbox
from vigint.analysis.load import DecodeLoad
from vigint.analysis.pipeline import Analysed, StreamAnalysis, limits
from vigint.billing.meter import UsageMeter
from vigint.config import Settings
from vigint.errors import VigintError
from vigint.fleet.monitor import FleetMonitor, LiveStream
from vigint.incidents.desk import IncidentDesk
from vigint.incidents.retention import Retention
from vigint.incidents.storage import open_clip_storage, still_name
from vigint.incidents.verify import Verifier
from vigint.ingest import backfill
from vigint.ingest.auth import Hellos, KeyWatch
from vigint.ingest.connections import (
    AdmittedConnection,
    check_websockets,
    connection_factory,
    tls_context,
    websockets_logger,
)
from vigint.ingest.footage import LiveFootage
from vigint.ingest.http import Routes
from vigint.ingest.registry import Registry
from vigint.ingest.resources import quiet_resource_errors, raise_open_file_limit, trim_heap
from vigint.ingest.session import Session
from vigint.ingest.streams import Streams
from vigint.ingest.threads import low_priority_pool
from vigint.metrics import Metrics
from vigint.networks import parse_networks
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.store import ApiKey, Store, is_busy
from vigint.tasks import TaskSet, every
from vigint.web.access import page_url, stream_url
from vigint.web.app import open_page

log = logging.getLogger(__name__)

FINAL_FLUSH_SECONDS = 0.5  # a usage write takes milliseconds; this is for a slow disk
DRAIN_POLL_SECONDS = 0.1  # how soon a drain ends once its last stream has closed


class Server:
    """The ingest server. `await start()`, then `await stop()`; `port` is known once started."""

    def __init__(self, settings: Settings, store: Store):
        self.settings, self.store, self.metrics, self.usage = settings, store, Metrics(), UsageMeter()
        self._hellos = Hellos(self.store, self.metrics, settings.server)
        self._admission = Admission(settings.server.max_pending_hellos, settings.server.max_pending_hellos_per_address)
        self._limits = limits(settings)
        self.streams = Streams(settings.server.max_streams_per_client)
        self._streams_ended = False  # since the heap was last trimmed
        self._last_used: dict[int, float] = {}
        self.footage = LiveFootage(store, self.streams.live)
        self._last_flush = time.monotonic()
        threads = settings.server.decode_threads or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="decode")
        # Backfills decode in their own threads, at most half as many, at a lower CPU priority: live batches never
        # wait for a thread behind recorded footage, and win the cores when both run.
        self._backfill_pool = low_priority_pool(max(1, threads // 2), "backfill")
        self.decode_load = DecodeLoad()  # shared by every stream: overload is the server's, not a stream's
        self.metrics.decode_saturation = lambda: self.decode_load.saturation
        self._tasks = TaskSet()
        self._stopping = asyncio.Event()
        self.draining = False  # see drain()
        self._ws: WebSocketServer | None = None

    # Life cycle

    @property
    def tls(self) -> bool:
        return self.settings.server.tls_cert is not None

    async def start(self) -> None:
        """Listen, and start the background tasks.

        Raises:
            ConfigError: the clip-link secret or the TLS pair cannot be used (before listening).
            VigintError: the address cannot be listened on.
        """
        config, settings = self.settings.server, self.settings
        check_websockets()
        secret = load_link_secret(settings.alerts.link_secret, settings.storage.data_dir, self.store.shared)
        quiet_resource_errors(asyncio.get_running_loop())
        self.open_file_limit = raise_open_file_limit()
        clips = open_clip_storage(settings.storage)
        routes = Routes(self.metrics, lambda: page_url(settings, self.page.port), self.streams.by_client,
                        self.streams.by_mode, lambda: time.monotonic() - self._last_flush, lambda: self.draining)
        try:
            connections = connection_factory(self._admission, config.tls_cert, config.tls_key,
                                             config.auth_timeout_seconds, parse_networks(config.trusted_proxies))
            self._ws = await serve(self._handle, config.host, config.port, ssl=None,  # TLS: see connections.py
                                   process_request=routes, max_size=protocol.MAX_HELLO_BYTES,
                                   compression=None,  # H.264 does not deflate: it would only burn CPU
                                   create_connection=connections,
                                   open_timeout=config.auth_timeout_seconds,
                                   logger=websockets_logger())
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise VigintError(f"cannot listen on {config.host}:{config.port}: {reason}") from None
        self.registry = Registry(self.store, config, f"{socket.gethostname()}:{self.port}")
        try:  # the customers' page, on its own port with the stream port's TLS pair
            self.page = await open_page(settings, self.store, clips, secret, partial(self.registry.cameras_of,
                                        self._cameras_live), tls_context(config.tls_cert, config.tls_key),
                                        stream_url(settings, self.port))
        except BaseException:
            self._ws.close()
            raise
        own = f"{'https' if self.tls else 'http'}://{config.host}"  # the page's and the clip links' address
        self.outbox = Outbox(settings, self.store, self.usage, self.metrics, self._pool, secret,
                             page_url(settings, self.page.port), f"{own}:{self.port}", clips.read, still_name)
        self.desk = IncidentDesk(settings, self.store, self.metrics, self._pool,
                                 Verifier(settings.ai, self.usage, self.metrics, self._pool), self.outbox, clips,
                                 self.node_id)
        self.retention = Retention(settings.storage, self.store, clips)
        self.fleet = FleetMonitor(settings, self.store, self.metrics, self.outbox, self.node_id, self._live,
                                  lambda now: self.registry.everywhere(self._cameras_live(), now), self._hellos.blocked)
        for job in (self._watch_keys(), self._flush_periodically(), self.outbox.run(self._stopping),
                    self.retention.run(self._stopping, self.node_id), self.fleet.run(self._stopping),
                    self.registry.run(self._stopping, self._claimed_ids, self._lost), self.desk.run(self._stopping)):
            self._tasks.spawn(job)

    @property
    def port(self) -> int:
        return self._ws.sockets[0].getsockname()[1]

    @property
    def node_id(self) -> str:
        """This server among the nodes sharing the database: its host and port, the same after a restart (two
        processes cannot listen on one port), so `vigint status` shows one node per server, not one per run."""
        return self.registry.node_id

    async def drain(self) -> None:
        """Stop taking streams, before `stop()`: /healthz answers 503 and hellos are refused with 1013, for
        `drain_seconds` or until no stream is left, so that a load balancer marks this node down before
        `stop()` closes the open streams and their agents reconnect through it to other nodes."""
        self.draining = True
        deadline = time.monotonic() + self.settings.server.drain_seconds
        while self.streams.open() and time.monotonic() < deadline:
            await asyncio.sleep(min(DRAIN_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    async def stop(self) -> None:
        """Stop accepting, close streams with 1001, wait for them and for incidents being recorded, stop the
        background tasks, flush usage; past `shutdown_timeout_seconds` in all, cancel what is left (uvicorn's
        order). The last usage write is made whatever the time left: skipping it would lose billing."""
        timeout = self.settings.server.shutdown_timeout_seconds
        deadline = time.monotonic() + timeout
        self._ws.close(close_connections=True, code=CloseCode.GOING_AWAY, reason="server shutting down")
        await self.page.stop()
        try:
            await asyncio.wait_for(self._ws.wait_closed(), timeout)
        except TimeoutError:
            log.warning("streams did not close within %.0f s; stopping anyway", timeout)
        await self.desk.drain(max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        self.outbox.wake()
        await self._tasks.drain(max(FINAL_FLUSH_SECONDS, deadline - time.monotonic()))
        try:
            await self.flush_usage()
        except Exception:  # noqa: BLE001 - the process is ending: all that is left is to say so
            log.exception("could not write the last usage")
        try:
            await self.store.save_node(self.node_id, self.fleet.started_at, self.fleet.snapshot(), time.time(),
                                       stopped=True)
        except Exception:  # noqa: BLE001 - only `vigint status` would show a stale state
            log.exception("could not record the shutdown")
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._backfill_pool.shutdown(wait=True, cancel_futures=True)

    # Streams

    def _live(self) -> list[LiveStream]:
        """This node's streams for the fleet monitor's snapshot, backfills included (marked as such)."""
        return [session.live() for session in self.streams.open()]

    def _cameras_live(self) -> list[LiveStream]:
        return [session.live() for session in self.streams.live()]

    async def _handle(self, connection: AdmittedConnection) -> None:
        session, closing = None, None
        try:
            key, hello = await self._hellos.read(connection)
            session = self._register(connection, key, hello)
            if not session.backfill:  # recorded footage does not take the camera's name from its live stream
                await self.registry.claim(session.entry(self.node_id))
                session.claimed = True
            await self._welcome(session)
            await self._receive(session)
        except Exception as error:  # noqa: BLE001 - every failure ends in a close code, see _close_for
            # The close frame goes out at once, but the stream ends before the closing handshake does: a
            # sender that stops reading would otherwise hold its name, billing and decoder for close_timeout.
            closing = asyncio.gather(connection.close(*self._close_for(error)), connection.drop_unread())
        finally:
            if session is not None:
                await self._end_session(session)
        if closing is not None:
            await closing

    @staticmethod
    def _close_for(error: Exception) -> tuple[int, str]:
        """Map an exception to the close code and reason sent to the agent (no detail for surprises)."""
        if isinstance(error, ProtocolViolation):
            return error.code, error.reason
        if isinstance(error, ConnectionClosed):
            return CloseCode.GOING_AWAY, ""  # already closed: close() is a no-op
        log.exception("stream failed unexpectedly")
        return CloseCode.INTERNAL_ERROR, "internal error"

    def _register(self, connection: AdmittedConnection, key: ApiKey, hello: protocol.Hello) -> Session:
        """Reserve the camera name for this connection, or refuse it (billing and decoding start at the welcome)."""
        if self.draining:  # the agent retries soon, through its load balancer to another node
            raise ProtocolViolation(CloseCode.TRY_AGAIN_LATER, "this server is draining; try again")
        recorded = hello.backfill
        analysis = StreamAnalysis(self.settings, self._limits, key.client_id, hello.camera,
                                  partial(self._undecodable, key.client_id, hello.camera), self.decode_load, recorded)
        session = Session(connection, key, hello.camera, analysis, address=connection.remote_address[0],
                          spooled_seconds=hello.spooled_seconds,
                          on_settled=partial(backfill.acknowledge, desk=self.desk, tasks=self._tasks) if recorded else None)
        self.streams.add(session)
        return session

    async def _welcome(self, session: Session) -> None:
        """Send the welcome; from then on the stream is billed, decoded and may send media."""
        connection = session.connection
        await connection.send(protocol.welcome(session.client_id, session.camera, session.id, session.key.expires_at))
        connection.raise_message_limit(protocol.MAX_MEDIA_BYTES)
        session.accounted_until = time.time()
        self._last_used[session.key.id] = session.accounted_until
        session.decode_task = self._tasks.spawn(self._analyse(session))
        log.info("client %d key %s camera %r connected from %s", session.client_id, session.key.prefix,
                 session.camera, session.address)

    async def _end_session(self, session: Session) -> None:
        """Every way out of a stream ends here: its billing stops and its camera name is free at once; its
        decoder is flushed (an unflushed threaded decoder can hang the exit), then it is unregistered."""
        session.ended = True
        self.footage.ended(session)  # written with the next flush; this node's backfills see it at once
        if session.claimed:  # its name is free at once, on every node, as on this one
            self._tasks.spawn(self.registry.release(session.entry(self.node_id)))
        with self.streams.finishing(session):
            await self._finish(session)

    async def _finish(self, session: Session) -> None:
        """Stop the stream's billing, drain and flush its decoder, then unregister it."""
        self._streams_ended = True
        if session.welcomed:
            self._bill(session, time.time())
            session.analysis.end()
            await asyncio.gather(session.decode_task, return_exceptions=True)  # its failure was logged there
            log.info("client %d camera %r disconnected (%s)", session.client_id, session.camera,
                     session.connection.close_code)
        self.desk.stream_ended(session)  # after the last frames were analysed: they may extend the incident
        if session.backfill:
            await self.desk.settled(session)  # until then the same footage sent again could open a second incident
        self.streams.remove(session)

    # Media

    async def _receive(self, session: Session) -> None:
        if session.backfill:
            session.seen = backfill.SeenFootage(await self.footage.of_camera(session.client_id, session.camera))
        async for message in session.connection:
            if isinstance(message, str):
                kind = protocol.parse_control(message)
                if session.backfill and kind == protocol.END_OF_BACKFILL:
                    await backfill.finish(session, self.desk)
                    return
                log.debug("client %d camera %r sent control message %r (ignored)", session.client_id,
                          session.camera, kind)
                continue
            self.metrics.bytes_received += len(message)
            if session.backfill and backfill.skipped(session, self.desk, self._tasks, message):
                continue
            session.analysis.receive(message)  # first: a backfill's footage time is what its gate takes
            if session.backfill:
                self.usage.add_backfill(session.key.id, len(message), backfill.footage_in(session), time.time())
            else:
                self.usage.add_bytes(session.key.id, len(message), time.time())
                session.received(message)
            if session.backfill and session.analysis.backlogged:
                await backfill.drained(session)

    def _undecodable(self, client_id: int, camera: str, count: int, first: bool) -> None:
        """Count messages of a stream that cannot be decoded (its intake decides which).

        Given the ids, not the session: a callback held by the session's own intake must not make a
        reference cycle, which would keep each ended stream's decoder alive until a full GC pass.
        """
        self.metrics.decode_errors += count
        if first:  # once per stream: a broken camera must not flood the log
            log.warning("client %d camera %r sent media that cannot be decoded; waiting for a keyframe",
                        client_id, camera)

    async def _analyse(self, session: Session) -> None:
        """Run the stream's analysis until its end; if it fails, only this stream is closed."""
        pool = self._backfill_pool if session.backfill else self._pool
        try:
            async for analysed in session.analysis.run(pool, self.settings.server.decode_batch_seconds):
                self._absorb(session, analysed)
                if session.backfill:
                    backfill.acknowledge(session, self.desk, self._tasks)
        except Exception:  # noqa: BLE001 - a bug must cost one stream, never the server or a ghost session
            log.exception("decoding client %d camera %r failed; closing that stream", session.client_id,
                          session.camera)
            self._tasks.spawn(session.connection.close(CloseCode.INTERNAL_ERROR, "stream failed"))

    def _absorb(self, session: Session, analysed: Analysed) -> None:
        self.desk.observe(session, analysed.events)
        self.metrics.frames_decoded += analysed.decoded
        if session.backfill:
            self.metrics.backfill_frames_decoded += analysed.decoded
        self.usage.add_frames(session.key.id, analysed.decoded, time.time())
        for seconds in analysed.waited:
            self.metrics.decode_lag.observe(seconds)
        self.metrics.decode_cpu_seconds[analysed.mode] += analysed.cpu_seconds
        if analysed.woke is not None:
            self.metrics.wakes[analysed.woke] += 1
        if analysed.refusal is not None:
            self._tasks.spawn(session.connection.close(analysed.refusal.code, analysed.refusal.reason))

    # Background tasks

    async def _watch_keys(self) -> None:
        """Close streams whose key stopped being valid, within revocation_check_seconds (see KeyWatch)."""
        watch = KeyWatch(self.store, self._tasks)
        await every(self.settings.server.revocation_check_seconds, self._stopping,
                    lambda: watch.check(self.streams.open(), time.time()), log,
                    "could not check keys for revocation; will retry")

    def _claimed_ids(self) -> set[str]:
        return {session.id for session in self.streams.open() if session.claimed}

    def _lost(self, session_ids: set[str]) -> None:
        """Close the streams whose registry entries are gone: another node may stream their cameras now."""
        for session in self.streams.open():
            if session.id in session_ids:
                log.warning("client %d camera %r: its registration lapsed; closing it", session.client_id,
                            session.camera)
                self._tasks.spawn(session.connection.close(CloseCode.GOING_AWAY, "stream registration lapsed"))

    async def _flush_periodically(self) -> None:
        async def flush() -> None:
            try:
                await self.flush_usage()
            except Exception as error:  # noqa: BLE001 - re-raised unless the store says it is only busy
                if not is_busy(error):
                    raise
                # Another process holding the database (a backup, an admin command) is expected: the usage is
                # kept for the next flush, and a traceback would say there is something to fix.
                log.warning("could not write usage: database busy (%s); kept for the next try", error)
                return
            if self._streams_ended:
                self._streams_ended = False
                await asyncio.get_running_loop().run_in_executor(self._pool, trim_heap)

        await every(self.settings.server.usage_flush_seconds, self._stopping, flush, log,
                    "could not write usage; will retry")

    def _bill(self, session: Session, now: float) -> None:
        """Count a stream's time up to `now` and mark its key used then. A backfill's connection time is not
        stream time (its camera's live stream runs beside it): its footage time is counted as it arrives."""
        if not session.backfill:
            self.usage.add_stream_time(session.key.id, session.accounted_until, now)
        session.accounted_until = now
        self._last_used[session.key.id] = now

    async def flush_usage(self) -> None:
        """Write the usage and last-seen times gathered since the last flush (kept for retry on failure)."""
        now = time.time()
        for session in self.streams.open():
            if session.welcomed:
                self._bill(session, now)
        deltas, last_used, self._last_used = self.usage.drain(), self._last_used, {}
        try:
            await self.store.record_usage(deltas, last_used)
        except BaseException:
            self.usage.restore(deltas)
            self._last_used = {**last_used, **self._last_used}
            raise
        self._last_flush = time.monotonic()
        await self.footage.save()
        await self.store.save_node(self.node_id, self.fleet.started_at, self.fleet.snapshot(), now)
