"""What every page handler shares: the application's parts, rendering, the client's time zone, sign-in
guard."""

import functools
import os
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from aiohttp import web
from markupsafe import Markup

from vigint.config import Settings
from vigint.incidents.storage import ClipStorage
from vigint.networks import Proxies
from vigint.store import Client, Store
from vigint.tasks import TaskSet
from vigint.web import formats, words
from vigint.web.access import SESSION_COOKIE, Sessions
from vigint.web.words import _

STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", Sessions)
CLIPS = web.AppKey("clips", ClipStorage)
LIVE = web.AppKey("live", Callable)
TEMPLATE_ENV = web.AppKey("templates", jinja2.Environment)
SECURE = web.AppKey("secure", bool)
LINK_SECRET = web.AppKey("link_secret", str)  # signs alert emails' clip links
# what agents stream to: the VIGINT_SERVER_URL of a customer's .env
STREAM_URL = web.AppKey("stream_url", str)
PROXIES = web.AppKey("proxies", Proxies)
BACKGROUND = web.AppKey("background", TaskSet)  # work that answers need not wait for: sign-in emails


FORM_TOKEN = "csrf"  # the hidden field of every form a signed-in page posts (see `form_refused`)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def content_security_policy(script_hash: str | None = None, own_scripts: bool = False,
                            own_sockets: bool = False) -> str:
    """The pages' Content-Security-Policy: no script (but the one whose hash is given, or the page's own
    static scripts, on the page that needs them: never inline script), no frame, nothing from elsewhere; the
    live page's script may open sockets to the page itself (`own_sockets`), nowhere else."""
    scripts = f"script-src '{script_hash}'; " if script_hash else "script-src 'self'; " if own_scripts else ""
    # The live player's MediaSource is a blob: URL its own script makes
    sockets = "connect-src 'self'; " if own_sockets else ""
    media = "'self' blob:" if own_sockets else "'self'"
    return (f"default-src 'none'; {scripts}{sockets}img-src 'self'; media-src {media}; "
            "style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@functools.cache
def server_zone() -> tzinfo:
    """Return the server's own time zone with its rules: TZ's IANA name, else /etc/localtime's, else (a TZ
    that is not an IANA name, no zone file) the offset it has now, the best left."""
    name = os.environ.get("TZ", "").removeprefix(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as file:
            return ZoneInfo.from_file(file)
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return datetime.now().astimezone().tzinfo


def zone_of(client: Client | None) -> tzinfo:
    """Return the client's time zone, else the server's (also for a name the system no longer knows): a zone
    with its rules, not today's offset, so that a time months away is shown with its own (summer or winter)
    offset."""
    name = client.timezone if client else None
    try:
        return ZoneInfo(name) if name else server_zone()
    except (ZoneInfoNotFoundError, ValueError):
        return server_zone()


@jinja2.pass_context
def when(context: jinja2.runtime.Context, timestamp: float, zone: tzinfo) -> str:
    """A time as the page shows it, in the page's language: `Fri 27 Nov 2026, 14:03:12 CET`."""
    return formats.moment(datetime.fromtimestamp(timestamp, zone), context["lang"])


def duration(seconds: float) -> str:
    """`42 s`, `3 min 5 s`, `2 h 1 min`: the units' symbols, written alike in English and French."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@jinja2.pass_context
def month(context: jinja2.runtime.Context, when: date | str) -> str:
    """A month (a date's, or YYYY-MM) in the page's language: `November 2026`, `novembre 2026`."""
    return formats.month(when, context["lang"])


@jinja2.pass_context
def day(context: jinja2.runtime.Context, iso: str) -> str:
    """A YYYY-MM-DD day in the page's language: `2026-01-31`, `31/01/2026`."""
    return formats.day(iso, context["lang"])


@jinja2.pass_context
def decimal(context: jinja2.runtime.Context, number: float, digits: int) -> str:
    """A number with `digits` decimals and the page's language's decimal point: `1.5`, `1,5`."""
    return formats.decimal(number, digits, context["lang"])


def environment(folder) -> jinja2.Environment:
    """Templates escape every value; an unknown name in a template is an error, not an empty string."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters.update(when=when, duration=duration, month=month, day=day, decimal=decimal)
    return env


async def current_client(request: web.Request) -> Client | None:
    """Return the client the request's session cookie is signed in as, if any."""
    return await request.app[SESSIONS].client(request.cookies.get(SESSION_COOKIE))


def language_of(request: web.Request, client: Client | None) -> str:
    """Return the language a page speaks: the client's, else (signed out) the browser's first we know, else
    the server's."""
    if client is not None and client.language in words.LANGUAGES:
        return client.language
    if client is None:
        for part in request.headers.get("Accept-Language", "").split(","):
            tag = part.split(";")[0].strip().lower()[:2]
            if tag in words.LANGUAGES:
                return tag
    return request.app[SETTINGS].alerts.language


def token_field(request: web.Request) -> Markup:
    """Return the hidden field of a signed-in page's forms: its session's form token (empty signed out)."""
    token = request.app[SESSIONS].form_token(request.cookies.get(SESSION_COOKIE))
    return Markup(f'<input type="hidden" name="{FORM_TOKEN}" value="{token}">') if token else Markup("")


def render(request: web.Request, name: str, client: Client | None, status: int = 200, *,
           reader: Client | None = None, **context) -> web.Response:
    """Render a template for the signed-in `client` (None: nobody), in its language and zone; a page shown
    without sign-in to a known client (a key's hand-over link) speaks to `reader` instead, without the
    menu. Every template gets `token_field`, for the forms of a signed-in page."""
    language = language_of(request, client or reader)
    template = request.app[TEMPLATE_ENV].get_template(name)
    text = template.render(client=client, zone=zone_of(client or reader), lang=language,
                           _=words.translator(language), token_field=token_field(request), **context)
    return web.Response(text=text, status=status, content_type="text/html")


async def form_refused(request: web.Request, client: Client | None,
                       back: str | None = None) -> web.Response | None:
    """Read a signed-in page's posted form (its size is bounded as it arrives, `connections.admitted`); return
    the answer refusing it, or None if it may be acted on: 403 without this session's form token (a form
    another site made the browser send, or one from a session that ended). The form is then `await
    request.post()` again, read once. `back`: the page the refusal links to (by default, the form's)."""
    form = await request.post()
    sent = str(form.get(FORM_TOKEN, ""))
    if request.app[SESSIONS].form_token_is_valid(request.cookies.get(SESSION_COOKIE), sent):
        return None
    return render(request, "message.html", client, status=403, title=_("This form has expired"),
                  text=_("This form did not come from your page as it is now (it may be from another site, "
                          "or from before you last signed in), so it was not acted on. Open the page again "
                          "and send it from there."), link=back or request.path)


def from_this_site(request: web.Request) -> bool:
    """Return whether a request was sent by the page itself, as far as the browser says (Go's
    CrossOriginProtection does the same): Sec-Fetch-Site where the browser sends it, else Origin against the
    Host it asked for (or `[web] public_url`), else Referer the same way. A request with none of them comes
    from no browser that could be made to post across sites: every browser sends Origin on a cross-origin
    POST."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")  # none: typed or bookmarked by the user
    origin = request.headers.get("Origin", request.headers.get("Referer"))
    if origin is None:
        return True
    public = urlsplit(request.app[SETTINGS].web.public_url).netloc
    return urlsplit(origin).netloc in {request.host, public} - {""}


def requester(request: web.Request) -> str:
    """Return the address a request came from: its socket's, or what a trusted proxy says (`proxies`)."""
    return request.app[PROXIES].requester(request.remote, request.headers.getall("X-Forwarded-For", []))


def signed_in(handler: Callable) -> Callable:
    """Run `handler(request, client)` for a signed-in request; send anyone else to sign in, then back here. A
    POST (any unsafe method) is acted on only with its session's form token (`form_refused`)."""
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        client = await current_client(request)
        if client is None:
            raise web.HTTPSeeOther(f"/sign-in?{urlencode({'next': request.path_qs})}")
        if request.method not in SAFE_METHODS:
            refused = await form_refused(request, client)
            if refused is not None:
                return refused
        return await handler(request, client)
    return guarded
