"""`vigint serve`: one asyncio event loop taking authenticated camera streams.

Per connection: hello → authenticate → register the session under its client and camera → receive
media into the packet ring and the decode queue. Decoding runs in a thread pool, never on the loop.
Background tasks close streams whose key was revoked or expired (by the admin CLI, another process),
and flush usage. HTTP on the same port answers /healthz and /metrics.
"""

import asyncio
import ctypes
import dataclasses
import errno
import http
import logging
import math
import os
import resource
import secrets
import ssl
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import parse_qs

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from vigint import protocol
from vigint.alerts.links import load_link_secret
from vigint.analysis.decoder import DecodeResult, StreamDecoder
from vigint.analysis.events import EventTracker
from vigint.analysis.intake import Intake, Limits
from vigint.analysis.motion import MotionDetector
from vigint.analysis.ring import PacketRing
from vigint.billing.meter import UsageMeter
from vigint.config import Settings
from vigint.errors import ConfigError, VigintError
from vigint.fleet.monitor import FleetMonitor
from vigint.incidents.desk import IncidentDesk, OpenIncident
from vigint.ingest.admission import Admission
from vigint.ingest.auth import authenticate
from vigint.ingest.connections import (
    AdmittedConnection,
    check_websockets,
    connection_factory,
    websockets_logger,
)
from vigint.limiter import RateLimiter
from vigint.media import Packet
from vigint.metrics import Metrics
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.store import ApiKey, KeyState, Store
from vigint.tasks import TaskSet, wait_for_event

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Session:
    """One authenticated camera stream: reachable only through its own connection's handler."""

    connection: AdmittedConnection
    key: ApiKey
    camera: str
    packets: PacketRing
    decoder: StreamDecoder
    intake: Intake
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    accounted_until: float = field(default_factory=time.time)
    checked: bool = False  # its key was looked up again after registration
    decode_task: asyncio.Task | None = None
    detector: MotionDetector = field(default_factory=MotionDetector)
    tracker: EventTracker = field(default_factory=EventTracker)
    incident: OpenIncident | None = None
    video_size: tuple[int, int] | None = None
    frames_decoded: int = 0
    ended: bool = False
    address: str = ""
    connected_at: float = field(default_factory=time.time)

    @property
    def client_id(self) -> int:
        return self.key.client_id

    @property
    def welcomed(self) -> bool:
        """Whether the welcome went out: from then on the stream is billed and decoded."""
        return self.decode_task is not None


FINAL_FLUSH_SECONDS = 0.5  # a usage write takes milliseconds; this is for a slow disk
# How often running out of file descriptors is logged: every accept fails while it lasts.
EMFILE_LOG_SECONDS = 60.0


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; return the limit in force.

    Every stream and every waiting socket holds a descriptor; systemd's default soft limit (1024) is
    meant to be raised by programs that need more, up to the hard limit the operator set.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def _libc_malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim with
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def trim_heap() -> None:
    """Give the heap's free memory back to the operating system (glibc otherwise keeps it).

    An ended stream's decoder frees megabytes of frames that glibc keeps in its arenas: measured in review,
    a reconnect flood left 1.1 GB of RSS that a trim brought back to 13 MB. Run in a worker thread.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _quiet_resource_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log running out of file descriptors as one line a minute, not one traceback per failed accept."""
    last_logged = -EMFILE_LOG_SECONDS

    def handle(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        nonlocal last_logged
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            if time.monotonic() - last_logged >= EMFILE_LOG_SECONDS:
                last_logged = time.monotonic()
                log.error("cannot accept connections: %s (open-file limit %d); new agents wait until "
                          "descriptors free up", os.strerror(error.errno), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


class Server:
    """The ingest server. `await start()`, then `await stop()`; `port` is known once started."""

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.metrics = Metrics()
        self.usage = UsageMeter()
        self._limiter = RateLimiter(settings.server.max_auth_failures, settings.server.auth_failure_window_seconds)
        self._admission = Admission(settings.server.max_pending_hellos, settings.server.max_pending_hellos_per_address)
        self._limits = Limits(settings.server.max_picture_width, settings.server.max_picture_height,
                              settings.server.max_macroblocks, settings.server.max_nal_units,
                              settings.server.max_bad_packets, settings.server.max_decode_backlog,
                              settings.server.max_decode_backlog_bytes)
        self._sessions: dict[int, dict[str, Session]] = {}
        # Streams per client that closed but still drain their decoder: bounded like open ones, or a
        # client reconnecting in a loop would keep any number of decoders busy.
        self._finishing: Counter[int] = Counter()
        self._streams_ended = False  # since the heap was last trimmed
        self._last_used: dict[int, float] = {}
        self._last_flush = time.monotonic()
        self._pool = ThreadPoolExecutor(settings.server.decode_threads or os.cpu_count() or 2,
                                        thread_name_prefix="decode")
        self._tasks = TaskSet()
        self._stopping = asyncio.Event()
        self._ws: WebSocketServer | None = None

    # Life cycle

    def _ssl_context(self) -> ssl.SSLContext | None:
        cert, key = self.settings.server.tls_cert, self.settings.server.tls_key
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            raise ConfigError("[server] TLS needs both tls_cert and tls_key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"cannot load TLS certificate {cert} / key {key}: {error}") from None
        return context

    @property
    def tls(self) -> bool:
        return self.settings.server.tls_cert is not None

    async def start(self) -> None:
        """Listen, and start the background tasks.

        Raises:
            ConfigError: the clip-link secret or the TLS pair cannot be used (before listening).
            VigintError: the address cannot be listened on.
        """
        config = self.settings.server
        check_websockets()
        secret = load_link_secret(self.settings.alerts.link_secret, self.settings.storage.data_dir)
        _quiet_resource_errors(asyncio.get_running_loop())
        self.open_file_limit = raise_open_file_limit()
        try:
            connections = connection_factory(self._admission, self._ssl_context(), config.auth_timeout_seconds)
            self._ws = await serve(self._handle, config.host, config.port, ssl=None,  # TLS: see connections.py
                                   process_request=self._process_request, max_size=protocol.MAX_HELLO_BYTES,
                                   compression=None,  # H.264 does not deflate: it would only burn CPU
                                   create_connection=connections,
                                   open_timeout=config.auth_timeout_seconds,
                                   logger=websockets_logger())
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise VigintError(f"cannot listen on {config.host}:{config.port}: {reason}") from None
        scheme = "https" if self.tls else "http"
        self.desk = IncidentDesk(self.settings, self.store, self.usage, self.metrics, self._pool, secret,
                                 f"{scheme}://{config.host}:{self.port}")
        self._watcher = self._tasks.spawn(self._watch_keys())
        self._tasks.spawn(self._flush_periodically())
        self.fleet = FleetMonitor(self)
        self._tasks.spawn(self.desk.deliver_alerts(self._stopping))
        self._tasks.spawn(self.desk.enforce_retention(self._stopping))
        self._tasks.spawn(self.fleet.run(self._stopping))

    @property
    def port(self) -> int:
        return self._ws.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting, close streams with 1001, wait for them and for incidents being recorded, flush
        usage; past `shutdown_timeout_seconds` in all, cancel what is left (uvicorn's order)."""
        timeout = self.settings.server.shutdown_timeout_seconds
        deadline = time.monotonic() + timeout
        self._ws.close(close_connections=True, code=CloseCode.GOING_AWAY, reason="server shutting down")
        try:
            await asyncio.wait_for(self._ws.wait_closed(), timeout)
        except TimeoutError:
            log.warning("streams did not close within %.0f s; stopping anyway", timeout)
        # The watcher only reads and may be cancelled anywhere; the flusher writes, so it is asked to stop
        # and makes its last flush itself rather than be cancelled half-way through a transaction.
        self._watcher.cancel()
        await self.desk.drain(max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        self.desk.wake_sender()
        # However late, the flusher gets a moment for the final usage write: cancelling it loses billing.
        await self._tasks.drain(max(FINAL_FLUSH_SECONDS, deadline - time.monotonic()))
        try:
            await self.store.save_server_status({**self.fleet.snapshot(), "stopped": True}, time.time())
        except Exception:  # noqa: BLE001 - only `vigint status` would show a stale state
            log.exception("could not record the shutdown")
        self._pool.shutdown(wait=True, cancel_futures=True)

    # HTTP

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path == protocol.PATH:
            return None
        if path.startswith("/clips/"):
            return await self._serve_clip(connection, path.removeprefix("/clips/"), parse_qs(query))
        if path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/metrics":
            response = connection.respond(http.HTTPStatus.OK, self.metrics.render(
                self.streams_by_client(), time.monotonic() - self._last_flush))
            del response.headers["Content-Type"]  # websockets' Headers keeps every value set: replace, not add
            response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    async def _serve_clip(self, connection: ServerConnection, incident_id: str, query: dict) -> Response:
        clip = await self.desk.clip(incident_id, query.get("exp", [""])[0], query.get("sig", [""])[0])
        if clip is None:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "this link is invalid or has expired\n")
        return Response(http.HTTPStatus.OK, "OK", Headers([
            ("Content-Type", "video/mp4"), ("Content-Length", str(len(clip))), ("Cache-Control", "private, no-store"),
        ]), clip)

    def streams_by_client(self) -> dict[int, int]:
        """Return how many streams each client has open."""
        return dict(Counter(session.client_id for session in self.all_sessions()))

    def refused_addresses(self, now: float) -> list[tuple[str, int]]:
        """Return the addresses blocked for failed hellos now, with their failure counts."""
        return self._limiter.blocked(now)

    def sessions(self, client_id: int) -> dict[str, Session]:
        """Return a client's sessions by camera, open or still finishing (for tests and tools)."""
        return dict(self._sessions.get(client_id, {}))

    # Connections

    async def _handle(self, connection: AdmittedConnection) -> None:
        session, closing = None, None
        try:
            key, camera = await self._authenticate(connection)
            session = self._register(connection, key, camera)
            await self._welcome(session)
            await self._receive(session)
        except Exception as error:  # noqa: BLE001 - every failure ends in a close code, see _close_for
            # The close frame goes out at once, but the stream ends before the closing handshake does: a
            # sender that stops reading would otherwise hold its name, billing and decoder for close_timeout.
            closing = asyncio.ensure_future(connection.close(*self._close_for(error)))
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

    def _refuse(self, address: str, reason: str, violation: ProtocolViolation) -> ProtocolViolation:
        """Count a refused hello against its address; past the limit, answer 4429 with the delay instead."""
        now = time.time()
        wait = self._limiter.retry_after(address, now)
        self._limiter.record(address, now)
        self.metrics.auth_failures[reason] += 1
        if wait > 0:
            self.metrics.auth_failures["rate_limited"] += 1
            return ProtocolViolation(CloseCode.TOO_MANY_FAILURES, f"too many failed attempts; retry in {math.ceil(wait)} s")
        return violation

    async def _authenticate(self, connection: AdmittedConnection) -> tuple[ApiKey, str]:
        """Read and check the hello; return the key it authenticates and its camera name.

        Only refused keys and malformed hellos count against the address: a hello that merely comes
        late is no guess, and a valid key is welcomed even from a blocked address (keys are 256-bit,
        there is nothing to guess), so one misconfigured agent cannot lock out its neighbours' cameras.
        """
        address = connection.remote_address[0]
        try:
            message = await asyncio.wait_for(connection.recv(), self.settings.server.auth_timeout_seconds)
            connection.spoke()
        except TimeoutError:
            self.metrics.auth_failures["timeout"] += 1
            raise ProtocolViolation(CloseCode.HELLO_TIMEOUT, "no hello in time") from None
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG:
                self._refuse(address, "too_large", ProtocolViolation(CloseCode.MESSAGE_TOO_BIG, ""))
            raise
        try:
            hello = protocol.parse_hello(message)
        except ProtocolViolation as violation:
            raise self._refuse(address, "bad_hello", violation) from None
        key = await authenticate(self.store, hello.key)
        if key is None:
            raise self._refuse(address, "invalid_key",
                               ProtocolViolation(CloseCode.INVALID_KEY, protocol.INVALID_KEY_REASON))
        return key, hello.camera

    def _register(self, connection: AdmittedConnection, key: ApiKey, camera: str) -> Session:
        """Reserve the camera name for this connection (billing and decoding start at the welcome).

        A stream that has ended but is still flushing its decoder no longer holds its name or its slot:
        its camera can reconnect at once.
        """
        # No await from the checks to the insertion: two hellos cannot both pass them.
        cameras = self._sessions.setdefault(key.client_id, {})
        if camera in cameras and not cameras[camera].ended:
            raise ProtocolViolation(CloseCode.OVER_LIMIT, f"camera {camera!r} is already streaming")
        if self._finishing[key.client_id] >= self.settings.server.max_streams_per_client:
            raise ProtocolViolation(CloseCode.OVER_LIMIT, "too many of this client's streams are still closing")
        if sum(not session.ended for session in cameras.values()) >= self.settings.server.max_streams_per_client:
            raise ProtocolViolation(CloseCode.OVER_LIMIT, f"over the limit of "
                                    f"{self.settings.server.max_streams_per_client} streams for this client")
        buffers = self.settings.buffers
        session = Session(connection, key, camera,
                          PacketRing(buffers.long_buffer_seconds, buffers.max_packet_buffer_bytes),
                          StreamDecoder(buffers.analysis_width, buffers.analysis_fps,
                                        self._limits.max_width * self._limits.max_height),
                          Intake(self._limits, partial(self._undecodable, key.client_id, camera)),
                          detector=self._detector(key.client_id, camera), tracker=EventTracker(self.settings.motion),
                          address=connection.remote_address[0])
        cameras[camera] = session
        return session

    async def _welcome(self, session: Session) -> None:
        """Send the welcome; from then on the stream is billed, decoded and may send media."""
        connection = session.connection
        await connection.send(protocol.welcome(session.client_id, session.camera, session.id))
        connection.raise_message_limit(protocol.MAX_MEDIA_BYTES)
        session.accounted_until = time.time()
        self._last_used[session.key.id] = session.accounted_until
        session.decode_task = self._tasks.spawn(self._decode(session))
        log.info("client %d key %s camera %r connected from %s", session.client_id, session.key.prefix,
                 session.camera, session.address)

    def _detector(self, client_id: int, camera: str) -> MotionDetector:
        tuning = self.settings.camera(client_id, camera)
        motion = dataclasses.replace(self.settings.motion, sensitivity=tuning.sensitivity)
        return MotionDetector(motion, tuning.masks)

    async def _end_session(self, session: Session) -> None:
        """Every way out of a stream ends here: its billing stops and its camera name is free at once; its
        decoder is flushed (an unflushed threaded decoder can hang the exit), then it is unregistered."""
        session.ended = True
        self._finishing[session.client_id] += 1
        try:
            await self._finish(session)
        finally:
            self._finishing[session.client_id] -= 1
            if not self._finishing[session.client_id]:
                del self._finishing[session.client_id]

    async def _finish(self, session: Session) -> None:
        """Stop the stream's billing, drain and flush its decoder, then unregister it."""
        self._streams_ended = True
        if session.welcomed:
            self._bill(session, time.time())
            session.queue.put_nowait(None)
            await asyncio.gather(session.decode_task, return_exceptions=True)  # its failure was logged there
            log.info("client %d camera %r disconnected (%s)", session.client_id, session.camera,
                     session.connection.close_code)
        self.desk.stream_ended(session)  # after the last frames were analysed: they may extend the incident
        cameras = self._sessions.get(session.client_id, {})
        if cameras.get(session.camera) is session:  # unless a reconnection of the camera took its place
            del cameras[session.camera]
        if not cameras:
            self._sessions.pop(session.client_id, None)

    # Media

    async def _receive(self, session: Session) -> None:
        async for message in session.connection:
            if isinstance(message, str):
                kind = protocol.parse_control(message)
                log.debug("client %d camera %r sent control message %r (ignored)", session.client_id,
                          session.camera, kind)
                continue
            self.metrics.bytes_received += len(message)
            self.usage.add_bytes(session.key.id, len(message), time.time())
            packet = session.intake.accept(message)
            if packet is None:
                continue
            session.packets.append(packet)
            if session.intake.admit(packet):
                session.queue.put_nowait((packet, time.monotonic()))

    def _undecodable(self, client_id: int, camera: str, count: int, first: bool) -> None:
        """Count messages of a stream that cannot be decoded (its intake decides which).

        Given the ids, not the session: a callback held by the session's own intake must not make a
        reference cycle, which would keep each ended stream's decoder alive until a full GC pass.
        """
        self.metrics.decode_errors += count
        if first:  # once per stream: a broken camera must not flood the log
            log.warning("client %d camera %r sent media that cannot be decoded; waiting for a keyframe",
                        client_id, camera)

    async def _decode(self, session: Session) -> None:
        """Feed the stream's decoder until its end; if decoding fails, only this stream is closed."""
        try:
            await self._decode_until_end(session)
        except Exception:  # noqa: BLE001 - a bug must cost one stream, never the server or a ghost session
            log.exception("decoding client %d camera %r failed; closing that stream", session.client_id,
                          session.camera)
            self._tasks.spawn(session.connection.close(CloseCode.INTERNAL_ERROR, "stream failed"))

    async def _decode_until_end(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await session.queue.get()]
            if batch[0] is not None:
                # Gather a few packets per hand-off to a worker thread: each costs about as much as
                # the Python side of a packet, while analysis does not need frames sooner than this.
                await asyncio.sleep(self.settings.server.decode_batch_seconds)
            while not session.queue.empty():
                batch.append(session.queue.get_nowait())
            finished = batch[-1] is None
            items = [item for item in batch if item is not None]
            if items:
                packets = [packet for packet, _ in items]
                session.intake.dequeued(packets)
                result = await loop.run_in_executor(self._pool, self._analyse, session, packets)
                self._absorb(session, result)
                done = time.monotonic()
                for _, received in items:
                    self.metrics.decode_lag.observe(done - received)
            if finished:
                self._absorb(session, await loop.run_in_executor(self._pool, session.decoder.flush))
                return

    @staticmethod
    def _analyse(session: Session, packets: list[Packet]) -> DecodeResult:
        """Decode and look for motion (in a worker thread; one batch of a stream at a time)."""
        result = session.decoder.decode(packets)
        result.readings = [(frame.pts, session.detector.update(frame.pixels).motion) for frame in result.frames]
        return result

    def _absorb(self, session: Session, result: DecodeResult) -> None:
        if result.size:
            session.video_size = result.size
        self.desk.observe(session, result.readings)
        self.metrics.frames_decoded += result.decoded
        session.frames_decoded += result.decoded
        self.usage.add_frames(session.key.id, result.decoded, time.time())
        try:
            session.intake.decoded(result.decoded, result.errors)
        except ProtocolViolation as violation:
            self._tasks.spawn(session.connection.close(violation.code, violation.reason))

    # Background tasks

    def all_sessions(self) -> list[Session]:
        """Return every open session (not those finishing after their connection closed)."""
        return [session for cameras in self._sessions.values() for session in cameras.values() if not session.ended]

    async def _watch_keys(self) -> None:
        """Close streams whose key stopped being valid, within revocation_check_seconds."""
        version = None
        while True:
            await asyncio.sleep(self.settings.server.revocation_check_seconds)
            try:
                version = await self._close_invalid_streams(version)
            except Exception:  # noqa: BLE001 - a locked or busy database must not stop the watch
                log.exception("could not check keys for revocation; will retry")

    async def _close_invalid_streams(self, version: int | None) -> int:
        """Close streams whose key expired, or was revoked or deleted since `version`; return the new version."""
        sessions, now = self.all_sessions(), time.time()
        invalid = {s for s in sessions if s.key.state(now) is not KeyState.ACTIVE}
        latest = await self.store.data_version()
        # New sessions are checked once even without a change: a revocation committed while their hello
        # was being authenticated may already have been seen by the previous check.
        to_check = sessions if latest != version else [s for s in sessions if not s.checked]
        if to_check:
            records = await self.store.keys_by_id({s.key.id for s in to_check})
            invalid |= {s for s in to_check
                        if s.key.id not in records or records[s.key.id].state(now) is not KeyState.ACTIVE}
            for session in to_check:
                session.checked = True
        for session in invalid:
            log.info("client %d key %s is no longer valid: closing camera %r", session.client_id,
                     session.key.prefix, session.camera)
            self._tasks.spawn(session.connection.close(CloseCode.INVALID_KEY, protocol.INVALID_KEY_REASON))
        return latest

    async def _flush_periodically(self) -> None:
        while True:
            await wait_for_event(self._stopping, self.settings.server.usage_flush_seconds)
            try:
                await self.flush_usage()
            except Exception:  # noqa: BLE001 - the counters were kept; the next flush retries
                log.exception("could not write usage; will retry")
            if self._stopping.is_set():
                return
            if self._streams_ended:
                self._streams_ended = False
                await asyncio.get_running_loop().run_in_executor(self._pool, trim_heap)

    def _bill(self, session: Session, now: float) -> None:
        """Count a stream's time up to `now` and mark its key used then."""
        self.usage.add_stream_time(session.key.id, session.accounted_until, now)
        session.accounted_until = now
        self._last_used[session.key.id] = now

    async def flush_usage(self) -> None:
        """Write the usage and last-seen times gathered since the last flush (kept for retry on failure)."""
        now = time.time()
        for session in self.all_sessions():
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
        await self.store.save_server_status(self.fleet.snapshot(), now)
