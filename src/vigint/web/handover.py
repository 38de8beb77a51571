"""Handing a new API key over by a one-time link, so that the key never travels in an email or a chat.

`vigint key create --handover` (and `client create`, `key rotate`) prints `<page>/keys/<token>` instead of the
key. The token is 256 random bits; the key is derived from it and a random seal (`vigint.keys.derive`), and
the database keeps only the SHA-256 of the token, the seal and the key's usual hash: no key, and no token that
works. Opening the link shows a button; only pressing it (a POST: a mail scanner fetching the link cannot
spend it) derives the key, checks it against the stored hash, marks it picked up and erases the seal in one
statement, and shows the key once with the `.env` lines for the agent. From then on the link derives nothing;
unopened, it dies after `[web] handover_hours`, and until it is opened the key is refused like an unknown one.
"""

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web
from markupsafe import Markup

from vigint import keys
from vigint.config import Settings
from vigint.store import ApiKey, Handover
from vigint.web.access import TOKEN, page_url, token_hash
from vigint.web.base import STORE, STREAM_URL, content_security_policy, render
from vigint.web.words import _

log = logging.getLogger(__name__)

# The copy buttons' script: the one script any page runs, allowed on the key's page alone by its hash. Without
# it (script off) the buttons stay hidden and the key and lines are plain selectable text.
COPY_SCRIPT = """for (const button of document.querySelectorAll("button[data-copy]")) {
  const text = document.getElementById(button.dataset.copy);
  button.hidden = false;
  button.addEventListener("click", () => {
    text.select();
    const copied = () => { button.textContent = button.dataset.copied; };
    const fallback = () => { if (document.execCommand("copy")) copied(); };
    if (navigator.clipboard) navigator.clipboard.writeText(text.value).then(copied, fallback);
    else fallback();
  });
}"""
COPY_SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(COPY_SCRIPT.encode()).digest()).decode()

routes = web.RouteTableDef()


@dataclass(frozen=True)
class NewHandover:
    """A new key's hand-over link, as the command that makes the key prints it, and what the store keeps of
    it."""

    url: str = field(repr=False)  # carries the token: with the seal, it derives the key
    handover: Handover
    key_hash: str
    key_prefix: str


def new_handover(settings: Settings, now: float | None = None) -> NewHandover:
    """Draw a hand-over link's token and seal and derive its key; return the link, valid
    `[web] handover_hours`, and the key's hash and display prefix. The key itself is forgotten here: only the
    link's page derives it again."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    seal = keys.new_seal()
    api_key = keys.derive(token, seal)
    return NewHandover(f"{page_url(settings)}/keys/{token}",
                       Handover(token_hash(token), seal, now + settings.web.handover_hours * 3600),
                       keys.hash_key(api_key), keys.display_prefix(api_key))


async def _pending(request: web.Request) -> tuple[ApiKey, bytes] | None:
    """The key the URL's link hands over, with its seal; None for a malformed, unknown, used or dead link."""
    token = request.match_info["token"]
    if not TOKEN.fullmatch(token):
        return None
    return await request.app[STORE].pending_handover(token_hash(token), time.time())


def _private(response: web.Response) -> web.Response:
    response.headers["Cache-Control"] = "no-store"  # no cache or back button may keep the key
    return response


def _dead(request: web.Request) -> web.Response:
    """The one answer to a link that shows nothing, whatever the reason: nobody learns which links existed."""
    return _private(render(request, "message.html", None, status=404, title=_("This link no longer works"),
                           text=_("A key's hand-over link works once, for a limited time. If you did not see "
                                  "your key, ask your Vigint operator for a new link."), link="/sign-in"))


@routes.get("/keys/{token}")
async def confirm(request: web.Request) -> web.Response:
    """The link's page: a button, so that a mail scanner fetching the link does not spend it."""
    found = await _pending(request)
    if found is None:
        return _dead(request)
    key = found[0]
    client = await request.app[STORE].get_client(key.client_id)
    return _private(render(request, "handover.html", None, reader=client, client_name=client.name,
                           api_key=None, until=key.handover_expires_at))


@routes.post("/keys/{token}")
async def pick_up(request: web.Request) -> web.Response:
    """Show the key once: derived from the link's token and seal, checked against its hash, marked picked
    up."""
    found = await _pending(request)
    if found is None:
        return _dead(request)
    token = request.match_info["token"]
    api_key = keys.derive(token, found[1])
    picked = await request.app[STORE].pick_up_key(token_hash(token), keys.hash_key(api_key), time.time())
    if picked is None:  # another request spent it first, or the key's hash is not the derived key's
        return _dead(request)
    log.info("client %d picked up key %d (%s…) through its hand-over link", picked.client_id, picked.id,
             picked.prefix)
    client = await request.app[STORE].get_client(picked.client_id)
    response = render(request, "handover.html", None, reader=client, client_name=client.name, api_key=api_key,
                      server_url=request.app[STREAM_URL], copy_script=Markup(COPY_SCRIPT))
    response.headers["Content-Security-Policy"] = content_security_policy(COPY_SCRIPT_HASH)
    return _private(response)


ROUTES = list(routes)
