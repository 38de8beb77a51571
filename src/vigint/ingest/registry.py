"""This node's side of the stream registry that all nodes share (`Store.claim_stream`).

A stream is registered after its hello and before its welcome, and released when it ends; the node renews
its streams' leases every third of `lease_seconds`. A stream whose entry is gone at a renewal (this node
could not reach the database for a whole lease, and another node may hold the camera now) is closed.

Only a shared database (PostgreSQL) holds a registry: on a SQLite file each node's own sessions are its
registry, and nothing here touches the database, so a hello never waits for another process's write lock.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from vigint.config import ServerSettings
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.store import Claim, Store, StreamEntry
from vigint.tasks import every

log = logging.getLogger(__name__)

S = TypeVar("S")


class Registry:
    """Claims, releases and renews one node's streams in the shared registry."""

    def __init__(self, store: Store, settings: ServerSettings, node_id: str):
        self._store, self._settings, self.node_id = store, settings, node_id
        self.shared = store.shared

    async def everywhere(self, here: list[S], now: float) -> list[S | StreamEntry]:
        """Return the open streams of every node: `here`, this node's, unless the registry is shared."""
        return await self._store.registered_streams(now) if self.shared else here

    async def claim(self, entry: StreamEntry) -> None:
        """Register a stream under its camera name. Raises ProtocolViolation: 4403 if the name streams already,
        on any node, or the client streams as many cameras as it may; 1013 if the database cannot be reached."""
        if not self.shared:
            return
        now = time.time()
        most = self._settings.max_streams_per_client
        try:
            # No longer than a hello may take: a locked or unreachable database must not hold connections open.
            answer = await asyncio.wait_for(self._store.claim_stream(entry, most, now + self._settings.lease_seconds,
                                                                     now), self._settings.auth_timeout_seconds)
        except Exception as error:  # noqa: BLE001 - the database is away: the agent retries after its backoff
            log.warning("client %d camera %r: cannot register the stream now (%s)", entry.client_id, entry.camera,
                        error or type(error).__name__)
            raise ProtocolViolation(CloseCode.TRY_AGAIN_LATER, "the service cannot take this stream now; try again") \
                from None
        if answer is Claim.TAKEN:
            raise ProtocolViolation(CloseCode.OVER_LIMIT, f"camera {entry.camera!r} is already streaming")
        if answer is Claim.OVER_LIMIT:
            raise ProtocolViolation(CloseCode.OVER_LIMIT, f"over the limit of {most} streams for this client")

    async def release(self, entry: StreamEntry) -> None:
        """Free a stream's camera name; if the database cannot be reached, the next renewal does it."""
        if not self.shared:
            return
        try:
            await self._store.release_stream(entry.client_id, entry.camera, entry.session_id)
        except Exception as error:  # noqa: BLE001 - the renewal drops entries of streams no longer open
            log.warning("client %d camera %r: could not free its name now (%s); the next renewal will",
                        entry.client_id, entry.camera, error)

    async def run(self, stopping: asyncio.Event, open_ids: Callable[[], set[str]],
                  lost: Callable[[set[str]], None]) -> None:
        """Renew the leases of the streams `open_ids()` names until `stopping`; pass `lost` those whose entry
        is gone."""
        if not self.shared:
            return

        async def renew() -> None:
            ids = open_ids()
            kept = await self._store.renew_streams(self.node_id, ids, time.time() + self._settings.lease_seconds)
            gone = ids - kept - open_ids().symmetric_difference(ids)  # not streams that opened or ended meanwhile
            if gone:
                lost(gone)

        await every(self._settings.lease_seconds / 3, stopping, renew, log,
                    "could not renew this node's streams; will retry")
