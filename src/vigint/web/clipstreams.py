"""Clips streamed from object storage at once, pure: in total, per client and per link.

Each clip answer streamed from a bucket holds a connection to it, a worker thread now and then, and up to a
chunk and a socket buffer of memory until its reader has taken it all or is cut off. Without a cap, anyone
holding one signed link (no session needed) could open sockets, ask for the clip and never read, until the
server's memory is gone; with one, they only wait for their own places. A link is one incident's clip, on the
page or through its emailed link.
"""

import enum
from collections import Counter


class Cap(enum.Enum):
    """Which cap refused a stream; the value names what is busy, for the refusal's text."""

    TOTAL = "clips"
    CLIENT = "your clips"
    LINK = "this clip"


class ClipStreams:
    """Clip streams in flight: at most `max_total`, `max_per_client` of one client, `max_per_link` of one
    incident's clip."""

    def __init__(self, max_total: int, max_per_client: int, max_per_link: int):
        self._max_total, self._max_per_client, self._max_per_link = max_total, max_per_client, max_per_link
        self._clients: Counter[int] = Counter()
        self._links: Counter[int] = Counter()

    def take(self, client_id: int, incident_id: int) -> Cap | None:
        """Count a stream of the client's incident's clip and return None, or return the cap it would break
        (nothing counted then). Every stream counted is given back once, with `give_back`."""
        if self._links[incident_id] >= self._max_per_link:
            return Cap.LINK
        if self._clients[client_id] >= self._max_per_client:
            return Cap.CLIENT
        if self._clients.total() >= self._max_total:
            return Cap.TOTAL
        self._clients[client_id] += 1
        self._links[incident_id] += 1
        return None

    def give_back(self, client_id: int, incident_id: int) -> None:
        """End a stream `take` counted."""
        for counter, key in ((self._clients, client_id), (self._links, incident_id)):
            counter[key] -= 1
            if not counter[key]:
                del counter[key]  # no key kept for each incident ever streamed
