"""The adapter between the server and websockets' asyncio connections: the one place that leans on them.

Three things websockets has no public way to do (tested with websockets 16 and 17; `check_websockets`
fails at start, with what to install, if the internals used here are missing):
- count a connection from the moment its socket is accepted, before TLS and the WebSocket handshake
  (which websockets runs before any handler of ours), so idle sockets can be capped by `Admission`;
  for that, TLS is started here (`loop.start_tls`) rather than by asyncio's server, whose protocol
  only hears of a connection once its TLS handshake is over;
- raise the message size limit of one connection after it authenticated;
- read a PROXY protocol header (proxy.py) before anything else of a connection from a trusted balancer, and
  report the client it names as the connection's `remote_address`, so that every per-address limit (here, and
  the failed-hello limit) counts agents, not the balancer. Such a connection is admitted once its header is
  read (the balancer sends it at once); one whose header is malformed or late is closed alone.
"""

import asyncio
import logging
import ssl
from pathlib import Path

import websockets
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.server import ServerProtocol

from vigint.admission import Admission, AdmittedProtocol
from vigint.errors import ConfigError, VigintError
from vigint.ingest import proxy
from vigint.networks import Network, client_address, is_trusted

log = logging.getLogger(__name__)

# What an agent may have in flight when it hears that its stream is closed: a few media messages in its socket
# buffers and websockets' queue. Reading more would only serve a sender that ignores the close.
MAX_DROPPED_BYTES = 16 * 1024 * 1024


class AdmittedConnection(AdmittedProtocol, ServerConnection):
    """A server connection counted by an `Admission` from its accept until it says hello or closes.

    With `tls`, the TLS handshake runs first (within `tls_timeout`); websockets sees the connection only
    once it is encrypted. A refused connection never reaches websockets at all.
    """

    def __init__(self, admission: Admission, tls: ssl.SSLContext | None, tls_timeout: float,
                 proxies: tuple[Network, ...], *args, **kwargs):
        super().__init__(admission, tls, tls_timeout, *args, **kwargs)
        self._proxies = proxies
        self._header: bytes | None = None  # a trusted balancer's PROXY header read so far, until it is whole
        self._header_timer: asyncio.TimerHandle | None = None
        self._client: str | None = None  # the client a trusted balancer named

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if self._proxies and peer and is_trusted(peer[0], self._proxies):
            self._socket = transport
            self._header = b""  # admitted once the header names the client
            self._header_timer = asyncio.get_running_loop().call_later(self._tls_timeout, transport.abort)
            return
        super().connection_made(transport)

    def admission_address(self, peer: tuple | None) -> str:
        """The client a trusted balancer named, else the socket's peer (an IPv4-mapped address as IPv4)."""
        if self._client is not None:
            return self._client
        return client_address(peer[0]) if peer else ""

    def _read_header(self, data: bytes) -> None:
        """Take bytes of a trusted balancer's PROXY header; once it is whole, admit the client it names and
        pass the bytes after it on. A malformed header closes this connection alone."""
        try:
            header = proxy.parse(self._header + data)
        except proxy.MalformedProxyHeader as error:
            balancer = self._socket.get_extra_info("peername")[0]
            log.info("closing a connection from balancer %s: %s", balancer, error)
            self._socket.abort()
            return
        if header is None:
            self._header += data
            return
        self._header = None
        self._header_timer.cancel()
        self._client = header.source
        super().connection_made(self._socket)
        if header.rest and not self._socket.is_closing():
            self.data_received(header.rest)

    @property
    def remote_address(self):
        """The client's (address, port): the one a trusted balancer named (port 0), else the socket's peer."""
        return (self._client, 0) if self._client is not None else super().remote_address

    def data_received(self, data: bytes) -> None:
        if self._header is not None:
            self._read_header(data)
        else:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def spoke(self) -> None:
        """Stop counting this connection as waiting: it sent its hello, so it is not an idle socket (and must
        not be evicted while its key is being checked)."""
        self.release()

    async def drop_unread(self) -> None:
        """Read and drop what the agent sent still, until the connection closes: websockets stops reading a
        connection whose unread messages pile up, and would then hear the agent's answer to a close frame only
        after close_timeout, holding the socket that long. Past MAX_DROPPED_BYTES the sender is left unread
        (it keeps sending after the close: close_timeout ends it)."""
        dropped = 0
        try:
            async for message in self:
                dropped += len(message)
                if dropped > MAX_DROPPED_BYTES:
                    return
        except ConnectionClosed:
            pass

    def raise_message_limit(self, max_message_bytes: int) -> None:
        """Let this (authenticated) connection send messages of up to `max_message_bytes`.

        websockets fixes the limit per connection, and its frame parser has already taken the pre-auth
        limit for the next frame; restarting the idle parser applies the new one. Agents wait for the
        welcome before sending media, so no partial frame is buffered here; a frame that was (the agent
        did not wait) keeps the old limit and ends the connection with 1009.
        """
        self.protocol.max_message_size = max_message_bytes
        if not self.protocol.reader.buffer:
            self.protocol.parser = self.protocol.parse()
            next(self.protocol.parser)


class _NoHandshakeFailures(logging.Filter):
    """Drop websockets' "opening handshake failed": a socket that closed or sent no valid HTTP request (an
    idle socket we refused, a port scanner) is the client's affair, and websockets 16 logs each with a
    traceback at ERROR, a log flood under the very attacks the admission caps handle."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "opening handshake failed"


def websockets_logger() -> logging.Logger:
    """Return the logger to give websockets' `serve`, without its handshake-failure noise."""
    logger = logging.getLogger("vigint.websockets")
    if not any(isinstance(f, _NoHandshakeFailures) for f in logger.filters):
        logger.addFilter(_NoHandshakeFailures())
    return logger


def check_websockets() -> None:
    """Raise VigintError, saying what to install, unless websockets has the internals used here.

    Versions before 16 call the size limit `max_size`: media after the welcome would meet the 4 KiB
    limit and every stream would end with 1009.
    """
    probe = ServerProtocol()
    if not (hasattr(probe, "max_message_size") and callable(getattr(probe, "parse", None))
            and hasattr(getattr(probe, "reader", None), "buffer")):
        raise VigintError(f"websockets {websockets.__version__} is not supported: install websockets 16 or "
                          "17 (pip install 'websockets>=16,<18')")


def connection_factory(admission: Admission, tls_cert: Path | None, tls_key: Path | None, tls_timeout: float,
                       proxies: tuple[Network, ...] = ()):
    """Return what websockets' `serve(create_connection=…)` calls to make each connection; pass `ssl=None`
    to `serve` and the TLS pair here. Connections from `proxies` start with a PROXY protocol v2 header.

    Raises:
        ConfigError: only one of the TLS pair is set, or it cannot be loaded; or both TLS and trusted proxies
        are
            set (the balancer ends TLS, see docs/deploy).
    """
    tls = tls_context(tls_cert, tls_key)
    if tls is not None and proxies:
        # asyncio starts TLS on a socket none of whose bytes were read, and the header may come with the first
        # bytes of the TLS handshake.
        raise ConfigError("[server] trusted_proxies: the load balancer ends TLS (docs/deploy/haproxy.cfg); a "
                          "node behind it serves plain ws:// on the private network: unset tls_cert and "
                          "tls_key")

    def create(*args, **kwargs) -> AdmittedConnection:
        return AdmittedConnection(admission, tls, tls_timeout, proxies, *args, **kwargs)
    return create


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """Return the server side of TLS for the pair, or None without one. Raises ConfigError."""
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
