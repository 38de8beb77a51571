"""The customer's cameras: each one's state ("armed until 08:00"), and a settings page per camera where the
customer decides when it is armed, mutes it, sets its sensitivity and draws the masks it ignores.

Every change goes through `Store.set_camera` as the customer (audited, checked there); a refused value is
shown on the form with nothing changed. The settings page is the one page that runs a script
(`static/masks.js`, to draw masks on the camera's picture), from the page's own origin only; typed as text,
the masks need no script.
"""

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from vigint import arming
from vigint.errors import InvalidInputError
from vigint.protocol import is_camera_name
from vigint.schedule import ALWAYS, Schedule, format_schedule
from vigint.store import CameraRecord, CameraSetting, Client, Editor, Incident
from vigint.store.cameras import arming_state
from vigint.web.base import LIVE, STORE, content_security_policy, language_of, render, signed_in, zone_of
from vigint.web.masktext import format_masks, parse_masks, read_number
from vigint.web.stills import STILLS

MAX_TODAY = 10_000  # incidents counted on the cameras page, all cameras together
MUTE_HOUR_SECONDS = 3600
STILL_CACHE = "private, max-age=5"  # a viewer reloading the page sees the same still for a few seconds
# The settings page may run its masks.js, from here; still nothing inline, nothing from elsewhere.
SETTINGS_POLICY = content_security_policy(own_scripts=True)
STATIC = Path(__file__).with_name("static")
# The static files, read once: the URL carries a digest of their content, so a browser may keep them for a
# year and still takes a new version at once.
SCRIPTS = {name: (STATIC / name).read_bytes() for name in ("masks.js", "live.js")}


def script_url(name: str) -> str:
    """Return the address of one of SCRIPTS, with its content's digest."""
    return f"/static/{name}?v={hashlib.sha256(SCRIPTS[name]).hexdigest()[:12]}"


SCRIPT_URL = script_url("masks.js")
LIVE_SCRIPT_URL = script_url("live.js")  # the live page's player, and the cameras page's snapshots'
ACTIONS = ("arming", "preset", "motion", "mute_hour", "mute_morning", "unmute")
routes = web.RouteTableDef()


@dataclass(frozen=True)
class Shown:
    """A camera as the cameras page lists it."""

    name: str
    live: bool
    record: CameraRecord | None  # None: it never streamed
    latest: Incident | None
    today: int  # incidents since midnight
    state: str  # "armed until 08:00"


def state_line(setting: CameraSetting | None, zone: tzinfo, now: datetime, language: str) -> str:
    """Return what the page says of a camera's arming at `now`, in the client's zone and language."""
    current = arming_state(setting, zone, now)
    return arming.describe(current, now, zone, language if language in arming.WORDS else "en")


@routes.get("/cameras")
@signed_in
async def cameras(request: web.Request, client: Client) -> web.Response:
    store, live = request.app[STORE], await request.app[LIVE](client.id)
    records = {record.camera: record for record in await store.client_cameras(client.id)}
    settings = {setting.camera: setting for setting in await store.camera_settings(client.id)}
    zone, now = zone_of(client), datetime.now(UTC)
    midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    todays = Counter(row.incident.camera for row in
                     await store.client_incidents(client.id, None, midnight.timestamp(), None, 0, MAX_TODAY))
    language, shown = language_of(request, client), []
    for name in sorted({*await store.client_camera_names(client.id), *live, *settings}):
        latest = await store.client_incidents(client.id, name, None, None, 0, 1)
        shown.append(Shown(name, name in live, records.get(name), latest[0].incident if latest else None,
                           todays[name], state_line(settings.get(name), zone, now, language)))
    response = render(request, "cameras.html", client, cameras=shown, today_date=midnight.date().isoformat(),
                      error=request.query.get("bad") is not None, script=LIVE_SCRIPT_URL)
    response.headers["Content-Security-Policy"] = SETTINGS_POLICY  # its snapshots' refresh: live.js
    return response


@routes.get("/cameras/settings")
@signed_in
async def named(request: web.Request, client: Client) -> web.Response:
    """The cameras page's "set up a camera" form: to the named camera's settings, streamed yet or not."""
    name = request.query.get("camera", "").strip()
    if not is_camera_name(name):
        raise web.HTTPSeeOther("/cameras?bad=1")
    raise web.HTTPSeeOther(camera_url(name, "settings"))


def camera_url(name: str, page: str = "") -> str:
    """Return the path of a camera's live page (or of its `settings`, `still.jpg`, `live` socket,
    `snapshot.jpg`)."""
    return f"/cameras/{quote(name, safe='')}" + (f"/{page}" if page else "")


def camera_name(request: web.Request) -> str:
    """The camera the URL names: any name a camera may have (it need not have streamed), else 404."""
    name = request.match_info["name"]
    if not is_camera_name(name):
        raise web.HTTPNotFound(text="no such camera\n")
    return name


@routes.get("/cameras/{name}/settings")
@signed_in
async def settings_page(request: web.Request, client: Client) -> web.Response:
    name = camera_name(request)
    setting = await request.app[STORE].camera_setting(client.id, name)
    return await _settings_page(request, client, name, setting, saved=request.query.get("saved") is not None)


async def _settings_page(request: web.Request, client: Client, name: str, setting: CameraSetting | None,
                         status: int = 200, error: str | None = None, typed: dict | None = None,
                         saved: bool = False) -> web.Response:
    """Render a camera's settings: as stored, or as the customer typed them (`typed`) with the error that kept
    them from being saved."""
    language, zone = language_of(request, client), zone_of(client)
    live = name in await request.app[LIVE](client.id)
    latest = await request.app[STORE].client_incidents(client.id, name, None, None, 0, 1)
    now = datetime.now(UTC)
    muted = setting is not None and setting.muted_until is not None and setting.muted_until > now.timestamp()
    response = render(request, "camera.html", client, status=status, camera=name,
                      url=camera_url(name, "settings"), still_url=camera_url(name, "still.jpg"),
                      state=state_line(setting, zone, now, language), live=live,
                      picture=live or bool(latest and latest[0].incident.stills), muted=muted,
                      values={**_stored(setting, language), **(typed or {})}, error=error, saved=saved,
                      script=SCRIPT_URL)
    response.headers["Content-Security-Policy"] = SETTINGS_POLICY
    return response


def _stored(setting: CameraSetting | None, language: str) -> dict[str, str]:
    """The form's fields as a camera's settings fill them: the schedule in the client's words; the opening
    hours of an "outside" schedule (the preset); blank for the operator's sensitivity and masks."""
    schedule = setting.schedule if setting else ALWAYS
    written = format_schedule(schedule, language) if schedule.entries else ""
    hours = format_schedule(Schedule(schedule.entries), language) if schedule.outside and written else ""
    sensitivity = None if setting is None else setting.sensitivity
    return {"armed": schedule.mode, "schedule": written, "hours": hours,
            "sensitivity": "" if sensitivity is None else f"{sensitivity:g}",
            "masks": format_masks(setting.masks) if setting and setting.masks else ""}


@routes.post("/cameras/{name}/settings")
@signed_in
async def change(request: web.Request, client: Client) -> web.Response:
    """Apply one of the settings page's forms (its button's `action`); on a refused value, show the form again
    with the error and what was typed, nothing changed."""
    name, form = camera_name(request), await request.post()
    action = str(form.get("action", ""))
    typed = {field: str(form[field]) for field in ("armed", "schedule", "hours", "sensitivity", "masks")
             if field in form}
    try:
        changes = _changes(action, typed, zone_of(client))
        await request.app[STORE].set_camera(client.id, name, Editor.CUSTOMER, **changes)
    except InvalidInputError as error:
        setting = await request.app[STORE].camera_setting(client.id, name)
        return await _settings_page(request, client, name, setting, status=400, error=str(error), typed=typed)
    raise web.HTTPSeeOther(f"{camera_url(name, 'settings')}?saved=1")


def _changes(action: str, typed: dict[str, str], zone: tzinfo) -> dict[str, object]:
    """Return `set_camera`'s keyword arguments for a form's action and fields. Raises InvalidInputError."""
    now = datetime.now(UTC)
    if action == "arming":
        armed = typed.get("armed", "")
        if armed not in ("always", "never", "schedule"):
            raise InvalidInputError("choose always, never or a schedule")
        return {"schedule": typed.get("schedule", "") if armed == "schedule" else armed}
    if action == "preset":
        return {"schedule": f"outside {typed.get('hours', '')}"}
    if action == "motion":
        sensitivity = typed.get("sensitivity", "").strip()
        masks = parse_masks(typed.get("masks", ""))
        return {"sensitivity": read_number(sensitivity, "the sensitivity") if sensitivity else None,
                "masks": masks or None}
    if action == "mute_hour":
        return {"muted_until": now.timestamp() + MUTE_HOUR_SECONDS}
    if action == "mute_morning":
        return {"muted_until": arming.next_morning(now, zone).timestamp()}
    if action == "unmute":
        return {"muted_until": None}
    raise InvalidInputError(f"this form's button is not one of {', '.join(ACTIONS)}")


@routes.get("/cameras/{name}/still.jpg")
@signed_in
async def still(request: web.Request, client: Client) -> web.StreamResponse:
    """The camera's latest picture: its stream's newest keyframe, else its newest incident's still."""
    name = camera_name(request)
    jpeg = await request.app[STILLS].still(client.id, name)
    if jpeg is not None:
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": STILL_CACHE})
    latest = await request.app[STORE].client_incidents(client.id, name, None, None, 0, 1)
    if latest and latest[0].incident.stills:
        raise web.HTTPSeeOther(f"/incidents/{latest[0].incident.id}/stills/0.jpg")
    raise web.HTTPNotFound(text="this camera has no picture yet\n")


@routes.get("/static/{name}")
async def script(request: web.Request) -> web.Response:
    body = SCRIPTS.get(request.match_info["name"])
    if body is None:
        raise web.HTTPNotFound(text="no such file\n")
    return web.Response(body=body, content_type="text/javascript", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})


ROUTES = list(routes)
