"""Retention: incidents, their clips and stills older than `retention_days` are deleted, at start and every
hour. A file is only ever removed inside its own client's folder or prefix (see storage.py)."""

import asyncio
import logging
import time

from vigint.config import StorageSettings
from vigint.incidents.storage import ClipStorage, Removal, incident_files, open_clip_storage
from vigint.media import SECONDS_PER_DAY
from vigint.store import Store
from vigint.tasks import every

log = logging.getLogger(__name__)

RETENTION_CHECK_SECONDS = 3600.0


class Retention:
    """Deletes expired incidents and their clips and stills from `clip_storage` (default: the one `settings`
    name)."""

    def __init__(self, settings: StorageSettings, store: Store, clip_storage: ClipStorage | None = None):
        self._settings = settings
        self._store = store
        self._clips = clip_storage or open_clip_storage(settings)

    async def run(self, stopping: asyncio.Event, node_id: str) -> None:
        """Delete what has expired now and every hour, until `stopping`, on one node of all that share the
        database: the holder of the "retention" lease."""
        async def apply() -> None:
            now = time.time()
            if await self._store.hold_lease("retention", node_id, now + 2 * RETENTION_CHECK_SECONDS, now):
                await self.delete_expired(now)

        await every(RETENTION_CHECK_SECONDS, stopping, apply, log, "retention pass failed")

    async def delete_expired(self, now: float | None = None) -> int:
        """Delete what retention no longer keeps at `now` (default: the current time); return how many
        incidents went. An incident whose clip or still cannot be removed stays, to be tried again at the next
        pass: its row is what remembers that its files are due to go."""
        cutoff = (time.time() if now is None else now) - self._settings.retention_days * SECONDS_PER_DAY
        expired = await self._store.expired_incidents(cutoff)

        def remove_files() -> list[int]:  # in a worker thread: object storage answers over the network
            return [incident.id for incident in expired
                    if Removal.KEPT not in [self._clips.remove(incident.client_id, name)
                                            for name in incident_files(incident)]]

        gone = await asyncio.to_thread(remove_files)
        await self._store.delete_incidents(gone)
        return len(gone)
