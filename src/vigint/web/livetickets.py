"""The signed tickets that let a viewer sent by one node watch a camera on another (pure: the clock is an
argument).

On several nodes, a camera's live view is served by the node its agent streams to; the viewer asked for it
on whichever node the balancer or a link chose, whose sign-in cookie is for that node's host name only. So
that node answers 303 to the streaming node's page with `?ticket=<client>.<expires>.<session>.<sig>`: an
HMAC, with the secret every node shares (`[alerts] link_secret`, which signs the session cookies and clip
links too), of the client, the camera, the viewer's session and an expiry TICKET_SECONDS away. The
streaming node takes it for that camera's page, snapshot and socket only, and turns it at once into a
pass: a cookie with the same signature less the expiry, its path that camera's, and answers 303 to the
clean address (the ticket leaves the address bar and the history). Nothing else on that node opens to it.

A ticket and a pass carry the session's stored hash (never its token, which cannot be derived from it), so
that each use looks the session up: a pass ends with its session (sign-out on any node, expiry,
revocation), like the cookie it came from. Why not relay the video through the page's node instead: the
bytes would cross the nodes' network twice, and the relaying node would need a connection of its own to the
streaming one, with its own authentication; a ticket costs one redirect.
"""

import hashlib
import hmac
import json
import re
from dataclasses import dataclass

# Long enough for a redirect on a slow phone, short enough that a ticket copied from a URL is spent.
TICKET_SECONDS = 60
PASS_COOKIE = "vigint_live"
_CLIENT = r"([0-9]{1,12})"
_SESSION = r"([0-9a-f]{64})"  # access.token_hash: a SHA-256
_SIGNATURE = r"([0-9a-f]{64})"
TICKET = re.compile(rf"{_CLIENT}\.([0-9]{{1,12}})\.{_SESSION}\.{_SIGNATURE}")
PASS = re.compile(rf"{_CLIENT}\.{_SESSION}\.{_SIGNATURE}")


@dataclass(frozen=True)
class Grant:
    """Who a valid ticket or pass lets watch its camera: the client, and the session to look up on each
    use."""

    client_id: int
    session: str

    def __repr__(self) -> str:  # the session hash opens the camera with the secret: keep it out of logs
        return f"Grant(client_id={self.client_id})"


def _signature(secret: str, kind: str, client_id: int, camera: str, session: str, expires: int) -> str:
    # JSON: a camera name cannot shift its neighbours; `kind` keeps a pass from ever reading as a ticket,
    # and "live" any of them from fitting a clip or mute link.
    message = json.dumps(["live", kind, client_id, camera, session, expires]).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def ticket(secret: str, client_id: int, camera: str, session: str, now: float) -> str:
    """Return a ticket to the client's camera for the session (its stored hash), valid TICKET_SECONDS."""
    expires = int(now) + TICKET_SECONDS
    signature = _signature(secret, "ticket", client_id, camera, session, expires)
    return f"{client_id}.{expires}.{session}.{signature}"


def read_ticket(secret: str, text: str, camera: str, now: float) -> Grant | None:
    """Return what a ticket grants for this camera now; None if malformed, forged, expired or another
    camera's. Never raises."""
    match = TICKET.fullmatch(text)
    if match is None or int(match[2]) < now:
        return None
    expected = _signature(secret, "ticket", int(match[1]), camera, match[3], int(match[2]))
    return Grant(int(match[1]), match[3]) if hmac.compare_digest(expected, match[4]) else None


def camera_pass(secret: str, grant: Grant, camera: str) -> str:
    """Return the pass cookie's value a ticket to this camera is exchanged for."""
    signature = _signature(secret, "pass", grant.client_id, camera, grant.session, 0)
    return f"{grant.client_id}.{grant.session}.{signature}"


def read_pass(secret: str, text: str, camera: str) -> Grant | None:
    """Return what a pass grants for this camera; None if malformed, forged or another camera's."""
    match = PASS.fullmatch(text)
    if match is None:
        return None
    expected = _signature(secret, "pass", int(match[1]), camera, match[2], 0)
    return Grant(int(match[1]), match[2]) if hmac.compare_digest(expected, match[3]) else None
