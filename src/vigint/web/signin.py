"""Signing in without a password: a one-time link, from the operator (`vigint client link`) or emailed on request.

Asking for a link answers the same whether or not the address is a client's, so the page tells nobody who the
clients are; links are emailed at most 3 times in 15 minutes to one address and 10 times an hour to one
requester, so the page cannot be used to flood a mailbox.
"""

import asyncio
import logging
import time
from urllib.parse import urlencode

from aiohttp import web

from vigint.alerts.emails import compose_sign_in_email, send_email
from vigint.alerts.templates import choose_language
from vigint.limiter import RateLimiter
from vigint.store import Client
from vigint.web.access import SESSION_COOKIE, new_sign_in_link, page_url
from vigint.web.base import SECURE, SESSIONS, SETTINGS, STORE, current_client, render

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
per_address, per_requester = RateLimiter(3, 900), RateLimiter(10, 3600)


def _next(text: str | None) -> str:
    """Where to go once signed in: a path of this site only (an open redirect would send a customer anywhere)."""
    if text and text.startswith("/") and not text.startswith(("//", "/\\")) and text.isprintable():
        return text
    return "/incidents"


@routes.get("/sign-in")
async def ask(request: web.Request) -> web.StreamResponse:
    if await current_client(request) is not None:
        raise web.HTTPSeeOther(_next(request.query.get("next")))
    return render(request, "sign_in.html", None, next=_next(request.query.get("next")), sent=False, can_email=True)


@routes.post("/sign-in")
async def send(request: web.Request) -> web.Response:
    form = await request.post()
    address, following = str(form.get("email", "")).strip()[:254], _next(str(form.get("next", "")))
    settings, now, requester = request.app[SETTINGS], time.time(), request.remote or "?"
    can_email = bool(settings.email.smtp_host or settings.email.capture_dir)
    if can_email and "@" in address and not (per_address.retry_after(address.lower(), now)
                                             or per_requester.retry_after(requester, now)):
        per_address.record(address.lower(), now)
        per_requester.record(requester, now)
        client = await request.app[STORE].client_by_email(address)
        if client is not None:
            # The page's own address, never the request's Host header, which a requester chooses.
            base = page_url(settings, request.transport.get_extra_info("sockname")[1])
            link = await new_sign_in_link(request.app[STORE], settings.web, base, client.id)
            await _email(settings, client, f"{link}?{urlencode({'next': following})}")
    return render(request, "sign_in.html", None, next=following, sent=True, can_email=can_email)


async def _email(settings, client: Client, link: str) -> None:
    language = choose_language(client.language, settings.alerts.language)
    message = compose_sign_in_email(client.email, link, settings.web.sign_in_minutes, language, settings.email)
    try:
        await asyncio.to_thread(send_email, settings.email, message)
    except Exception as error:  # noqa: BLE001 - the requester is told the same; the operator reads the log
        log.error("could not email a sign-in link to client %d: %s", client.id, error)


@routes.get("/sign-in/{token}")
async def confirm(request: web.Request) -> web.Response:
    """The link's page: a button, so that a mail scanner fetching the link does not spend it."""
    return render(request, "sign_in_link.html", None, next=_next(request.query.get("next")))


@routes.post("/sign-in/{token}")
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    cookie = await request.app[SESSIONS].sign_in(request.match_info["token"])
    if cookie is None:
        return render(request, "message.html", None, status=400, title="This link no longer works",
                      text="Sign-in links work once, for a few minutes. Ask for a new one.", link="/sign-in")
    response = web.HTTPSeeOther(_next(str(form.get("next", ""))))
    response.set_cookie(SESSION_COOKIE, cookie, max_age=request.app[SESSIONS].lifetime, path="/", httponly=True,
                        samesite="Lax", secure=request.app[SECURE])
    raise response


@routes.post("/sign-out")
async def sign_out(request: web.Request) -> web.StreamResponse:
    await request.app[SESSIONS].sign_out(request.cookies.get(SESSION_COOKIE))
    response = web.HTTPSeeOther("/sign-in")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


ROUTES = list(routes)
