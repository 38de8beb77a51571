"""This node's open streams: who may connect, who is open, who is still finishing.

Live streams are held by client and camera: a camera streams once, a client at most
`max_streams_per_client` at a time, counting those that closed but still drain their decoder (a client
reconnecting in a loop would otherwise keep any number of decoders busy). Backfills (recorded footage, see
docs/protocol.md 4a) are held by camera beside them, one per camera and at most `max_streams_per_client` per
client, until their incidents are recorded.
"""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from vigint import protocol
from vigint.analysis.modes import Mode
from vigint.ingest.session import Session
from vigint.protocol import CloseCode, ProtocolViolation


class Streams:
    """The node's table of sessions. Event loop only: a check and the insertion it allows have no await
    between them, so two hellos cannot both pass."""

    def __init__(self, max_per_client: int):
        self._most = max_per_client
        self._live: dict[int, dict[str, Session]] = {}  # by client and camera, open or finishing
        self._backfills: dict[tuple[int, str], Session] = {}  # by (client, camera), open or finishing
        self._finishing: Counter[int] = Counter()  # live streams per client closed but still draining

    def add(self, session: Session) -> None:
        """Take a new session, or refuse it.

        A live stream that has ended but is still flushing its decoder no longer holds its name or its slot:
        its camera can reconnect at once. A backfill holds its camera's one backfill slot until it is finished
        (its incidents recorded): the same footage sent again meanwhile could open a second incident.

        Raises:
            ProtocolViolation: 4403 when the camera streams (or backfills) already, or the client is at its
                limit.
        """
        client_id = session.client_id
        camera = session.camera
        if session.backfill:
            if (client_id, camera) in self._backfills:
                raise protocol.backfill_taken(camera)
            # As many as its live streams may be: each holds a decoder and a ring, whatever its camera's name.
            if sum(client == client_id for client, _ in self._backfills) >= self._most:
                raise ProtocolViolation(CloseCode.OVER_LIMIT,
                                        f"over the limit of {self._most} backfills for this client")
            self._backfills[(client_id, camera)] = session
            return
        cameras = self._live.setdefault(client_id, {})
        if camera in cameras and not cameras[camera].ended:
            raise protocol.camera_taken(camera)
        if self._finishing[client_id] >= self._most:
            raise ProtocolViolation(CloseCode.OVER_LIMIT,
                                    "too many of this client's streams are still closing")
        if sum(not other.ended for other in cameras.values()) >= self._most:
            raise protocol.over_stream_limit(self._most)
        cameras[camera] = session

    @contextmanager
    def finishing(self, session: Session) -> Iterator[None]:
        """Count an ended live stream against its client's limit while the block drains its decoder."""
        if session.backfill:
            yield
            return
        self._finishing[session.client_id] += 1
        try:
            yield
        finally:
            self._finishing[session.client_id] -= 1
            if not self._finishing[session.client_id]:
                del self._finishing[session.client_id]

    def remove(self, session: Session) -> None:
        """Forget a finished session (unless a reconnection of its camera took its place)."""
        if session.backfill:
            self._backfills.pop((session.client_id, session.camera), None)
            return
        cameras = self._live.get(session.client_id, {})
        if cameras.get(session.camera) is session:
            del cameras[session.camera]
        if not cameras:
            self._live.pop(session.client_id, None)

    def live(self) -> list[Session]:
        """Return every open live stream (not backfills, nor those finishing after their connection
        closed)."""
        return [session for cameras in self._live.values() for session in cameras.values()
                if not session.ended]

    def open(self) -> list[Session]:
        """Return every open session, backfills included (not those finishing after their connection
        closed)."""
        return self.live() + [session for session in self._backfills.values() if not session.ended]

    def of_client(self, client_id: int) -> dict[str, Session]:
        """Return a client's live sessions by camera, open or still finishing."""
        return dict(self._live.get(client_id, {}))

    def backfill(self, client_id: int, camera: str) -> Session | None:
        """Return a camera's backfill session, open or still finishing, if any."""
        return self._backfills.get((client_id, camera))

    def by_client(self) -> dict[int, int]:
        """Return how many live streams each client has open."""
        return dict(Counter(session.client_id for session in self.live()))

    def by_mode(self) -> dict[str, int]:
        """Return how many open live streams are active and how many idle."""
        return {mode: sum(session.analysis.mode is mode for session in self.live()) for mode in Mode}
