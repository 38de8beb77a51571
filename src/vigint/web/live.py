"""A camera's live view on the customer's page: `/cameras/<name>` with a player (`static/live.js`, from the
page's own origin), fed over the WebSocket `/cameras/<name>/live` on the page's port, and
`/cameras/<name>/snapshot.jpg`, its poster and the picture of browsers without Media Source Extensions.

The socket sends one JSON text message (`{"type": "start", "codec": …, "offset": …}`: the codec to open
the player's buffer with, and the stream time of the fragments' 0 in seconds since the stream's first frame),
then the init segment and fragmented MP4 fragments as binary messages (see livefeed.py). Like every page,
another client's camera is 404 on each of the three, and the socket is answered only to the page's own
origin (a cookie-authenticated socket opened by another site would otherwise watch as the victim).

On several nodes, the stream's ring is on the node its agent reached: a page or snapshot asked of another
node is redirected (303) to that node's page address, found in the stream registry and the nodes'
snapshots, with a ticket for that camera signed by the secret the nodes share (livetickets.py: that node's
host name may differ, and the browser's sign-in cookie is the asking node's only).
"""

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from socket import SO_SNDBUF, SOL_SOCKET
from urllib.parse import urlencode, urlsplit

from aiohttp import WSCloseCode, web

from vigint.store import Client
from vigint.web.access import SESSION_COOKIE
from vigint.web.base import (
    LINK_SECRET,
    LIVE,
    SECURE,
    SESSIONS,
    STORE,
    content_security_policy,
    from_this_site,
    render,
)
from vigint.web.cameras import LIVE_SCRIPT_URL, STILL_CACHE, camera_name, camera_url
from vigint.web.livefeed import Viewer
from vigint.web.livetickets import PASS_COOKIE, Grant, camera_pass, read_pass, read_ticket, ticket
from vigint.web.liveviews import LiveViews
from vigint.web.stills import Stills

LIVE_VIEWS = web.AppKey("live_views", LiveViews)
SNAPSHOTS = web.AppKey("snapshots", Stills)
# The live page runs live.js, from here; still nothing inline, nothing from elsewhere. Its fragments come
# over the page's own socket: `connect-src 'self'`.
LIVE_POLICY = content_security_policy(own_scripts=True, own_sockets=True)
# A snapshot is decoded again at most this often, one decode per camera however many ask: the players
# without Media Source Extensions ask every 2 s.
SNAPSHOT_SECONDS = 2.0
# Close codes the page understands (live.js): a viewer dropped for not reading, and one whose session or
# stream ended.
CLOSE_CODES = {"too slow": 4008, "signed out": 4401, "stream ended": 4404,
               "failed": WSCloseCode.INTERNAL_ERROR, "server shutting down": WSCloseCode.GOING_AWAY}
CLOSE_SECONDS = 1.0  # a closing handshake a stalled reader never answers is cut after this
# The kernel's send buffer of a viewer's socket: 1 s of a 2 Mbit/s camera, enough for 20 Mbit/s at 100 ms
# round trip. Left to autotuning it grows to 4 MiB, held per viewer, and a reader that stopped would take
# that long to be noticed (its queue only grows once the kernel's is full).
SEND_BUFFER_BYTES = 256 * 1024
routes = web.RouteTableDef()


@dataclass(frozen=True)
class Watcher:
    """Who asks for a camera's live view: the client, and its session's stored hash (looked up again while it
    watches)."""

    client: Client
    session: str = field(repr=False)

    @property
    def grant(self) -> Grant:
        """What a ticket or pass for this watcher grants."""
        return Grant(self.client.id, self.session)


def watching(handler: Callable[[web.Request, Watcher], Awaitable[web.StreamResponse]]) -> Callable:
    """Run `handler(request, watcher)` for the camera's page, snapshot or socket, asked by a signed-in browser
    or one sent here by another node (a ticket, or the pass its page left, livetickets.py); send anyone else
    to sign in. A ticket or pass that does not open this camera now is 404, like another client's camera."""
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        return await handler(request, await _watcher(request, camera_name(request)))
    return guarded


async def _watcher(request: web.Request, name: str) -> Watcher:
    """Return who asks for the camera's live view; raise 404 for a ticket that does not open it now, else 303
    to sign in when neither the session cookie nor a pass opens it."""
    secret = request.app[LINK_SECRET]
    if "ticket" in request.query:
        grant = read_ticket(secret, request.query["ticket"], name, time.time())
        watcher = None if grant is None else await _looked_up(request, grant.session, grant.client_id)
        if watcher is None:
            raise web.HTTPNotFound(text="no such camera\n")
        return watcher
    session = request.app[SESSIONS].session(request.cookies.get(SESSION_COOKIE))
    if session is not None and (watcher := await _looked_up(request, session)) is not None:
        return watcher
    grant = read_pass(secret, request.cookies.get(PASS_COOKIE, ""), name)
    watcher = None if grant is None else await _looked_up(request, grant.session, grant.client_id)
    if watcher is not None:
        return watcher
    raise web.HTTPSeeOther(f"/sign-in?{urlencode({'next': request.path_qs})}")


async def _looked_up(request: web.Request, session: str, client_id: int | None = None) -> Watcher | None:
    """Return the watcher signed in as `session` (its stored hash) now, if any and if it is `client_id`'s."""
    client = await request.app[STORE].session_client(session, time.time())
    if client is None or client_id not in (None, client.id):
        return None
    return Watcher(client, session)


async def elsewhere(request: web.Request, watcher: Watcher, name: str) -> str | None:
    """Return this request's address on the node the client's camera streams to, with a ticket for it, when
    it is another node that said where its page is (`[web] node_url`, in its snapshot): a live view is sent
    from the node that holds the stream's ring."""
    address = await _holder(request, watcher.client.id, name)
    if address is None:
        return None
    signed = ticket(request.app[LINK_SECRET], watcher.client.id, name, watcher.session, time.time())
    return f"{address}{request.rel_url.raw_path}?{urlencode({'ticket': signed})}"


async def _holder(request: web.Request, client_id: int, name: str) -> str | None:
    """Return the page address of the other node the client's camera streams to, if it said where."""
    store = request.app[STORE]
    if not store.shared:
        return None
    node = await store.stream_node(client_id, name, time.time())
    address = None if node is None else node.document.get("page_url")
    if not address or urlsplit(address).netloc == request.host:  # this node: its stream just ended
        return None
    return address.rstrip("/")


async def _known(request: web.Request, client: Client, name: str) -> bool:
    """Whether the client has a camera by that name: streaming now (on any node), streamed once, or set
    up."""
    store = request.app[STORE]
    if name in await request.app[LIVE](client.id):
        return True
    if name in await store.client_camera_names(client.id):
        return True
    return await store.camera_setting(client.id, name) is not None


@routes.get("/cameras/{name}")
@watching
async def page(request: web.Request, watcher: Watcher) -> web.Response:
    """The camera's live page; a viewer sent here with a ticket leaves with its pass, to the ticket-less
    address."""
    name = camera_name(request)
    if "ticket" in request.query:
        moved = web.HTTPSeeOther(camera_url(name))
        moved.set_cookie(PASS_COOKIE, camera_pass(request.app[LINK_SECRET], watcher.grant, name),
                         max_age=request.app[SESSIONS].lifetime, path=camera_url(name), httponly=True,
                         samesite="Lax", secure=request.app[SECURE])
        raise moved
    client = watcher.client
    if not await _known(request, client, name):
        raise web.HTTPNotFound(text="no such camera\n")
    views = request.app[LIVE_VIEWS]
    streaming = views.streaming(client.id, name)
    if not streaming and (there := await elsewhere(request, watcher, name)):
        raise web.HTTPSeeOther(there)
    refusal = views.refusal(client.id) if streaming else None
    response = render(request, "live.html", client, status=429 if refusal else 200, camera=name,
                      streaming=streaming, refusal=refusal, socket=camera_url(name, "live"),
                      snapshot=camera_url(name, "snapshot.jpg"), settings=camera_url(name, "settings"),
                      script=LIVE_SCRIPT_URL)
    response.headers["Content-Security-Policy"] = LIVE_POLICY
    return response


@routes.get("/cameras/{name}/snapshot.jpg")
@watching
async def snapshot(request: web.Request, watcher: Watcher) -> web.Response:
    """The camera's newest keyframe as a JPEG, decoded at most once per SNAPSHOT_SECONDS; 404 if it does not
    stream to this node (another client's camera included)."""
    name = camera_name(request)
    jpeg = await request.app[SNAPSHOTS].still(watcher.client.id, name)
    if jpeg is None and (there := await elsewhere(request, watcher, name)):
        raise web.HTTPSeeOther(there)
    if jpeg is None:
        raise web.HTTPNotFound(text="this camera is not streaming\n")
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": STILL_CACHE})


@routes.get("/cameras/{name}/live")
@watching
async def socket(request: web.Request, watcher: Watcher) -> web.StreamResponse:
    """The camera's live fragments, until the viewer leaves, falls behind, is signed out or its stream
    ends."""
    if not from_this_site(request):
        raise web.HTTPForbidden(text="opened from another site\n")
    name = camera_name(request)
    views = request.app[LIVE_VIEWS]
    client_id = watcher.client.id
    expires_at = await request.app[STORE].session_expiry(watcher.session) or 0.0
    if views.refusal(client_id) and views.streaming(client_id, name):
        raise web.HTTPTooManyRequests(text="too many live views\n")
    # The page sends nothing; H.264 does not deflate
    ws = web.WebSocketResponse(max_msg_size=1024, compress=False)
    if not ws.can_prepare(request).ok:  # a plain GET starts no feed
        raise web.HTTPBadRequest(text="not a WebSocket handshake\n")
    viewer = views.join(client_id, name, watcher.session, expires_at)
    if viewer is None:
        raise web.HTTPNotFound(text="this camera is not streaming\n")
    parts = set()
    try:
        await ws.prepare(request)
        connection = request.transport.get_extra_info("socket") if request.transport else None
        if connection is not None:
            connection.setsockopt(SOL_SOCKET, SO_SNDBUF, SEND_BUFFER_BYTES)
        parts = {asyncio.ensure_future(_send(ws, viewer)), asyncio.ensure_future(_read_until_closed(ws)),
                 asyncio.ensure_future(viewer.wait_ended())}
        await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for part in parts:
            part.cancel()
        reason = viewer.ended
        views.leave(viewer)
    await _close(request, ws, reason)
    return ws


async def _send(ws: web.WebSocketResponse, viewer: Viewer) -> None:
    """Send what is queued for the viewer, in order, until it ends."""
    while (item := await viewer.next()) is not None:
        await (ws.send_str(item) if isinstance(item, str) else ws.send_bytes(item))


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the page sends, so that its close is heard."""
    async for _ in ws:
        pass


async def _close(request: web.Request, ws: web.WebSocketResponse, reason: str | None) -> None:
    """Close with the code the page understands; a reader that stopped never answers: cut it.

    Cut whenever bytes are left unsent, however the close ends: a close that times out makes aiohttp close
    the transport gently, and the handler then comes out cancelled (aiohttp 3.14), not timed out; a gentle
    close waits to send the rest first, so the transport's buffer, this response and its viewer would stay
    held for as long as the reader keeps its connection open without reading."""
    code = CLOSE_CODES.get(reason or "", WSCloseCode.OK)
    transport = request.transport
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await ws.close(code=code, message=(reason or "").encode())
    except (TimeoutError, ConnectionError):
        pass
    finally:
        if transport is not None and transport.get_write_buffer_size():
            transport.abort()


ROUTES = list(routes)
