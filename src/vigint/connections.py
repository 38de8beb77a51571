"""The adapter between the server and websockets' asyncio connections: the one place that leans on them.

Two things websockets has no public way to do (tested with websockets 16 and 17; `check_websockets`
fails at start, with what to install, if the internals used here are missing):
- count a connection from the moment its socket is accepted (before the WebSocket handshake, which
  websockets runs before any handler of ours), so idle sockets can be capped by `Admission`;
- raise the message size limit of one connection after it authenticated.
"""

import asyncio
import logging

import websockets
from websockets.asyncio.server import ServerConnection
from websockets.server import ServerProtocol

from vigint.admission import Admission
from vigint.errors import VigintError

log = logging.getLogger(__name__)


class AdmittedConnection(ServerConnection):
    """A server connection counted by an `Admission` from its first byte until it authenticates or closes."""

    def __init__(self, admission: Admission, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._admission = admission

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        for refused in self._admission.admit(self, peer[0] if peer else ""):
            refused.transport.abort()  # an idle socket: no close frame is owed, and none could be read

    def connection_lost(self, exc: Exception | None) -> None:
        self._admission.release(self)
        super().connection_lost(exc)

    def spoke(self) -> None:
        """Stop counting this connection as waiting: it sent its hello, so it is not an idle socket (and must
        not be evicted while its key is being checked)."""
        self._admission.release(self)

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


def connection_factory(admission: Admission):
    """Return what websockets' `serve(create_connection=…)` calls to make each connection."""
    def create(*args, **kwargs) -> AdmittedConnection:
        return AdmittedConnection(admission, *args, **kwargs)
    return create
