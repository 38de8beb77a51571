"""Admission of connections that have not yet proven useful: how many per address and in total, counted from
the moment a socket is accepted, and the file descriptors a process keeps in reserve.

An open socket costs a file descriptor whether or not it ever says hello. Agents say hello at once, so
the connections that stay unauthenticated are idle ones, and those are the ones to give up: past the
per-address cap the oldest waiting connection of that address goes (one host cannot take the whole
allowance, and one idle host behind a shop's NAT cannot lock out the shop's agent, whose fresh connection
is never the oldest for long), past the total cap the oldest waiting connection of all goes. Tokens are
whatever the caller uses to close a connection.

The stream port counts connections until they say hello; the customer's page counts them whenever they wait
for a request. Both count from the accept, before TLS and before any byte is read (`AdmittedProtocol`): a
socket left idle in a TLS handshake holds a descriptor just the same.
"""

import asyncio
import os
import resource
import ssl
from collections import OrderedDict
from collections.abc import Hashable


class Admission:
    """Unauthenticated connections, oldest first, at most `max_total` and `max_per_address` of them."""

    def __init__(self, max_total: int, max_per_address: int):
        self._max_total = max_total
        self._max_per_address = max_per_address
        self._waiting: OrderedDict[Hashable, str] = OrderedDict()
        self._by_address: dict[str, OrderedDict[Hashable, None]] = {}  # each address's, oldest first

    def admit(self, token: Hashable, address: str) -> list[Hashable]:
        """Count a new connection from `address`; return the connections to close now: the oldest waiting ones
        of its address beyond `max_per_address`, then the oldest of all beyond `max_total` (possibly none)."""
        self._waiting[token] = address
        self._by_address.setdefault(address, OrderedDict())[token] = None
        evicted = []
        while len(self._by_address[address]) > self._max_per_address:
            evicted.append(self._evict(next(iter(self._by_address[address]))))
        while len(self._waiting) > self._max_total:
            evicted.append(self._evict(next(iter(self._waiting))))
        return evicted

    def _evict(self, token: Hashable) -> Hashable:
        self.release(token)
        return token

    def release(self, token: Hashable) -> None:
        """Stop counting a connection: it authenticated, was refused or closed. Unknown tokens are ignored."""
        address = self._waiting.pop(token, None)
        if address is None:
            return
        tokens = self._by_address[address]
        del tokens[token]
        if not tokens:
            del self._by_address[address]

    def __len__(self) -> int:
        return len(self._waiting)


class AdmittedProtocol:
    """Mixin for a server's asyncio protocol: counted by an `Admission` from its accept until `release` (or
    its end), refused at once when the admission says so.

    With `tls`, the TLS handshake runs first (within `tls_timeout`); the protocol it is mixed into sees the
    connection only once it is encrypted (its `connection_made` is called then), and a refused connection
    never reaches it at all. Put it first among the bases: `class Counted(AdmittedProtocol, SomeProtocol)`.
    """

    def __init__(self, admission: Admission, tls: ssl.SSLContext | None, tls_timeout: float, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._admission = admission
        self._tls = tls
        self._tls_timeout = tls_timeout
        self._socket: asyncio.BaseTransport | None = None  # the accepted TCP transport, for refusing it
        self._opened = False  # the protocol mixed into has been told of the connection
        self._early: list[bytes] = []  # data decrypted between the TLS handshake and the opening
        self._handshake: asyncio.Task | None = None

    def admission_address(self, peer: tuple | None) -> str:
        """Return the address this connection is counted under (its peer's, unless a subclass knows
        better)."""
        return peer[0] if peer else ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._socket = transport
        self.admit()
        if transport.is_closing():
            return
        if self._tls is None:
            self._open(transport)
        else:
            self._handshake = asyncio.get_running_loop().create_task(self._start_tls(transport))

    def admit(self) -> None:
        """Count this connection (again); close those the admission gives up for it, this one included."""
        address = self.admission_address(self._socket.get_extra_info("peername"))
        for refused in self._admission.admit(self, address):
            refused._socket.abort()  # an idle socket: nothing is owed to it, and it may never read

    def release(self) -> None:
        """Stop counting this connection: it is doing something useful (and must not be evicted meanwhile)."""
        self._admission.release(self)

    async def _start_tls(self, transport: asyncio.BaseTransport) -> None:
        try:
            secure = await asyncio.get_running_loop().start_tls(transport, self, self._tls, server_side=True,
                                                                 ssl_handshake_timeout=self._tls_timeout)
        except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
            transport.abort()  # a failed or abandoned handshake is no one's business but this socket's
            return
        if secure is not None:  # None: the peer left right after the handshake (connection_lost has run)
            self._open(secure)

    def _open(self, transport: asyncio.BaseTransport) -> None:
        self._opened = True
        super().connection_made(transport)
        early = self._early
        self._early = []
        for data in early:
            super().data_received(data)

    def data_received(self, data: bytes) -> None:
        if self._opened:
            super().data_received(data)
        else:  # asyncio reads right after the TLS handshake, before start_tls returns to us
            self._early.append(data)

    def eof_received(self) -> bool | None:
        return super().eof_received() if self._opened else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._admission.release(self)
        if self._opened:
            super().connection_lost(exc)


def spare_descriptors() -> int:
    """Return how many more files and sockets this process may open before its open-file limit.

    Counted in /proc/self/fd where there is one (Linux: 0.1-0.5 ms for a thousand descriptors); elsewhere
    estimated from the lowest free descriptor, which the system hands out first.
    """
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    try:
        return limit - (len(os.listdir("/proc/self/fd")) - 1)  # the listing itself holds one while it runs
    except FileNotFoundError:  # no /proc (macOS, the BSDs)
        pass
    except OSError:  # out of descriptors already: even the listing could not open one
        return 0
    try:
        probe = os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return 0
    os.close(probe)
    return limit - probe
