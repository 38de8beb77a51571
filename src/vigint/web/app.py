"""The customer's own page, served by `vigint serve` on its own port ([web] port, default 5003).

Built on aiohttp, which runs on the server's one event loop beside the WebSocket streams (no second server
process or thread), with Jinja2 templates that escape every value unless told otherwise. Pages are plain HTML
and a little CSS, readable on a phone; one page runs a script (a camera's settings, to draw masks), served
from the page's own origin, and works without it.

Every page but sign-in needs a session (`access.Sessions`); every query is scoped by the signed-in client, so
another client's incident, clip, still or invoice is 404, exactly like one that does not exist. Every form
must come from the page itself (`same_origin`), and a signed-in page's form carry its session's token
(`base.form_refused`); the port's connections are capped and timed (`connections`).
"""

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from vigint.config import Settings
from vigint.errors import VigintError
from vigint.incidents.storage import ClipStorage
from vigint.networks import Proxies
from vigint.store import Store
from vigint.tasks import TaskSet
from vigint.web import cameras, handover, live, mute, pages, signin
from vigint.web.access import Sessions
from vigint.web.base import (
    BACKGROUND,
    CLIPS,
    LINK_SECRET,
    LIVE,
    PROXIES,
    SAFE_METHODS,
    SECURE,
    SESSIONS,
    SETTINGS,
    STORE,
    STREAM_URL,
    TEMPLATE_ENV,
    content_security_policy,
    environment,
    from_this_site,
    render,
)
from vigint.web.clipstreams import ClipStreams
from vigint.web.connections import Discipline, admitted, check_aiohttp, listen
from vigint.web.livefeed import Sources
from vigint.web.liveviews import LiveViews
from vigint.web.stills import STILLS, Keyframes, Stills
from vigint.web.words import _

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
# The largest form a customer sends: a camera's settings, 32 masks of 64 corners typed as text (about 32 KB).
MAX_FORM_BYTES = 64 * 1024
# No script, no frame, nothing from elsewhere; links in URLs (sign-in and hand-over tokens) never leak through
# Referer nor stay in a cache.
SECURITY_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the security headers to every answer just before it is sent: pages, redirects, errors (the router's
    404 included), and clips and stills however they are sent. A page may set its own policy (the hand-over
    page allows its one script) or caching (clips and stills are cached)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def same_origin(request: web.Request, handler) -> web.StreamResponse:
    """Refuse a form posted from another site: signing a victim in as the attacker (login CSRF), or acting in
    their session, takes nothing but a form on any page the victim opens."""
    if request.method not in SAFE_METHODS and not from_this_site(request):
        return render(request, "message.html", None, status=403, title=_("Sent from another site"),
                      text=_("This form was sent from another site, so it was not acted on. Open this page "
                             "yourself and send it from here."), link="/sign-in")
    return await handler(request)


def make_app(settings: Settings, store: Store, clips: ClipStorage, secret: str,
             live_cameras: Callable[[int], Awaitable[set[str]]], secure: bool, stream_url: str,
             keyframes: Keyframes, sources: Sources) -> web.Application:
    """Return the page's application. `live_cameras(client_id)` names the client's cameras streaming now;
    `secure`: the page is reached over HTTPS (its cookie is then Secure); `stream_url`: where agents stream
    to; `keyframes`: the newest keyframe of this node's streams, for the cameras' stills and snapshots;
    `sources`: this node's live streams, for the live views."""
    app = web.Application(middlewares=[admitted, same_origin], client_max_size=MAX_FORM_BYTES)
    app.on_response_prepare.append(add_security_headers)
    app[STORE] = store
    app[SETTINGS] = settings
    app[CLIPS] = clips
    app[LIVE] = live_cameras
    app[SECURE] = secure
    app[SESSIONS] = Sessions(store, settings.web, secret)
    app[STREAM_URL] = stream_url
    app[LINK_SECRET] = secret
    app[TEMPLATE_ENV] = environment(TEMPLATES)
    app[PROXIES] = Proxies(settings.web.trusted_proxies)
    app[BACKGROUND] = TaskSet()
    app[signin.LIMITS] = signin.Limits()
    app[pages.STREAMS] = ClipStreams(settings.web.max_clip_streams, settings.web.max_clip_streams_per_client,
                                     settings.web.max_clip_streams_per_link)
    app[STILLS] = Stills(keyframes)
    app[live.SNAPSHOTS] = Stills(keyframes, seconds=live.SNAPSHOT_SECONDS)
    app[live.LIVE_VIEWS] = LiveViews(sources, store, settings.web, settings.server.revocation_check_seconds)
    # cameras' before live's: /cameras/settings is the set-up form, not a camera's live view
    app.add_routes(pages.ROUTES + cameras.ROUTES + live.ROUTES + signin.ROUTES + handover.ROUTES
                   + mute.ROUTES)
    return app


class CustomerPage:
    """The running page: `await start()`, then `await stop()`; `port` is known once started."""

    def __init__(self, app: web.Application):
        self._app = app
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._listener = None
        self._stopping = asyncio.Event()
        self.live_views = app[live.LIVE_VIEWS]  # for the node's metrics

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        """Listen. Raises VigintError if aiohttp is not a supported version or the address cannot be listened
        on."""
        check_aiohttp()
        await self._runner.setup()
        try:
            discipline = Discipline.of(self._app[SETTINGS].web)
            self._listener = await listen(self._runner, discipline, host, port, tls)
        except OSError as error:
            await self._runner.cleanup()
            raise VigintError(f"cannot listen on {host}:{port} for the customers' page: "
                              f"{error.strerror or error}") from None
        self._app[BACKGROUND].spawn(self.live_views.run(self._stopping))

    @property
    def port(self) -> int:
        return self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, end the live views, close the connections, and give sign-in emails being sent time
        to leave."""
        self._listener.close()
        self._stopping.set()
        self.live_views.close()
        await self._runner.cleanup()
        await self._app[BACKGROUND].drain(self._app[SETTINGS].email.timeout_seconds)


async def open_page(settings: Settings, store: Store, clips: ClipStorage, secret: str,
                    live_cameras: Callable[[int], Awaitable[set[str]]], tls: ssl.SSLContext | None,
                    stream_url: str, keyframes: Keyframes, sources: Sources) -> CustomerPage:
    """Serve the page on the [server] host and the [web] port, over TLS with `tls` if given; return it
    running. Its cookie is Secure when the page is reached over HTTPS: TLS here, or an https:// public_url (a
    proxy's).
    `stream_url` is where agents stream to, for the .env lines of a handed-over key.
    Raises VigintError if the address cannot be listened on."""
    secure = tls is not None or settings.web.public_url.startswith("https://")
    page = CustomerPage(make_app(settings, store, clips, secret, live_cameras, secure, stream_url, keyframes,
                                 sources))
    await page.start(settings.server.host, settings.web.port, tls)
    return page
