"""The signed-in pages: incidents (list and one), an incident's clip and stills, usage and invoices (the
cameras are in `cameras`).

Each handler takes the signed-in client from `base.signed_in` and asks the store for that client's rows only.
"""

import asyncio
import contextlib
import logging
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from aiohttp import web

from vigint.alerts import links
from vigint.billing.invoices import to_html
from vigint.errors import InvalidInputError, NotFoundError
from vigint.incidents.storage import Chunks, StorageError, still_name
from vigint.media import SECONDS_PER_DAY
from vigint.store import Client, Editor, Incident, ReviewMark
from vigint.store.incidents import MAX_REVIEW_NOTE, REVIEW_FILTERS
from vigint.web.base import (CLIPS, LINK_SECRET, LIVE, SETTINGS, STORE, language_of, render, signed_in,
                             zone_of)
from vigint.web.clipstreams import Cap, ClipStreams
from vigint.web.ranges import answer_for

log = logging.getLogger(__name__)

PER_PAGE = 20
MAX_PAGE = 10_000
# False alarms are counted over a week: enough to see a camera that keeps crying wolf, recent enough that a
# mask drawn since shows its effect.
FALSE_ALARM_DAYS = 7
# Read from object storage at a time: what a reader that stops reading holds in memory, with the socket's
# buffer.
CHUNK_BYTES = 64 * 1024
RETRY_AFTER_SECONDS = 5
CACHED = "private, no-cache"  # clips and stills: kept by the browser, checked by ETag before use
STREAMS = web.AppKey("clip_streams", ClipStreams)  # clips streamed from object storage now
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
    store = request.app[STORE]
    query = request.query
    camera = query.get("camera") or None
    day = query.get("day", "")
    bounds = _day_bounds(day, client) if day else None
    review = query.get("review") if query.get("review") in REVIEW_FILTERS else None  # else: every incident
    page = _page_number(query.get("page", "1"))
    listed = await store.client_incidents(client.id, camera, *(bounds or (None, None)), (page - 1) * PER_PAGE,
                                          PER_PAGE + 1, review=review)
    cameras = sorted({*await store.client_camera_names(client.id), *await request.app[LIVE](client.id)})
    week_ago = time.time() - FALSE_ALARM_DAYS * SECONDS_PER_DAY
    false_alarms = await store.false_alarms_by_camera(client.id, week_ago)
    return render(request, "incidents.html", client, listed=listed[:PER_PAGE], cameras=cameras, camera=camera,
                  day=day if bounds else "", bad_day=bool(day) and bounds is None, page=page,
                  more=len(listed) > PER_PAGE, review=review or "", false_alarms=false_alarms,
                  false_alarm_days=FALSE_ALARM_DAYS)


async def _incident(request: web.Request, client: Client) -> Incident:
    """The client's incident the URL names; 404 for another client's, as for one that does not exist."""
    found = await request.app[STORE].client_incident(client.id, int(request.match_info["id"]))
    if found is None:
        raise web.HTTPNotFound(text="no such incident\n")
    return found


@routes.get(r"/incidents/{id:\d{1,18}}")
@signed_in
async def incident(request: web.Request, client: Client) -> web.Response:
    return _show(request, client, await _incident(request, client))


def _show(request: web.Request, client: Client, found: Incident, status: int = 200,
          error: str = "") -> web.Response:
    """The incident's page, with its review form (and why the review sent was refused: `error`)."""
    return render(request, "incident.html", client, status=status, incident=found, error=error,
                  max_note=MAX_REVIEW_NOTE)


@routes.post(r"/incidents/{id:\d{1,18}}/review")
@signed_in
async def review_incident(request: web.Request, client: Client) -> web.Response:
    """Mark the incident reviewed or a false alarm, with a note (or neither: not reviewed), then show it
    again."""
    found = await _incident(request, client)
    form = await request.post()
    mark = form.get("mark", "")
    note = form.get("note", "")
    if mark not in ("", *ReviewMark) or not isinstance(note, str):
        return _show(request, client, found, 400, "unknown")
    try:
        await request.app[STORE].review_incident(client.id, found.id, ReviewMark(mark) if mark else None,
                                                 note, Editor.CUSTOMER, time.time())
    except InvalidInputError:
        return _show(request, client, found, 400, "note")
    raise web.HTTPSeeOther(f"/incidents/{found.id}")


@routes.get(r"/incidents/{id:\d{1,18}}/clip.mp4")
@signed_in
async def clip(request: web.Request, client: Client) -> web.StreamResponse:
    return await _clip(request, await _incident(request, client))


@routes.get(r"/clips/{id:\d{1,18}}")
async def linked_clip(request: web.Request) -> web.StreamResponse:
    """A clip opened by the signed link of an alert email (`alerts.links`): the link, not a session, lets it
    in. An unknown incident answers as a bad signature does."""
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
    """Answer a GET of an incident's clip, with byte ranges and ETag: from its file (aiohttp's sendfile), or
    streamed from object storage in bounded chunks within the caps on clips sent at once; `?download=1` saves
    it."""
    if found.clip_path is None:
        raise web.HTTPNotFound(text="this incident has no clip\n")
    headers = {"Cache-Control": CACHED}
    if request.query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="vigint-incident-{found.id}.mp4"'
    if request.app[CLIPS].local_folder is not None:
        return _from_folder(request, found.clip_path, headers)
    with _streaming(request, found):
        return await _from_bucket(request, found.clip_path, "video/mp4", headers)


@routes.get(r"/incidents/{id:\d{1,18}}/stills/{index:\d{1,2}}.jpg")
@signed_in
async def still(request: web.Request, client: Client) -> web.StreamResponse:
    found = await _incident(request, client)
    index = int(request.match_info["index"])
    if index >= found.stills:
        raise web.HTTPNotFound(text="no such still\n")
    name = still_name(client.id, found.id, index)
    headers = {"Cache-Control": CACHED}
    if request.app[CLIPS].local_folder is not None:
        return _from_folder(request, name, headers)
    return await _from_bucket(request, name, "image/jpeg", headers)  # one chunk or two: no cap on stills


class _File(web.FileResponse):
    """aiohttp's FileResponse honours an `If-Range` date but not an entity tag: a player resuming a clip that
    grew since (`If-Range: "<its old ETag>"`) must get the clip whole (RFC 9110 13.1.5), not a part of the new
    one. The tag is FileResponse's own: modification time in ns and size, in hex. Returned unprepared: aiohttp
    prepares it once, after the header hook, and the connection stays open for the next range."""

    def __init__(self, path: Path, headers: dict[str, str]):
        super().__init__(path, headers=headers)
        self._file = path

    async def prepare(self, request: web.BaseRequest):
        tag = request.headers.get("If-Range", "")
        if tag.startswith(('"', "W/")):
            state = await asyncio.to_thread(self._file.stat)
            if tag != f'"{state.st_mtime_ns:x}-{state.st_size:x}"':
                request = request.clone(headers={name: value for name, value in request.headers.items()
                                                 if name.lower() not in ("range", "if-range")})
        return await super().prepare(request)


def _from_folder(request: web.Request, name: str, headers: dict[str, str]) -> web.StreamResponse:
    """Answer a GET of a file of the clips folder."""
    path = request.app[CLIPS].path(name)
    if not path.is_file():
        raise web.HTTPNotFound(text="this file is no longer kept\n")
    return _File(path, headers=headers)


@contextlib.contextmanager
def _streaming(request: web.Request, found: Incident):
    """Hold one of the places for clips streamed at once, the client's and the link's; refuse past a cap."""
    streams = request.app[STREAMS]
    refused = streams.take(found.client_id, found.id)
    if refused is Cap.TOTAL:
        raise web.HTTPServiceUnavailable(text="too many clips are being sent right now; try again in a few "
                                              "seconds\n", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if refused is not None:
        raise web.HTTPTooManyRequests(
            text=f"too many downloads of {refused.value} at once; wait for one to end, then try again\n",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    try:
        yield
    finally:
        streams.give_back(found.client_id, found.id)


async def _from_bucket(request: web.Request, name: str, content_type: str,
                       headers: dict) -> web.StreamResponse:
    """Answer a GET of a file in object storage, byte ranges and ETag included, reading from the bucket only
    the bytes asked for, a chunk at a time as the reader takes them."""
    storage = request.app[CLIPS]
    try:
        stored = await asyncio.to_thread(storage.describe, name)
    except StorageError:
        raise _unreadable() from None
    if stored is None:
        raise web.HTTPNotFound(text="this file is no longer kept\n")
    answer = answer_for(request.headers, stored.size, stored.etag)
    headers = {**answer.headers, **headers, "Content-Type": content_type}
    if not answer.part or request.method == "HEAD":
        return web.Response(status=answer.status, headers=headers)
    try:
        chunks = await asyncio.to_thread(storage.open_part, name, stored, answer.part, CHUNK_BYTES)
    except StorageError:
        raise _unreadable() from None
    response = web.StreamResponse(status=answer.status, headers=headers)
    try:
        await _send(request, response, chunks)
    finally:
        await asyncio.to_thread(chunks.close)
    return response


async def _send(request: web.Request, response: web.StreamResponse, chunks: Chunks) -> None:
    """Send the answer's head, then the chunks as the reader takes them. A reader that takes nothing for
    clip_send_timeout_seconds, or leaves, or a storage failing midway, cuts the connection: the reader sees a
    short answer, never a wrong one."""
    timeout = request.app[SETTINGS].web.clip_send_timeout_seconds
    try:
        await response.prepare(request)
        while chunk := await asyncio.to_thread(chunks.read):
            async with asyncio.timeout(timeout):
                await response.write(chunk)
        return
    except (TimeoutError, ConnectionError):
        pass  # a stalled or paused player asks again for the rest, with a range
    except StorageError as error:
        log.warning("%s", error)
    if request.transport is not None:
        request.transport.abort()  # not close(): that would wait for the stalled reader to take the rest


def _unreadable() -> web.HTTPException:
    return web.HTTPServiceUnavailable(text="the file cannot be read now; try again later\n",
                                      headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@routes.get("/account")
@signed_in
async def account(request: web.Request, client: Client) -> web.Response:
    store = request.app[STORE]
    month = datetime.now(zone_of(client)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = await store.usage_report(client.id, month.timestamp(), time.time())
    counted = ("stream_seconds", "bytes_received", "incidents", "alerts_sent", "backfill_seconds",
               "live_view_seconds")
    totals = {name: sum(getattr(row, name) for row in rows) for name in counted}
    return render(request, "account.html", client, month=month, totals=totals,
                  invoices=await store.client_invoices(client.id))


@routes.get(r"/invoices/{number:\d{1,18}}")
@signed_in
async def invoice(request: web.Request, client: Client) -> web.Response:
    found = await request.app[STORE].client_invoice(client.id, int(request.match_info["number"]))
    if found is None:
        raise web.HTTPNotFound(text="no such invoice\n")
    return web.Response(text=to_html(found, language_of(request, client)), content_type="text/html")


ROUTES = list(routes)
