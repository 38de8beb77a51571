"""HTTP on the stream port: /healthz and /metrics; the stream path upgrades to WebSocket. Signed clip links
sent by earlier versions named this port: they are redirected to the customer's page, which streams clips from
their files (a clip is never read whole into this process's memory for a request).
"""

import http
import logging

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from vigint import protocol
from vigint.ingest.state import ServerState
from vigint.metrics import Metrics
from vigint.web.app import SECURITY_HEADERS

log = logging.getLogger(__name__)


class Routes:
    """Answers the plain HTTP requests of one server (websockets' `process_request`)."""

    def __init__(self, metrics: Metrics, state: ServerState):
        self._metrics = metrics
        self._state = state

    async def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path == protocol.PATH:
            return None
        # Alert emails' clip links: answered by the page, which streams the file.
        if path.startswith("/clips/"):
            response = connection.respond(http.HTTPStatus.TEMPORARY_REDIRECT,
                                          "the clip is on the customers' page\n")
            response.headers["Location"] = f"{self._state.page_url}{request.path}"
            # As the page's own answers: the signed link is never cached, nor sent on as a Referer.
            for name, value in SECURITY_HEADERS.items():
                response.headers[name] = value
            return response
        if path == "/healthz":  # a load balancer stops sending streams to a draining node (503)
            if self._state.draining:
                return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/metrics":
            streams = self._state.streams
            text = self._metrics.render(streams.by_client(), streams.by_mode(), self._state.usage_flush_lag())
            response = connection.respond(http.HTTPStatus.OK, text)
            # websockets' Headers keeps every value set: replace, not add.
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
