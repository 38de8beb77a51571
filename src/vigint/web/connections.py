"""The adapter between the page and aiohttp's server: the one place that leans on how aiohttp serves.

The page's port obeys the stream port's discipline, because both share the process's file descriptors with
the clips, stills and database of every incident: caps on connections waiting for a request, per address and
in total, counted from the accept (`vigint.admission`); a header timeout and a keep-alive timeout; and a
reserve of descriptors the page never takes. aiohttp (tested with 3.10 to 3.14; `check_aiohttp` fails at
start if what is used here is missing) has no public way to hear of a connection before it reads from it, so:
- each connection is a `RequestHandler` made here rather than by aiohttp's `Server`, served by our own
  `loop.create_server`, with TLS started after the connection is counted (`AdmittedProtocol`);
- a connection counts as waiting from its accept until a request's headers are in (the `admitted` middleware,
  which runs first), and again once its answer is written (the end of the task aiohttp runs each request in)
  until the next request, or until aiohttp's keep-alive timeout closes it.
"""

import asyncio
import inspect
import ssl
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from vigint.admission import Admission, AdmittedProtocol, spare_descriptors
from vigint.config import WebSettings
from vigint.errors import VigintError
from vigint.networks import Proxies

# A body over the page's bound (app.MAX_FORM_BYTES): refused before any of it is parsed.
TOO_LARGE = ("Too much sent: this form is larger than the page takes, so it was not acted on. Send less "
             "(fewer or simpler masks, a shorter schedule).")


@dataclass(frozen=True)
class Discipline:
    """What every connection of the page obeys: one `Admission` shared by all, and the [web] limits."""

    admission: Admission
    proxies: Proxies
    header_timeout: float
    keepalive: float
    reserve: int

    @classmethod
    def of(cls, web_settings: WebSettings) -> "Discipline":
        return cls(Admission(web_settings.max_idle_connections,
                             web_settings.max_idle_connections_per_address),
                   Proxies(web_settings.trusted_proxies), web_settings.header_timeout_seconds,
                   web_settings.keepalive_seconds, web_settings.reserve_descriptors)


class PageConnection(AdmittedProtocol, RequestHandler):
    """One connection to the page, counted while it waits for a request and closed if its first request's
    headers (TLS handshake included) take longer than the header timeout."""

    def __init__(self, discipline: Discipline, tls: ssl.SSLContext | None, manager: web.Server,
                 loop: asyncio.AbstractEventLoop):
        super().__init__(discipline.admission, tls, discipline.header_timeout, manager, loop=loop,
                         keepalive_timeout=discipline.keepalive, access_log=None)
        self._discipline = discipline
        self._requests = 0  # in progress: more than one only when a client pipelines
        self._lost = False
        self._expiry: asyncio.TimerHandle | None = None

    def admission_address(self, peer: tuple | None) -> str:
        address = super().admission_address(peer)
        # A trusted proxy carries many requesters' connections: each counts only towards the total.
        return f"{address}#{id(self)}" if self._discipline.proxies.trusts(address) else address

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if spare_descriptors() < self._discipline.reserve:
            transport.abort()  # the descriptors left are the evidence's: clips, stills, the database
            return
        self._expiry = asyncio.get_running_loop().call_later(self._discipline.header_timeout, transport.abort)
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        if self._expiry is not None:
            self._expiry.cancel()
        super().connection_lost(exc)

    @property
    def header_timeout(self) -> float:
        return self._discipline.header_timeout

    def request_began(self) -> None:
        """A request's headers are in: stop counting the connection until its answer has been written."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._requests += 1
        self.release()
        asyncio.current_task().add_done_callback(self._request_ended)

    def _request_ended(self, _: asyncio.Task) -> None:
        self._requests -= 1
        if not self._requests and not self._lost:
            self.admit()  # waiting again; aiohttp's keep-alive timer runs from here


@web.middleware
async def admitted(request: web.Request, handler) -> web.StreamResponse:
    """Stop counting the connection as idle while it is served; give a form the header timeout to arrive (a
    body dripped byte by byte would otherwise hold the connection for ever)."""
    connection = request.protocol
    if isinstance(connection, PageConnection):
        connection.request_began()
        if request.body_exists:
            try:
                async with asyncio.timeout(connection.header_timeout):
                    await request.read()  # kept: request.post() parses it from here
            except TimeoutError:
                raise web.HTTPRequestTimeout(text="The request took too long to arrive.") from None
            except web.HTTPRequestEntityTooLarge as error:
                # actual_size: what was read before the bound was passed (aiohttp 3.10 requires it)
                raise web.HTTPRequestEntityTooLarge(request.client_max_size, request.content_length or 0,
                                                    text=TOO_LARGE) from error
    return await handler(request)


async def listen(runner: web.AppRunner, discipline: Discipline, host: str, port: int,
                 tls: ssl.SSLContext | None) -> asyncio.Server:
    """Serve `runner`'s application on host:port (over TLS with `tls`) through `PageConnection`s. Raises
    OSError."""
    loop = asyncio.get_running_loop()
    manager = runner.server
    return await loop.create_server(lambda: PageConnection(discipline, tls, manager, loop), host, port)


def check_aiohttp() -> None:
    """Raise VigintError, saying what to install, unless aiohttp has what this module uses."""
    parameters = inspect.signature(RequestHandler.__init__).parameters
    if not ({"manager", "loop", "keepalive_timeout", "access_log"} <= parameters.keys()
            and hasattr(web.BaseRequest, "protocol") and hasattr(web.AppRunner, "server")):
        raise VigintError(f"aiohttp {aiohttp.__version__} is not supported: install aiohttp 3.10 to 3.14 "
                          "(pip install 'aiohttp>=3.10,<3.15')")
