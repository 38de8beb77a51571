"""Muting a camera from an alert email's link, with no sign-in (the link's signature is the permission).

Opening the link (GET) only shows what it would do, with one button: mail scanners open every link of an
email, and a scanner must not mute a camera. The button's POST checks the link again, spends it (a link works
once), and mutes the incident's camera, audited as done by a mute link. A forged, altered, expired, spent or
unknown link does nothing and says so, the same way whatever was wrong with it: the answer tells a guesser
nothing.
"""

import time
from datetime import UTC, datetime

from aiohttp import web

from vigint import arming
from vigint.alerts import mutes
from vigint.errors import NotFoundError, VigintError
from vigint.store import Editor, Incident
from vigint.web.base import LINK_SECRET, STORE, language_of, render, zone_of

routes = web.RouteTableDef()
PATH = r"/mute/{id:\d{1,18}}"


async def _linked(request: web.Request) -> Incident | None:
    """The incident whose camera the request's link mutes, if the link is signed and unexpired; else None."""
    query = request.query
    try:
        found = await request.app[STORE].get_incident(int(request.match_info["id"]))
    except NotFoundError:  # deleted since, or never was: as a bad signature
        found = None
    if found is None:
        return None
    valid = mutes.mute_link_is_valid(request.app[LINK_SECRET], found, query.get("for", ""),
                                     query.get("exp", ""), query.get("sig", ""), time.time())
    return found if valid else None


def _refused(request: web.Request, status: int, reason: str) -> web.Response:
    return render(request, "mute.html", None, status=status, step=reason, camera="", state="", action="")


@routes.get(PATH)
async def confirm(request: web.Request) -> web.Response:
    """Show what the link would do, and the button that does it."""
    found = await _linked(request)
    if found is None:
        return _refused(request, 403, "invalid")
    return render(request, "mute.html", None, step="confirm", camera=found.camera,
                  choice=request.query["for"], state="", action=request.path_qs)


@routes.post(PATH)
async def mute(request: web.Request) -> web.Response:
    """Spend the link and mute its camera; say until when, in the client's zone."""
    found = await _linked(request)
    if found is None:
        return _refused(request, 403, "invalid")
    store = request.app[STORE]
    now = time.time()
    expires = float(request.query["exp"])
    if not await store.spend_mute_link(request.query["sig"], found.client_id, now, expires):
        return _refused(request, 409, "used")
    client = await store.get_client(found.client_id)
    zone = zone_of(client)
    instant = datetime.fromtimestamp(now, UTC)
    end = mutes.mute_end(request.query["for"], instant, zone)
    try:
        setting = await store.set_camera(client.id, found.camera, Editor.MUTE_LINK, now,
                                         muted_until=end.timestamp())
    except VigintError:  # the client is gone, or has as many camera settings as it may: nothing was muted
        return _refused(request, 409, "failed")
    current = arming.state(setting.schedule, zone, instant, end)
    state = arming.describe(current, instant, zone, language_of(request, None))
    return render(request, "mute.html", None, step="muted", camera=found.camera, state=state, action="")


ROUTES = list(routes)
