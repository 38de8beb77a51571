"""Signing in without a password: a one-time link, from the operator (`vigint client link`) or emailed on
request.

Asking for a link tells nobody who the clients are: the answer is the same, and as fast, whether or not the
address is a client's, because the address is looked up and the email sent after answering, in the background.

Limits keep the page from flooding a mailbox without letting a stranger lock a customer out: one requester (an
address, or an IPv6 /64; behind a trusted proxy, the address it forwards for) may ask 10 times an hour, and 3
times in 15 minutes for one mailbox. The mailbox's count is kept per requester, so requests from elsewhere
never spend the customer's own; a limit per mailbox alone would let 3 requests from anyone block a customer
for 15 minutes. What this gives up: requests from many addresses can each send a mailbox a few links.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from aiohttp import web

from vigint.alerts.emails import compose_sign_in_email, send_email
from vigint.alerts.templates import choose_language
from vigint.limiter import RateLimiter
from vigint.networks import requester_key
from vigint.web.access import SESSION_COOKIE, new_sign_in_link, page_url
from vigint.web.base import (
    BACKGROUND,
    SECURE,
    SESSIONS,
    SETTINGS,
    STORE,
    current_client,
    form_refused,
    render,
    requester,
)
from vigint.web.words import _

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@dataclass
class Limits:
    """How often links may be asked for: per requester, and per mailbox by the same requester."""

    per_requester: RateLimiter = field(default_factory=lambda: RateLimiter(10, 3600))
    per_mailbox: RateLimiter = field(default_factory=lambda: RateLimiter(3, 900))

    def allow(self, requester: str, mailbox: str, now: float) -> bool:
        """Count a request from `requester` for `mailbox` (lower-cased) and return True, unless it is over a
        limit (then it is not counted)."""
        pair = f"{requester} {mailbox}"
        if self.per_requester.retry_after(requester, now) or self.per_mailbox.retry_after(pair, now):
            return False
        self.per_requester.record(requester, now)
        self.per_mailbox.record(pair, now)
        return True


LIMITS = web.AppKey("sign_in_limits", Limits)


def _next(text: str | None) -> str:
    """Where to go once signed in: a path of this site only (an open redirect would send a customer
    anywhere)."""
    if text and text.startswith("/") and not text.startswith(("//", "/\\")) and text.isprintable():
        return text
    return "/incidents"


@routes.get("/sign-in")
async def ask(request: web.Request) -> web.StreamResponse:
    following = _next(request.query.get("next"))
    if await current_client(request) is not None:
        raise web.HTTPSeeOther(following)
    return render(request, "sign_in.html", None, next=following, sent=False, can_email=True)


@routes.post("/sign-in")
async def send(request: web.Request) -> web.Response:
    form = await request.post()
    address = str(form.get("email", "")).strip()[:254]
    following = _next(str(form.get("next", "")))
    settings = request.app[SETTINGS]
    can_email = bool(settings.email.smtp_host or settings.email.capture_dir)
    if can_email and "@" in address and request.app[LIMITS].allow(requester_key(requester(request)),
                                                                   address.lower(), time.time()):
        # The page's own address, never the request's Host header, which a requester chooses.
        base = page_url(settings, request.transport.get_extra_info("sockname")[1])
        request.app[BACKGROUND].spawn(_email_link(request.app, address, base, following))
    return render(request, "sign_in.html", None, next=following, sent=True, can_email=can_email)


async def _email_link(app: web.Application, address: str, base: str, following: str) -> None:
    """Email a sign-in link to the client whose address this is, if any; log (never raise) what goes wrong."""
    settings = app[SETTINGS]
    client_id = None
    try:
        client = await app[STORE].client_by_email(address)
        if client is None:
            return
        client_id = client.id
        link = await new_sign_in_link(app[STORE], settings.web, base, client.id)
        language = choose_language(client.language, settings.alerts.language)
        message = compose_sign_in_email(client.email, f"{link}?{urlencode({'next': following})}",
                                        settings.web.sign_in_minutes, language, settings.email)
        await asyncio.to_thread(send_email, settings.email, message)
    except Exception as error:  # noqa: BLE001 - the requester was answered already;
        # the operator reads the log
        whose = f" to client {client_id}" if client_id else ""
        log.error("could not email a sign-in link%s: %s", whose, error)


@routes.get("/sign-in/{token}")
async def confirm(request: web.Request) -> web.Response:
    """The link's page: a button, so that a mail scanner fetching the link does not spend it."""
    return render(request, "sign_in_link.html", None, next=_next(request.query.get("next")))


@routes.post("/sign-in/{token}")
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    cookie = await request.app[SESSIONS].sign_in(request.match_info["token"])
    if cookie is None:
        return render(request, "message.html", None, status=400, title=_("This link no longer works"),
                      text=_("Sign-in links work once, for a few minutes. Ask for a new one."),
                      link="/sign-in")
    response = web.HTTPSeeOther(_next(str(form.get("next", ""))))
    response.set_cookie(SESSION_COOKIE, cookie, max_age=request.app[SESSIONS].lifetime, path="/",
                        httponly=True, samesite="Lax", secure=request.app[SECURE])
    raise response


@routes.post("/sign-out")
async def sign_out(request: web.Request) -> web.StreamResponse:
    """End the session, if the form carries its token: a page elsewhere cannot sign a customer out."""
    client = await current_client(request)
    if client is not None:
        refused = await form_refused(request, client, back="/incidents")
        if refused is not None:
            return refused
    await request.app[SESSIONS].sign_out(request.cookies.get(SESSION_COOKIE))
    response = web.HTTPSeeOther("/sign-in")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


ROUTES = list(routes)
