"""What the server's collaborators read of it: its open streams and a few facts about the node.

The composition root (serve/) builds one `ServerState` and hands it to those that must see the server (the
HTTP routes, the registry, the fleet monitor's snapshot, each connection's handler), never the server itself
nor functions that reach back into it (uvicorn's `ServerState`). Its type lives here, beside the streams it
holds, because the per-connection path writes it and must not import serve/.
"""

import time
from dataclasses import dataclass, field

from vigint.analysis.load import DecodeLoad
from vigint.fleet.monitor import LiveStream
from vigint.ingest.streams import Streams


@dataclass(eq=False)
class ServerState:
    """The node's shared state. Event loop only."""

    streams: Streams
    decode_load: DecodeLoad = field(default_factory=DecodeLoad)  # the server's overload, not a stream's
    draining: bool = False  # hellos are refused and /healthz answers 503 (see `Server.drain`)
    last_flush: float = field(default_factory=time.monotonic)  # when usage was last written
    streams_ended: bool = False  # since the heap was last trimmed
    page_url: str = ""  # the customers' page, once it listens

    def live(self) -> list[LiveStream]:
        """This node's streams for the fleet monitor's snapshot, backfills included (marked as such)."""
        return [session.live() for session in self.streams.open()]

    def cameras_live(self) -> list[LiveStream]:
        """This node's live cameras (not backfills)."""
        return [session.live() for session in self.streams.live()]

    def claimed_ids(self) -> set[str]:
        """The sessions whose camera names are registered for all nodes."""
        return {session.id for session in self.streams.open() if session.claimed}

    def usage_flush_lag(self) -> float:
        """Seconds since usage was last written."""
        return time.monotonic() - self.last_flush
