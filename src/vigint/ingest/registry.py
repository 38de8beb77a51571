"""This node's side of the stream registry that all nodes share (`Store.claim_stream`).

A stream is registered after its hello and before its welcome, and released when it ends; the node renews
its streams' leases every third of `lease_seconds`. A stream whose entry is gone at a renewal, or every
stream once renewals have failed for a whole lease (the database was out of reach, and another node may
hold their cameras now), is closed. One client's claims on this node go one at a time: a client
reconnecting in a loop holds at most one database connection, never the pool every client shares.

Only a shared database (PostgreSQL) holds a registry: on a SQLite file each node's own sessions are its
registry, and nothing here touches the database, so a hello never waits for another process's write lock.
"""

import asyncio
import logging
import time

from vigint import protocol
from vigint.config import ServerSettings
from vigint.fleet.monitor import LiveStream
from vigint.ingest.state import ServerState
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.store import Claim, Store, StreamEntry
from vigint.tasks import TaskSet, every

log = logging.getLogger(__name__)


class Registry:
    """Claims, releases and renews one node's streams in the shared registry."""

    def __init__(self, store: Store, settings: ServerSettings, node_id: str, state: ServerState,
                 tasks: TaskSet):
        """`state`: this node's streams; `tasks` closes those whose entries are gone."""
        self._store = store
        self._settings = settings
        self.node_id = node_id
        self._state = state
        self._tasks = tasks
        self.shared = store.shared
        # Per client: its claims' lock, and how many wait
        self._turns: dict[int, tuple[asyncio.Lock, int]] = {}

    async def everywhere(self, now: float) -> list[LiveStream | StreamEntry]:
        """Return the live streams of every node: this node's own, unless the registry is shared."""
        return await self._store.registered_streams(now) if self.shared else self._state.cameras_live()

    async def cameras_of(self, client_id: int) -> set[str]:
        """Name a client's cameras streaming now on any node."""
        streams = await self.everywhere(time.time())
        return {stream.camera for stream in streams if stream.client_id == client_id}

    async def claim(self, entry: StreamEntry) -> None:
        """Register a stream under its camera name. Raises ProtocolViolation: 4403 if the name streams
        already, on any node, or the client streams as many cameras as it may; 1013 if the database cannot be
        reached."""
        if not self.shared:
            return
        most = self._settings.max_streams_per_client
        try:
            # No longer than a hello may take: a locked or unreachable database must not hold
            # connections open.
            answer = await asyncio.wait_for(self._claim_in_turn(entry, most),
                                            self._settings.auth_timeout_seconds)
        except Exception as error:  # noqa: BLE001 - the database is away: the agent retries after its backoff
            log.warning("client %d camera %r: cannot register the stream now (%s)", entry.client_id,
                        entry.camera, error or type(error).__name__)
            raise ProtocolViolation(CloseCode.TRY_AGAIN_LATER,
                                    "the service cannot take this stream now; try again") from None
        if answer is Claim.TAKEN:
            raise protocol.camera_taken(entry.camera)
        if answer is Claim.OVER_LIMIT:
            raise protocol.over_stream_limit(most)

    async def _claim_in_turn(self, entry: StreamEntry, most: int) -> Claim:
        lock, waiting = self._turns.get(entry.client_id, (asyncio.Lock(), 0))
        self._turns[entry.client_id] = (lock, waiting + 1)
        try:
            async with lock:
                now = time.time()
                return await self._store.claim_stream(entry, most, now + self._settings.lease_seconds, now)
        finally:
            lock, waiting = self._turns[entry.client_id]
            if waiting == 1:
                del self._turns[entry.client_id]
            else:
                self._turns[entry.client_id] = (lock, waiting - 1)

    async def release(self, entry: StreamEntry) -> None:
        """Free a stream's camera name; if the database cannot be reached, its lease runs out instead."""
        if not self.shared:
            return
        try:
            releasing = self._store.release_stream(entry.client_id, entry.camera, entry.session_id)
            await asyncio.wait_for(releasing, self._settings.lease_seconds)
        except Exception as error:  # noqa: BLE001 - the entry is no longer renewed: it expires
            log.warning("client %d camera %r: could not free its name now (%s); it is free within "
                        "lease_seconds", entry.client_id, entry.camera, error)

    async def run(self, stopping: asyncio.Event) -> None:
        """Renew the leases of this node's claimed streams until `stopping`; close those whose entry is gone,
        and all of them once no renewal has succeeded for `lease_seconds`."""
        if not self.shared:
            return
        lease = self._settings.lease_seconds
        # When the last renewal that succeeded began: the leases run out a lease later
        renewed = time.monotonic()

        async def renew() -> None:
            nonlocal renewed
            ids = self._state.claimed_ids()
            began = time.monotonic()
            try:  # within a renewal interval: a database that hangs must not postpone the check below
                renewing = self._store.renew_streams(self.node_id, ids, time.time() + lease)
                kept = await asyncio.wait_for(renewing, lease / 3)
            except Exception:
                # The next renewal's answer would come after the leases ran out, when other nodes may
                # take these cameras: let them go now, so there are never two streams of one name.
                if time.monotonic() - renewed >= lease * 2 / 3:
                    self._lost(self._state.claimed_ids())
                raise
            renewed = began
            gone = (ids - kept) & self._state.claimed_ids()  # not those that ended meanwhile
            if gone:
                self._lost(gone)

        await every(self._settings.lease_seconds / 3, stopping, renew, log,
                    "could not renew this node's streams; will retry")

    def _lost(self, session_ids: set[str]) -> None:
        """Close the streams whose registry entries are gone: another node may stream their cameras now."""
        for session in self._state.streams.open():
            if session.id in session_ids:
                log.warning("client %d camera %r: its registration lapsed; closing it", session.client_id,
                            session.camera)
                closing = session.connection.close(CloseCode.GOING_AWAY, "stream registration lapsed")
                self._tasks.spawn(closing)
