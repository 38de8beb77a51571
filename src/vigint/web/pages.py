"""The signed-in pages: incidents (list and one), an incident's clip and stills, cameras, usage and invoices.

Each handler takes the signed-in client from `base.signed_in` and asks the store for that client's rows only.
"""

import asyncio
import time
from collections import Counter
from datetime import date, datetime, timedelta

from aiohttp import web

from vigint.alerts import links
from vigint.billing.invoices import to_html
from vigint.errors import NotFoundError
from vigint.incidents.storage import StorageError, still_name
from vigint.store import Client, Incident
from vigint.web.base import CLIPS, LINK_SECRET, LIVE, STORE, render, signed_in, zone_of
from vigint.web.ranges import answer_with_ranges

PER_PAGE = 20
MAX_TODAY = 10_000  # incidents counted on the cameras page, all cameras together
MAX_PAGE = 10_000
routes = web.RouteTableDef()


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_PAGE else 1


def _day_bounds(text: str, client: Client) -> tuple[float, float] | None:
    """Return [start, end) of a YYYY-MM-DD day in the client's zone; None for an empty or malformed day."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    start = datetime.combine(day, datetime.min.time(), zone_of(client))
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/incidents")


@routes.get("/incidents")
@signed_in
async def incidents(request: web.Request, client: Client) -> web.Response:
    store, query = request.app[STORE], request.query
    camera = query.get("camera") or None
    day = query.get("day", "")
    bounds = _day_bounds(day, client) if day else None
    page = _page_number(query.get("page", "1"))
    listed = await store.client_incidents(client.id, camera, *(bounds or (None, None)), (page - 1) * PER_PAGE,
                                          PER_PAGE + 1)
    cameras = sorted({*await store.client_camera_names(client.id), *await request.app[LIVE](client.id)})
    return render(request, "incidents.html", client, listed=listed[:PER_PAGE], cameras=cameras, camera=camera,
                  day=day if bounds else "", bad_day=bool(day) and bounds is None, page=page,
                  more=len(listed) > PER_PAGE)


async def _incident(request: web.Request, client: Client) -> Incident:
    """The client's incident the URL names; 404 for another client's, as for one that does not exist."""
    found = await request.app[STORE].client_incident(client.id, int(request.match_info["id"]))
    if found is None:
        raise web.HTTPNotFound(text="no such incident\n")
    return found


@routes.get(r"/incidents/{id:\d{1,18}}")
@signed_in
async def incident(request: web.Request, client: Client) -> web.Response:
    return render(request, "incident.html", client, incident=await _incident(request, client))


@routes.get(r"/incidents/{id:\d{1,18}}/clip.mp4")
@signed_in
async def clip(request: web.Request, client: Client) -> web.StreamResponse:
    return await _clip(request, await _incident(request, client))


@routes.get(r"/clips/{id:\d{1,18}}")
async def linked_clip(request: web.Request) -> web.StreamResponse:
    """A clip opened by the signed link of an alert email (`alerts.links`): the link, not a session, lets it in. An
    unknown incident answers as a bad signature does."""
    try:
        found = await request.app[STORE].get_incident(int(request.match_info["id"]))
    except NotFoundError:
        found = None
    query = request.query
    if found is None or not links.link_is_valid(request.app[LINK_SECRET], found, query.get("exp", ""),
                                                query.get("sig", ""), time.time()):
        raise web.HTTPForbidden(text="this link is invalid or has expired\n")
    return await _clip(request, found)


async def _clip(request: web.Request, found: Incident) -> web.StreamResponse:
    """Answer a GET of an incident's clip: from its file with byte ranges, ETag and sendfile (aiohttp's), or read
    whole from object storage; `?download=1` saves it."""
    if found.clip_path is None:
        raise web.HTTPNotFound(text="this incident has no clip\n")
    headers = {"Cache-Control": "private, no-cache"}
    if request.query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="vigint-incident-{found.id}.mp4"'
    storage = request.app[CLIPS]
    if storage.local_folder is not None:
        path = storage.path(found.clip_path)
        if not path.is_file():
            raise web.HTTPNotFound(text="this clip is no longer kept\n")
        response = web.FileResponse(path, headers=headers)
        await response.prepare(_whole_unless_unchanged(request, path))
        return response
    return await _stored(request, found.clip_path, "video/mp4", headers)


@routes.get(r"/incidents/{id:\d{1,18}}/stills/{index:\d{1,2}}.jpg")
@signed_in
async def still(request: web.Request, client: Client) -> web.StreamResponse:
    found, index = await _incident(request, client), int(request.match_info["index"])
    if index >= found.stills:
        raise web.HTTPNotFound(text="no such still\n")
    return await _stored(request, still_name(client.id, found.id, index), "image/jpeg", {})


def _whole_unless_unchanged(request: web.Request, path) -> web.Request:
    """aiohttp's FileResponse honours an `If-Range` date but not an entity tag: a player resuming a clip that grew
    since (`If-Range: "<its old ETag>"`) must get the clip whole (RFC 9110 13.1.5), not a part of the new one. The
    tag is FileResponse's own: modification time in ns and size, in hex."""
    tag = request.headers.get("If-Range", "")
    if not tag.startswith(('"', "W/")):
        return request
    state = path.stat()
    if tag == f'"{state.st_mtime_ns:x}-{state.st_size:x}"':
        return request
    return request.clone(headers={name: value for name, value in request.headers.items()
                                  if name.lower() not in ("range", "if-range")})


async def _stored(request: web.Request, name: str, content_type: str, headers: dict) -> web.Response:
    """Answer a GET of a stored file read whole (object storage, stills), byte ranges and ETag included."""
    try:
        body = await asyncio.to_thread(request.app[CLIPS].read, name)
    except StorageError:
        raise web.HTTPServiceUnavailable(text="the file cannot be read now; try again later\n") from None
    if body is None:
        raise web.HTTPNotFound(text="this file is no longer kept\n")
    answer = answer_with_ranges(body, content_type, request.headers)
    response = web.Response(status=answer.status_code, body=answer.body, headers=answer.headers.raw_items())
    response.headers.update(headers)
    return response


@routes.get("/cameras")
@signed_in
async def cameras(request: web.Request, client: Client) -> web.Response:
    store, live = request.app[STORE], await request.app[LIVE](client.id)
    records = {record.camera: record for record in await store.client_cameras(client.id)}
    midnight = datetime.now(zone_of(client)).replace(hour=0, minute=0, second=0, microsecond=0)
    todays = Counter(row.incident.camera for row in
                     await store.client_incidents(client.id, None, midnight.timestamp(), None, 0, MAX_TODAY))
    shown = []
    for name in sorted({*await store.client_camera_names(client.id), *live}):
        latest = await store.client_incidents(client.id, name, None, None, 0, 1)
        shown.append((name, name in live, records.get(name), latest[0].incident if latest else None, todays[name]))
    return render(request, "cameras.html", client, cameras=shown, today_date=midnight.date().isoformat())


@routes.get("/account")
@signed_in
async def account(request: web.Request, client: Client) -> web.Response:
    store = request.app[STORE]
    month = datetime.now(zone_of(client)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = await store.usage_report(client.id, month.timestamp(), time.time())
    totals = {name: sum(getattr(row, name) for row in rows)
              for name in ("stream_seconds", "bytes_received", "incidents", "alerts_sent", "backfill_seconds")}
    return render(request, "account.html", client, month=month, totals=totals,
                  invoices=await store.client_invoices(client.id))


@routes.get(r"/invoices/{number:\d{1,18}}")
@signed_in
async def invoice(request: web.Request, client: Client) -> web.Response:
    found = await request.app[STORE].client_invoice(client.id, int(request.match_info["number"]))
    if found is None:
        raise web.HTTPNotFound(text="no such invoice\n")
    return web.Response(text=to_html(found), content_type="text/html")


ROUTES = list(routes)
