"""`vigint serve`: the composition root. It builds the stages (store-backed registry, incident desk, outbox,
retention, fleet monitor, customers' page, decode pools), wires them to one `ServerState`, starts the
background tasks and stops everything in order (uvicorn's `Server`). One connection's path is
ingest/handler.py's; the HTTP answers on the stream port are http.py's.
"""

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import serve

from vigint import protocol
from vigint.admission import Admission
from vigint.alerts.links import load_link_secret
from vigint.alerts.outbox import Outbox
from vigint.billing.meter import UsageMeter
from vigint.config import Settings
from vigint.errors import VigintError
from vigint.fleet.monitor import FleetMonitor
from vigint.incidents.desk import IncidentDesk
from vigint.incidents.retention import Retention
from vigint.incidents.storage import open_clip_storage, still_name
from vigint.incidents.verify import Verifier
from vigint.ingest.auth import Hellos, KeyWatch
from vigint.ingest.connections import check_websockets, connection_factory, tls_context, websockets_logger
from vigint.ingest.footage import LiveFootage
from vigint.ingest.handler import Stages, StreamHandler
from vigint.ingest.registry import Registry
from vigint.ingest.resources import quiet_resource_errors, raise_open_file_limit, trim_heap
from vigint.ingest.state import ServerState
from vigint.ingest.streams import Streams
from vigint.ingest.threads import low_priority_pool
from vigint.ingest.watch import CameraWatch
from vigint.metrics import Metrics
from vigint.networks import parse_networks
from vigint.protocol import CloseCode
from vigint.serve.http import Routes
from vigint.serve.keyframes import RingKeyframes
from vigint.serve.livesource import RingSources
from vigint.store import Store, is_busy
from vigint.tasks import TaskSet, every
from vigint.web.access import page_url, stream_url
from vigint.web.app import open_page

log = logging.getLogger(__name__)

FINAL_FLUSH_SECONDS = 0.5  # a usage write takes milliseconds; this is for a slow disk
DRAIN_POLL_SECONDS = 0.1  # how soon a drain ends once its last stream has closed


class Server:
    """The ingest server. `await start()`, then `await stop()`; `port` is known once started."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time):
        """`clock` (Unix seconds) is the time cameras are armed and disarmed at by their schedules and mutes:
        a test's may stand at any date, a clock change included; every other time is the system's."""
        config = settings.server
        self.settings = settings
        self.store = store
        self.metrics = Metrics()
        self.usage = UsageMeter()
        self._hellos = Hellos(self.store, self.metrics, config)
        self._admission = Admission(config.max_pending_hellos, config.max_pending_hellos_per_address)
        self.state = ServerState(Streams(config.max_streams_per_client))
        self.streams = self.state.streams
        self.decode_load = self.state.decode_load
        self.footage = LiveFootage(store, self.streams.live)
        self.cameras = CameraWatch(settings, store, self.streams, clock)
        threads = config.decode_threads or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="decode")
        # Backfills decode in their own threads, at most half as many, at a lower CPU priority: live batches
        # never wait for a thread behind recorded footage, and win the cores when both run.
        self._backfill_pool = low_priority_pool(max(1, threads // 2), "backfill")
        decode_load = self.decode_load
        self.metrics.decode_saturation = lambda: decode_load.saturation
        self._handler = StreamHandler(self.state)
        self._tasks = TaskSet()
        self._stopping = asyncio.Event()
        self._ws: WebSocketServer | None = None

    # Life cycle

    @property
    def tls(self) -> bool:
        return self.settings.server.tls_cert is not None

    @property
    def draining(self) -> bool:
        """Whether it refuses new streams (see `drain`)."""
        return self.state.draining

    async def start(self) -> None:
        """Listen, build the stages, start the background tasks, then accept streams.

        Raises:
            ConfigError: the clip-link secret or the TLS pair cannot be used (before listening).
            VigintError: the address cannot be listened on.
        """
        settings = self.settings
        check_websockets()
        secret = load_link_secret(settings.alerts.link_secret, settings.storage.data_dir, self.store.shared)
        quiet_resource_errors(asyncio.get_running_loop())
        self.open_file_limit = raise_open_file_limit()
        clips = open_clip_storage(settings.storage)
        await self._listen()
        address = f"{socket.gethostname()}:{self.port}"
        self.registry = Registry(self.store, settings.server, address, self.state, self._tasks)
        try:  # the customers' page, on its own port with the stream port's TLS pair
            tls = tls_context(settings.server.tls_cert, settings.server.tls_key)
            self.page = await open_page(settings, self.store, clips, secret, self.registry.cameras_of, tls,
                                        stream_url(settings, self.port), RingKeyframes(self.streams),
                                        RingSources(self.streams))
        except BaseException:
            self._ws.close()
            raise
        self.state.page_url = page_url(settings, self.page.port)
        live_views = self.page.live_views
        # Where the other nodes' pages send this node's cameras' viewers (in its snapshot, see `_document`)
        self._node_page = (settings.web.node_url
                           or f"{'https' if self.tls else 'http'}://{settings.server.host}:{self.page.port}")
        self.metrics.live_viewers = lambda: live_views.viewers
        # The page's and the clip links' address.
        own = f"{'https' if self.tls else 'http'}://{settings.server.host}"
        self.outbox = Outbox(settings, self.store, self.usage, self.metrics, self._pool, secret,
                             self.state.page_url, f"{own}:{self.port}", clips.read, still_name)
        verifier = Verifier(settings.ai, self.usage, self.metrics, self._pool)
        self.desk = IncidentDesk(settings, self.store, self.metrics, self._pool, verifier, self.outbox, clips,
                                 self.node_id)
        self.retention = Retention(settings.storage, self.store, clips)
        self.fleet = FleetMonitor(settings, self.store, self.metrics, self.outbox, self.node_id,
                                  self.state.live, self.registry.everywhere, self._hellos.blocked)
        self._handler.attach(Stages(settings, self.metrics, self.usage, self._hellos, self.registry,
                                    self.desk, self.footage, self.cameras, self._tasks, self._pool,
                                    self._backfill_pool))
        for job in (self._watch_keys(), self._flush_periodically(), self.outbox.run(self._stopping),
                    self.retention.run(self._stopping, self.node_id), self.fleet.run(self._stopping),
                    self.registry.run(self._stopping), self.desk.run(self._stopping),
                    self.cameras.run(self._stopping)):
            self._tasks.spawn(job)
        await self._ws.start_serving()

    async def _listen(self) -> None:
        """Bind the stream port (streams are accepted once `start` has built what they feed)."""
        config = self.settings.server
        try:
            trusted = parse_networks(config.trusted_proxies)
            connections = connection_factory(self._admission, config.tls_cert, config.tls_key,
                                             config.auth_timeout_seconds, trusted)
            self._ws = await serve(self._handler, config.host, config.port,
                                   ssl=None,  # TLS: see connections.py
                                   process_request=Routes(self.metrics, self.state),
                                   max_size=protocol.MAX_HELLO_BYTES,
                                   compression=None,  # H.264 does not deflate: it would only burn CPU
                                   create_connection=connections,
                                   open_timeout=config.auth_timeout_seconds,
                                   logger=websockets_logger(), start_serving=False)
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise VigintError(f"cannot listen on {config.host}:{config.port}: {reason}") from None

    @property
    def port(self) -> int:
        return self._ws.sockets[0].getsockname()[1]

    @property
    def node_id(self) -> str:
        """This server among the nodes sharing the database: its host and port, the same after a restart
        (two processes cannot listen on one port), so `vigint status` shows one node per server, not one per
        run."""
        return self.registry.node_id

    async def drain(self) -> None:
        """Stop taking streams, before `stop()`: /healthz answers 503 and hellos are refused with 1013, for
        `drain_seconds` or until no stream is left, so that a load balancer marks this node down before
        `stop()` closes the open streams and their agents reconnect through it to other nodes."""
        self.state.draining = True
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
        except Exception:
            log.exception("could not write the last usage")
        try:
            await self.store.save_node(self.node_id, self.fleet.started_at, self._document(), time.time(),
                                       stopped=True)
        except Exception:
            log.exception("could not record the shutdown")
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._backfill_pool.shutdown(wait=True, cancel_futures=True)

    # Background tasks

    async def _watch_keys(self) -> None:
        """Close streams whose key stopped being valid, within revocation_check_seconds (see KeyWatch)."""
        watch = KeyWatch(self.store, self._tasks)
        streams = self.streams
        await every(self.settings.server.revocation_check_seconds, self._stopping,
                    lambda: watch.check(streams.open(), time.time()), log,
                    "could not check keys for revocation; will retry")

    async def _flush_periodically(self) -> None:
        async def flush() -> None:
            try:
                await self.flush_usage()
            except Exception as error:
                if not is_busy(error):
                    raise
                # Another process holding the database (a backup, an admin command) is expected: the usage is
                # kept for the next flush, and a traceback would say there is something to fix.
                log.warning("could not write usage: database busy (%s); kept for the next try", error)
                return
            if self.state.streams_ended or self.desk.released:  # megabytes freed: decoders, rings, clips
                self.state.streams_ended = self.desk.released = False
                await asyncio.get_running_loop().run_in_executor(self._pool, trim_heap)

        await every(self.settings.server.usage_flush_seconds, self._stopping, flush, log,
                    "could not write usage; will retry")

    async def flush_usage(self) -> None:
        """Write the usage and last-seen times gathered since the last flush (kept for retry on failure)."""
        now = time.time()
        for key_id, seconds in self.page.live_views.take_seconds().items():
            self.usage.add_live_view(key_id, seconds, now)
        last_used = self._handler.take_usage(now)
        deltas = self.usage.drain()
        try:
            await self.store.record_usage(deltas, last_used)
        except BaseException:
            self.usage.restore(deltas)
            self._handler.keep_usage(last_used)
            raise
        self.state.last_flush = time.monotonic()
        await self.footage.save()
        await self.store.save_node(self.node_id, self.fleet.started_at, self._document(), now)

    def _document(self) -> dict:
        """This node's snapshot for the others: its streams and load, and its page's address."""
        return {**self.fleet.snapshot(), "page_url": self._node_page}
