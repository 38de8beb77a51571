"""One camera's live connection to the server: hello, media, and reconnection with backoff.

The connection helpers here serve the camera's backfill connection too (backfill.py)."""

import asyncio
import json
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from vigint import __version__, keys, protocol
from vigint.agent import diagnosis
from vigint.agent.backoff import Backoff
from vigint.agent.gops import GopQueue
from vigint.agent.settings import AgentSettings, Camera
from vigint.agent.spool import Spool
from vigint.agent.standing import KeyStanding
from vigint.agent.status import CameraStatus, State
from vigint.errors import VigintError
from vigint.media import Packet
from vigint.protocol import CloseCode
from vigint.tasks import wait_for_event

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_SECONDS = 10.0
# The server answers a close at once on a healthy link; on a slow one the close frame waits behind
# queued video, and an agent asked to stop should not wait for that.
CLOSE_TIMEOUT_SECONDS = 1.0
# A stopping agent sends what it has recorded before it closes, so that none of it is spooled and sent again
# as footage the server never saw; a healthy link needs milliseconds, a slow one gets this long before it is
# spooled.
STOP_FLUSH_SECONDS = 2.0
# The kernel would otherwise grow a send buffer to megabytes: tens of seconds of video queued where the
# agent cannot drop whole GOPs, arriving late. 256 KiB still fills a 10 Mbit/s link at 200 ms of RTT.
SEND_BUFFER_BYTES = 256 * 1024
AGENT = f"vigint-agent/{__version__}"


class Refused(VigintError):
    """The server refused this agent, or the agent the server, for a reason retrying cannot fix: the whole
    agent stops, with its own exit code, so that a service manager does not start it again
    (scripts/vigint-agent.service).
    """

    exit_code = 3


class KeyRefused(Refused):
    """The server refused the API key (unknown, revoked or expired): fatal only for a key it never welcomed
    (standing.py)."""


def refusal(code: int | None, reason: str, api_key: str) -> Refused | None:
    """Return the error that stops the agent for close `code`, or None if the camera should retry."""
    if code == CloseCode.INVALID_KEY:
        return KeyRefused(f"the server refused the API key {keys.display_prefix(api_key)}… "
                          "(invalid, revoked or expired): contact your Vigint operator")
    if code == CloseCode.BAD_HELLO:
        return Refused(f"the server did not accept this agent's hello ({reason}): update vigint")
    return None


def reconnect_delay(backoff: Backoff, code: int | None, reason: str, now: float) -> float:
    """Return how long to wait before reconnecting after the server closed the stream with `code` at `now`.

    1001 is a node going away (stopping, or handing its streams on after draining): another node, or
    the same one restarted, takes the stream at once, so the wait is short whatever failed before. A
    4429 waits at least the delay its reason names; anything else backs off.
    """
    if code == CloseCode.GOING_AWAY:
        return backoff.soon()
    delay = backoff.next_delay(now)
    if code == CloseCode.TOO_MANY_FAILURES and (wait := protocol.retry_delay(reason)):
        delay = max(delay, wait)
    return delay


def ssl_context(settings: AgentSettings) -> ssl.SSLContext | None:
    """Return the TLS settings for a wss:// server, trusting `--ca-cert` when given."""
    if not settings.server_url.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=settings.ca_cert)


async def run_connection(settings: AgentSettings, backoff: Backoff,
                         session: Callable[[ClientConnection], Awaitable[None]]) -> tuple[float | None, str]:
    """Connect to the server and run `session` on the connection; shared by live video and backfill.

    Returns (None, "") when the session ended by itself, else the delay before trying again and what went
    wrong, for the status view.

    Raises:
        Refused: the key or the hello was refused, the server's certificate is not trusted or not for its
            host, or the URL's scheme does not match the server (wss:// for a plain server, ws:// for TLS).
    """
    try:
        async with connect(settings.server_url, ssl=ssl_context(settings), compression=None,
                           open_timeout=HANDSHAKE_TIMEOUT_SECONDS, close_timeout=CLOSE_TIMEOUT_SECONDS,
                           max_size=protocol.MAX_MEDIA_BYTES) as connection:
            sock = connection.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            await session(connection)
        return None, ""
    except ConnectionClosed as closed:
        code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "connection lost")
        if error := refusal(code, reason, settings.api_key):
            raise error from None
        detail = f"closed {code}: {reason}" if code else reason
        return reconnect_delay(backoff, code, reason, time.monotonic()), detail
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
        if problem := await diagnosis.explain(settings.server_url, settings.ca_cert, error):
            raise Refused(problem) from None
        return backoff.next_delay(time.monotonic()), f"server unreachable: {diagnosis.reason(error)}"


async def greet(connection: ClientConnection, hello: str) -> dict:
    """Send `hello` and return the server's welcome.

    Raises:
        Refused: the server answered with something other than a welcome.
        ConnectionClosed: the server refused the hello.
    """
    await connection.send(hello)
    welcome = json.loads(await asyncio.wait_for(connection.recv(), HANDSHAKE_TIMEOUT_SECONDS))
    if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
        raise Refused("the server answered the hello with something other than a welcome: is the URL right?")
    return welcome


async def run_until_stopped(connection: ClientConnection, stopping: asyncio.Event, *jobs: Coroutine,
                            flush_seconds: float = 0.0) -> bool:
    """Run `jobs` on `connection` until the first ends (raising what it raised) or the agent stops; then
    close.

    Stopping interrupts a send that waits on a slow link, instead of waiting for the link; the first job is
    given `flush_seconds` to end by itself first. Returns whether the server answered the close: then it has
    read everything sent before it.
    """
    tasks = [asyncio.create_task(job) for job in jobs]
    stopper = asyncio.create_task(stopping.wait())
    finished, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if finished == {stopper} and flush_seconds:
        finished |= (await asyncio.wait(tasks, timeout=flush_seconds, return_when=asyncio.FIRST_COMPLETED))[0]
    for task in (*tasks, stopper):
        if task not in finished:
            task.cancel()
    await asyncio.gather(*tasks, stopper, return_exceptions=True)
    for task in tasks:
        if task in finished:
            task.result()  # raises the ConnectionClosed that ended the session
    return await _close_now(connection)


class Uplink:
    """Sends one camera's live video; reconnects as needed; hands what it cannot send to the spool.

    `push` is fed by the camera's reader. `changed` is set whenever the live queue or link changes, for
    the camera's backfill, which sends only while live video keeps up; it shares the uplink's settings, stop,
    spool and key standing.
    """

    def __init__(self, camera: Camera, settings: AgentSettings, status: CameraStatus, stopping: asyncio.Event,
                 spool: Spool, standing: KeyStanding):
        self.camera = camera
        self.settings = settings
        self.status = status
        self.stopping = stopping
        self.spool = spool
        self.standing = standing
        self.queue = GopQueue(settings.max_backlog_seconds)
        self.changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._backoff = Backoff()

    def push(self, packet: Packet) -> None:
        """Queue an access unit from the camera (on the event loop's thread); none once the agent stops (the
        reader notices the stop a frame later: what it recorded after it would make the GOP sent last
        incomplete)."""
        if self.stopping.is_set():
            return
        self._store(self.queue.push(packet))
        self._ready.set()

    def _store(self, gops: list[list[Packet]]) -> None:
        """Spool GOPs not sent live; drop them while the key is refused (footage of a revoked client is not
        kept)."""
        for gop in gops:
            if not self.standing.refused:
                self.spool.write(self.camera.name, gop)
        self.changed.set()

    def wake(self) -> None:
        """Make a waiting sender look again (the source ended, or the agent is stopping)."""
        self._ready.set()
        self.changed.set()

    async def run(self, source_done: asyncio.Event) -> None:
        """Stream until the source is done and its video sent, or the agent stops (sending what it recorded,
        for STOP_FLUSH_SECONDS at most); then spool what the server is not known to have.

        Raises:
            Refused: the hello, or a key the server never welcomed, was refused; retrying cannot help.
        """
        try:
            await self._run(source_done)
        finally:
            self._store(self.queue.drain())

    async def _run(self, source_done: asyncio.Event) -> None:
        while not self.stopping.is_set():
            if source_done.is_set() and not len(self.queue):
                return
            if not len(self.queue):
                await self._wait()
                continue
            if not self.standing.refused:  # a refused camera's tries are no news: its state stays as it is
                self.status.state = State.CONNECTING
                self.status.detail = ""
            try:
                delay, detail = await run_connection(self.settings, self._backoff, self._session(source_done))
            except KeyRefused as error:
                # raises if it never worked: the agent stops
                self.standing.refuse(error, self.status.key_expires_at)
                self._store(self.queue.pause())
                self.status.state = State.REFUSED
                self.status.detail = self.standing.detail
                await self.standing.turn()
                continue
            if delay is None or source_done.is_set():
                return  # finished, or the source is gone too: its last frames are not worth a wait
            self._store(self.queue.pause())
            self.status.state = State.WAITING
            self.status.detail = detail
            self.status.reconnects += 1
            log.info("camera %s: reconnecting in %.1f s", self.camera.name, delay)
            await wait_for_event(self.stopping, delay)

    async def _wait(self) -> None:
        self._ready.clear()
        await self._ready.wait()

    def _session(self, source_done: asyncio.Event) -> Callable[[ClientConnection], Awaitable[None]]:
        async def session(connection: ClientConnection) -> None:
            await self._hello(connection)
            if await run_until_stopped(connection, self.stopping, self._send(connection, source_done),
                                       self._receive(connection), flush_seconds=STOP_FLUSH_SECONDS):
                self.queue.delivered()
        return session

    async def _hello(self, connection: ClientConnection) -> None:
        spooled = self.spool.stats(self.camera.name)
        spooled_seconds = spooled.seconds if spooled.gops else None
        hello = protocol.hello(self.settings.api_key, self.camera.name, AGENT,
                               spooled_seconds=spooled_seconds)
        welcome = await greet(connection, hello)
        self.standing.welcomed()
        self.queue.resume()  # the server's new decoder must start at a keyframe
        self.changed.set()
        self._backoff.connected(time.monotonic())
        self.status.state = State.STREAMING
        self.status.detail = ""
        self.status.key_expires_at = protocol.key_expiry(welcome)
        log.info("camera %s: streaming to %s as client %s", self.camera.name, self.settings.server_url,
                 welcome.get("client_id"))

    async def _send(self, connection: ClientConnection, source_done: asyncio.Event) -> None:
        """Send the queue as it fills; once the source is done or the agent stops, until it is empty."""
        while True:
            packet = self.queue.pop()
            self.changed.set()
            if packet is None:
                if source_done.is_set() or self.stopping.is_set():
                    return
                await self._wait()
                continue
            message = protocol.media(packet.pts, packet.dts, packet.data)
            await connection.send(message)  # waits while the link is slow: the queue then spools GOPs
            self.status.sent(len(message))

    async def _receive(self, connection: ClientConnection) -> None:
        while True:
            message = await connection.recv()
            try:
                notice = json.loads(message) if isinstance(message, str) else {}
            except ValueError:
                continue
            if isinstance(notice, dict) and notice.get("type") == protocol.KEY_NOTICE:
                self.status.key_expires_at = protocol.key_expiry(notice)
            if isinstance(notice, dict) and notice.get("type") == "incident":
                self.status.incidents += 1
                # routine: what the camera is for; the customer is told by the server's alert
                log.info("camera %s: incident reported by the server: %s", self.camera.name,
                         notice.get("description") or notice.get("kind") or "see your email")


async def _close_now(connection: ClientConnection) -> bool:
    """Close within CLOSE_TIMEOUT_SECONDS, then drop the connection; return whether the server answered our
    close.

    websockets applies its close timeout only once the video queued before the close frame has drained, which
    on a slow link takes as long as the link needs: an agent asked to stop would wait for it. The server reads
    our close after everything sent before it, so its answer says that it has all of it; a close the server
    started says nothing of what it read.
    """
    try:
        await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_SECONDS)
    except TimeoutError:
        connection.transport.abort()
        return False
    return connection.protocol.close_rcvd is not None and connection.protocol.close_rcvd_then_sent is False
