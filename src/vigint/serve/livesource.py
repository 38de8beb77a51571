"""The customers' page's view of this node's live streams for their live views (`web.livefeed.Sources`): the
page may not import the ingest side that holds the rings, so the composition root lends it this reader."""

from collections.abc import Callable

from vigint.ingest.session import Session
from vigint.ingest.streams import Streams
from vigint.media import Packet


class SessionSource:
    """One live session as a live view reads it (`web.livefeed.Source`). Event loop only."""

    def __init__(self, session: Session):
        self._session = session
        self.key_id = session.key_id

    @property
    def ended(self) -> bool:
        return self._session.over

    @property
    def origin(self) -> int:
        """Its first frame's capture time as received, else (a clock a day off) its ring's oldest packet's."""
        if self._session.live_span is not None:
            return self._session.live_span[0]
        packets = self._session.packets()
        return packets[0].dts if packets else 0

    def newest_gop(self) -> list[Packet]:
        ring = self._session.analysis.packets
        newest = ring.last_keyframe_dts()
        return [] if newest is None else ring.since(newest, ring.bytes)

    def newest(self) -> Packet | None:
        return self._session.analysis.packets.newest()

    def watch(self, watcher: Callable[[], None]) -> None:
        self._session.watchers.append(watcher)

    def unwatch(self, watcher: Callable[[], None]) -> None:
        if watcher in self._session.watchers:
            self._session.watchers.remove(watcher)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SessionSource) and other._session is self._session

    def __hash__(self) -> int:
        return id(self._session)


class RingSources:
    """Finds a client's camera's open live stream on this node (`web.livefeed.Sources`)."""

    def __init__(self, streams: Streams):
        self._streams = streams

    def find(self, client_id: int, camera: str) -> SessionSource | None:
        session = self._streams.of_client(client_id).get(camera)
        if session is None or session.over or session.backfill:
            return None
        return SessionSource(session)
