"""HTTP on the stream port: /healthz, /metrics and signed clip links; the stream path upgrades to WebSocket.

Clips answer byte ranges (RFC 9110 section 14): a phone's video player asks for the first bytes, then the
parts it plays, and Safari plays nothing from a server that answers a range with the whole file.
"""

import asyncio
import hashlib
import http
import logging
import re
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from vigint import protocol
from vigint.alerts import links
from vigint.incidents.storage import ClipStorage, StorageError
from vigint.metrics import Metrics
from vigint.store import Store

log = logging.getLogger(__name__)

# One range of bytes, at most 19 digits a bound (no int() of a 5,000-digit value); several ranges are ignored.
BYTE_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class Unsatisfiable(Exception):
    """The range asked for starts past the end of the body (416)."""


def byte_range(header: str | None, size: int) -> range | None:
    """Return the bytes a `Range` header asks of a `size`-byte body, or None for the whole body (no header, or one
    this server ignores: several ranges, other units, last before first).

    Raises:
        Unsatisfiable: the range starts at or past the end, or asks for the last 0 bytes.
    """
    match = BYTE_RANGE.fullmatch(header.strip()) if header else None
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:  # the last N bytes
        if int(match[2]) == 0:
            raise Unsatisfiable
        return range(max(0, size - int(match[2])), size)
    first, last = int(match[1]), int(match[2]) if match[2] else None
    if last is not None and last < first:
        return None
    if first >= size:
        raise Unsatisfiable
    return range(first, size if last is None else min(last + 1, size))


class Routes:
    """Answers the plain HTTP requests of one server (websockets' `process_request`)."""

    def __init__(self, store: Store, metrics: Metrics, clip_storage: ClipStorage, secret: str,
                 streams_by_client: Callable[[], dict[int, int]], streams_by_mode: Callable[[], dict[str, int]],
                 usage_flush_lag: Callable[[], float], draining: Callable[[], bool]):
        self._store, self._metrics, self._clips, self._secret = store, metrics, clip_storage, secret
        self._streams_by_client, self._streams_by_mode = streams_by_client, streams_by_mode
        self._usage_flush_lag, self._draining = usage_flush_lag, draining

    async def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path == protocol.PATH:
            return None
        if path.startswith("/clips/"):
            return await self._serve_clip(connection, request.headers, path.removeprefix("/clips/"), parse_qs(query))
        if path == "/healthz":  # a load balancer stops sending streams to a draining node (503)
            if self._draining():
                return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/metrics":
            response = connection.respond(http.HTTPStatus.OK, self._metrics.render(
                self._streams_by_client(), self._streams_by_mode(), self._usage_flush_lag()))
            del response.headers["Content-Type"]  # websockets' Headers keeps every value set: replace, not add
            response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    async def _serve_clip(self, connection: ServerConnection, headers: Headers, incident_id: str,
                          query: dict) -> Response:
        try:
            clip = await self.clip(incident_id, query.get("exp", [""])[0], query.get("sig", [""])[0])
        except StorageError as error:  # the link is good: say the clip is out of reach for now, not that it is bad
            log.error("clip of incident %s: %s", incident_id, error)
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "the clip cannot be read now; try later\n")
        if clip is None:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "this link is invalid or has expired\n")
        return answer_with_ranges(clip, "video/mp4", headers)

    async def clip(self, incident_id: str, expires: str, signature: str) -> bytes | None:
        """Return the clip a link opens, or None if the link is invalid, expired or has no clip. Raises StorageError
        when the link is valid but the clip storage cannot be read."""
        if not incident_id.isdigit():
            return None
        try:
            incident = await self._store.get_incident(int(incident_id))
        except Exception:  # noqa: BLE001 - unknown id: the same answer as a bad signature
            return None
        if incident.clip_path is None or not links.link_is_valid(self._secret, incident, expires, signature, time.time()):
            return None
        return await asyncio.to_thread(self._clips.read, incident.clip_path)


def answer_with_ranges(body: bytes, content_type: str, request: Headers) -> Response:
    """Answer a GET of `body`: whole (200), a byte range of it (206), 304 when the client holds it already
    (`If-None-Match`), 416 for a range past its end. `If-Range` with another version asks for it whole."""
    etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    headers = Headers([("Content-Type", content_type), ("Accept-Ranges", "bytes"), ("ETag", etag),
                       ("Cache-Control", "private, no-store")])
    if request.get("If-None-Match") in (etag, "*"):
        return Response(http.HTTPStatus.NOT_MODIFIED, "Not Modified", headers, b"")
    wanted = request.get("Range") if request.get("If-Range", etag) == etag else None
    try:
        part = byte_range(wanted, len(body))
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{len(body)}"
        return Response(http.HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "Range Not Satisfiable", headers, b"")
    if part is None:
        headers["Content-Length"] = str(len(body))
        return Response(http.HTTPStatus.OK, "OK", headers, body)
    headers["Content-Range"] = f"bytes {part.start}-{part.stop - 1}/{len(body)}"
    headers["Content-Length"] = str(len(part))
    return Response(http.HTTPStatus.PARTIAL_CONTENT, "Partial Content", headers, body[part.start:part.stop])
