"""One camera's connection to the server: hello, media, and reconnection with backoff."""

import asyncio
import json
import logging
import socket
import ssl
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from vigint import __version__, keys, protocol
from vigint.agent.backoff import Backoff
from vigint.agent.gops import GopQueue
from vigint.agent.settings import AgentSettings, Camera
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
# The kernel would otherwise grow a send buffer to megabytes: tens of seconds of video queued where the
# agent cannot drop whole GOPs, arriving late. 256 KiB still fills a 10 Mbit/s link at 200 ms of RTT.
SEND_BUFFER_BYTES = 256 * 1024


class Refused(VigintError):
    """The server refused this agent for a reason retrying cannot fix: the whole agent stops."""


def refusal(code: int | None, reason: str, api_key: str) -> Refused | None:
    """Return the error that stops the agent for close `code`, or None if the camera should retry."""
    if code == CloseCode.INVALID_KEY:
        return Refused(f"the server refused the API key {keys.display_prefix(api_key)}… (invalid, revoked or "
                       "expired): contact your Vigint operator")
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


class Uplink:
    """Sends one camera's video; reconnects as needed. `push` is fed by the camera's reader."""

    def __init__(self, camera: Camera, settings: AgentSettings, status: CameraStatus, stopping: asyncio.Event):
        self.camera, self._settings, self.status, self._stopping = camera, settings, status, stopping
        self.queue = GopQueue(settings.max_backlog_seconds)
        self._ready = asyncio.Event()
        self._backoff = Backoff()

    def push(self, packet: Packet) -> None:
        """Queue an access unit from the camera (on the event loop's thread)."""
        self.queue.push(packet)
        self.status.dropped_gops = self.queue.dropped_gops
        self._ready.set()

    def wake(self) -> None:
        """Make a waiting sender look again (the source ended, or the agent is stopping)."""
        self._ready.set()

    async def run(self, source_done: asyncio.Event) -> None:
        """Stream until the source is done and its video sent, or the agent stops.

        Raises:
            Refused: the key or the hello was refused; retrying cannot help.
        """
        while not self._stopping.is_set():
            if source_done.is_set() and not len(self.queue):
                return
            if not len(self.queue):
                await self._wait()
                continue
            delay = await self._connect_and_stream(source_done)
            if delay is None or source_done.is_set():
                return  # finished, or the source is gone too: its last frames are not worth a wait
            self.status.state, self.status.reconnects = State.WAITING, self.status.reconnects + 1
            log.info("camera %s: reconnecting in %.1f s", self.camera.name, delay)
            await wait_for_event(self._stopping, delay)

    async def _wait(self) -> None:
        self._ready.clear()
        await self._ready.wait()

    async def _connect_and_stream(self, source_done: asyncio.Event) -> float | None:
        """Stream over one connection; return the delay before reconnecting, or None when finished."""
        self.status.state, self.status.detail = State.CONNECTING, ""
        try:
            async with connect(self._settings.server_url, ssl=ssl_context(self._settings), compression=None,
                               open_timeout=HANDSHAKE_TIMEOUT_SECONDS, close_timeout=CLOSE_TIMEOUT_SECONDS,
                               max_size=protocol.MAX_MEDIA_BYTES) as connection:
                sock = connection.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
                await self._hello(connection)
                await self._stream(connection, source_done)
            return None
        except ConnectionClosed as closed:
            code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "connection lost")
            if error := refusal(code, reason, self._settings.api_key):
                raise error from None
            self.status.detail = f"closed {code}: {reason}" if code else reason
            return reconnect_delay(self._backoff, code, reason, time.monotonic())
        except ssl.SSLCertVerificationError as error:
            raise Refused(f"the server's TLS certificate is not trusted ({error.verify_message}): "
                          "pass --ca-cert with the server's certificate") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
            self.status.detail = f"server unreachable: {getattr(error, 'strerror', None) or error}"
            return self._backoff.next_delay(time.monotonic())

    async def _hello(self, connection: ClientConnection) -> None:
        await connection.send(protocol.hello(self._settings.api_key, self.camera.name, f"vigint-agent/{__version__}"))
        welcome = json.loads(await asyncio.wait_for(connection.recv(), HANDSHAKE_TIMEOUT_SECONDS))
        if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
            raise Refused("the server answered the hello with something other than a welcome: is the URL right?")
        self.queue.restart()  # the server's new decoder must start at a keyframe
        self._backoff.connected(time.monotonic())
        self.status.state, self.status.detail = State.STREAMING, ""
        log.info("camera %s: streaming to %s as client %s", self.camera.name, self._settings.server_url,
                 welcome.get("client_id"))

    async def _stream(self, connection: ClientConnection, source_done: asyncio.Event) -> None:
        sender = asyncio.create_task(self._send(connection, source_done))
        receiver = asyncio.create_task(self._receive(connection))
        # Stopping interrupts a send that waits on a slow link, instead of waiting for the link.
        stopper = asyncio.create_task(self._stopping.wait())
        finished, _ = await asyncio.wait({sender, receiver, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sender, receiver, stopper):
            if task not in finished:
                task.cancel()
        await asyncio.gather(sender, receiver, stopper, return_exceptions=True)
        if stopper in finished:
            await _close_now(connection)
        if receiver in finished:
            receiver.result()  # raises the ConnectionClosed that ended the stream
        if sender in finished:
            sender.result()

    async def _send(self, connection: ClientConnection, source_done: asyncio.Event) -> None:
        while not self._stopping.is_set():
            packet = self.queue.pop()
            if packet is None:
                if source_done.is_set():
                    return
                await self._wait()
                continue
            message = protocol.media(packet.pts, packet.dts, packet.data)
            await connection.send(message)  # waits while the link is slow: the queue then drops GOPs
            self.status.sent(len(message))

    async def _receive(self, connection: ClientConnection) -> None:
        while True:
            message = await connection.recv()
            try:
                notice = json.loads(message) if isinstance(message, str) else {}
            except ValueError:
                continue
            if isinstance(notice, dict) and notice.get("type") == "incident":
                self.status.incidents += 1
                log.warning("camera %s: incident reported by the server: %s", self.camera.name,
                            notice.get("description") or notice.get("kind") or "see your email")


async def _close_now(connection: ClientConnection) -> None:
    """Close within CLOSE_TIMEOUT_SECONDS, then drop the connection.

    websockets applies its close timeout only once the video queued before the close frame has drained,
    which on a slow link takes as long as the link needs: an agent asked to stop would wait for it.
    """
    try:
        await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_SECONDS)
    except TimeoutError:
        connection.transport.abort()
