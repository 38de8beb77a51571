"""The adapter between the server and websockets' asyncio connections: the one place that leans on them.

Three things websockets has no public way to do (tested with websockets 16 and 17; `check_websockets`
fails at start, with what to install, if the internals used here are missing):
- count a connection from the moment its socket is accepted, before TLS and the WebSocket handshake
  (which websockets runs before any handler of ours), so idle sockets can be capped by `Admission`;
  for that, TLS is started here (`loop.start_tls`) rather than by asyncio's server, whose protocol
  only hears of a connection once its TLS handshake is over;
- raise the message size limit of one connection after it authenticated.
"""

import logging
import ssl
from pathlib import Path

import websockets
from websockets.asyncio.server import ServerConnection
from websockets.server import ServerProtocol

from vigint.admission import Admission, AdmittedProtocol
from vigint.errors import ConfigError, VigintError

log = logging.getLogger(__name__)


class AdmittedConnection(AdmittedProtocol, ServerConnection):
    """A server connection counted by an `Admission` from its accept until it says hello or closes.

    With `tls`, the TLS handshake runs first (within `tls_timeout`); websockets sees the connection only
    once it is encrypted. A refused connection never reaches websockets at all.
    """

    def spoke(self) -> None:
        """Stop counting this connection as waiting: it sent its hello, so it is not an idle socket (and must
        not be evicted while its key is being checked)."""
        self.release()

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
        raise VigintError(f"websockets {websockets.__version__} is not supported: install websockets 16 or 17 "
                          "(pip install 'websockets>=16,<18')")


def connection_factory(admission: Admission, tls_cert: Path | None, tls_key: Path | None, tls_timeout: float):
    """Return what websockets' `serve(create_connection=…)` calls to make each connection; pass `ssl=None`
    to `serve` and the TLS pair here.

    Raises:
        ConfigError: only one of the TLS pair is set, or it cannot be loaded.
    """
    tls = tls_context(tls_cert, tls_key)

    def create(*args, **kwargs) -> AdmittedConnection:
        return AdmittedConnection(admission, tls, tls_timeout, *args, **kwargs)
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
