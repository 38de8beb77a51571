"""What this node's live streams received, for the backfills of any node: footage delivered live is not taken
again.

Each live stream knows the capture times it received (`Session.footage`). They are written with the usage
flush, so that another node, or this one restarted, knows them when the camera's backfill arrives; until
written, the spans of
ended streams stay here in memory, where this node's backfills find them at once. Not written at each stream's
end: while another process holds the database, each such write would wait out a busy timeout on the one
writer, ahead of an incident's.
"""

import logging
from collections.abc import Callable, Iterable

from vigint.ingest.session import Session
from vigint.store import LiveSpan, Store

log = logging.getLogger(__name__)


class LiveFootage:
    """The spans of footage this node's live streams received, written to the store (see the module's
    docstring)."""

    def __init__(self, store: Store, live: Callable[[], Iterable[Session]]):
        """`live()` returns the node's open live streams."""
        self._store = store
        self._live = live
        self._unsaved: dict[str, LiveSpan] = {}  # of live streams ended, by session, until written

    def _spans(self) -> list[LiveSpan]:
        return [*self._unsaved.values(), *filter(None, (session.footage() for session in self._live()))]

    def ended(self, session: Session) -> None:
        """A stream ended: keep a live one's span until the next flush writes it."""
        if (footage := session.footage()) is not None:
            self._unsaved[footage.session] = footage

    async def save(self) -> None:
        """Write the spans of the open live streams and of the ended ones not written yet. Raises what the
        store raises: the spans are kept for the next try."""
        unsaved = dict(self._unsaved)
        await self._store.save_live_footage(self._spans(), list(unsaved.values()))
        for name, span in unsaved.items():
            if self._unsaved.get(name) is span:
                del self._unsaved[name]

    async def of_camera(self, client_id: int, camera: str) -> list[tuple[int, int]]:
        """Return the (first, last) capture times (µs) of the footage the camera's live streams delivered, on
        every node; this node's only if the database cannot tell (the footage is then analysed again, never
        lost)."""
        try:
            spans = await self._store.live_footage(client_id, camera)
        except Exception as error:  # noqa: BLE001 - analysing footage twice is better than refusing it
            log.warning("client %d camera %r: could not read the footage received live (%s)", client_id,
                        camera, error)
            spans = []
        return spans + [(span.first_us, span.last_us) for span in self._spans()
                        if (span.client_id, span.camera) == (client_id, camera)]
