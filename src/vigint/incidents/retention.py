"""Retention: incidents and their clips older than `retention_days` are deleted, at start and every hour."""

import asyncio
import time

from vigint.config import StorageSettings
from vigint.store import Store
from vigint.tasks import every

SECONDS_PER_DAY = 86400
RETENTION_CHECK_SECONDS = 3600.0


class Retention:
    def __init__(self, settings: StorageSettings, store: Store):
        self._settings, self._store = settings, store

    async def run(self, stopping: asyncio.Event) -> None:
        """Delete what has expired now and every hour, until `stopping`."""
        await every(RETENTION_CHECK_SECONDS, stopping, self.delete_expired, "retention pass")

    async def delete_expired(self, now: float | None = None) -> int:
        """Delete what retention no longer keeps at `now` (default: the current time); return how many incidents went."""
        cutoff = (time.time() if now is None else now) - self._settings.retention_days * SECONDS_PER_DAY
        expired = await self._store.expired_incidents(cutoff)
        for incident in expired:
            if incident.clip_path:
                (self._settings.data_dir / incident.clip_path).unlink(missing_ok=True)
        await self._store.delete_incidents([incident.id for incident in expired])
        return len(expired)
