"""The customer's own page, served by `vigint serve` on its own port ([web] port, default 5003).

Built on aiohttp, which runs on the server's one event loop beside the WebSocket streams (no second server
process or thread), with Jinja2 templates that escape every value unless told otherwise. Pages are plain HTML
and a little CSS: no JavaScript, readable on a phone.

Every page but sign-in needs a session (`access.Sessions`); every query is scoped by the signed-in client, so
another client's incident, clip, still or invoice is 404, exactly like one that does not exist.
"""

import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from vigint.config import Settings
from vigint.errors import VigintError
from vigint.incidents.storage import ClipStorage
from vigint.store import Store
from vigint.web import handover, pages, signin
from vigint.web.access import Sessions
from vigint.web.base import (
    CLIPS,
    LINK_SECRET,
    LIVE,
    SECURE,
    SESSIONS,
    SETTINGS,
    STORE,
    STREAM_URL,
    TEMPLATE_ENV,
    content_security_policy,
    environment,
)
from vigint.web.clipstreams import ClipStreams

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
MAX_FORM_BYTES = 4096  # the only body a customer sends is an email address
# No script, no frame, nothing from elsewhere; links in URLs (sign-in and hand-over tokens) never leak through Referer
# nor stay in a cache.
SECURITY_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the security headers to every answer just before it is sent: pages, redirects, errors (the router's
    404 included), and clips and stills however they are sent. A page may set its own policy (the hand-over page
    allows its one script) or caching (clips and stills are cached)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def make_app(settings: Settings, store: Store, clips: ClipStorage, secret: str,
             live_cameras: Callable[[int], Awaitable[set[str]]], secure: bool, stream_url: str) -> web.Application:
    """Return the page's application. `live_cameras(client_id)` names the client's cameras streaming now;
    `secure`: the page is reached over HTTPS (its cookie is then Secure); `stream_url`: where agents stream to."""
    app = web.Application(client_max_size=MAX_FORM_BYTES)
    app.on_response_prepare.append(add_security_headers)
    app[STORE], app[SETTINGS], app[CLIPS], app[LIVE], app[SECURE] = store, settings, clips, live_cameras, secure
    app[SESSIONS], app[STREAM_URL], app[LINK_SECRET] = Sessions(store, settings.web, secret), stream_url, secret
    app[TEMPLATE_ENV] = environment(TEMPLATES)
    app[pages.STREAMS] = ClipStreams(settings.web.max_clip_streams, settings.web.max_clip_streams_per_client,
                                     settings.web.max_clip_streams_per_link)
    app.add_routes(pages.ROUTES + signin.ROUTES + handover.ROUTES)
    return app


class CustomerPage:
    """The running page: `await start()`, then `await stop()`; `port` is known once started."""

    def __init__(self, app: web.Application):
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        """Listen. Raises VigintError if the address cannot be listened on."""
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port, ssl_context=tls).start()
        except OSError as error:
            await self._runner.cleanup()
            raise VigintError(f"cannot listen on {host}:{port} for the customers' page: "
                              f"{error.strerror or error}") from None

    @property
    def port(self) -> int:
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()


async def open_page(settings: Settings, store: Store, clips: ClipStorage, secret: str,
                    live_cameras: Callable[[int], Awaitable[set[str]]], tls: ssl.SSLContext | None,
                    stream_url: str) -> CustomerPage:
    """Serve the page on the [server] host and the [web] port, over TLS with `tls` if given; return it running.
    Its cookie is Secure when the page is reached over HTTPS: TLS here, or an https:// public_url (a proxy's).
    `stream_url` is where agents stream to, for the .env lines of a handed-over key.
    Raises VigintError if the address cannot be listened on."""
    secure = tls is not None or settings.web.public_url.startswith("https://")
    page = CustomerPage(make_app(settings, store, clips, secret, live_cameras, secure, stream_url))
    await page.start(settings.server.host, settings.web.port, tls)
    return page
