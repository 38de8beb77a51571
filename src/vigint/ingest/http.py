"""HTTP on the stream port: /healthz, /metrics and signed clip links; the stream path upgrades to WebSocket.

Clips answer byte ranges (`web.ranges`), as on the customer's page.
"""

import asyncio
import http
import logging
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
from vigint.web.ranges import answer_with_ranges

log = logging.getLogger(__name__)

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
