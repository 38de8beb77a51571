"""Retention: incidents and their clips older than `retention_days` are deleted, at start and every hour;
a deleted client's clips go with it. A clip file is only ever removed inside its own client's folder."""

import asyncio
import logging
import time
from pathlib import Path

from vigint.config import StorageSettings
from vigint.media import SECONDS_PER_DAY
from vigint.store import Store
from vigint.tasks import every

log = logging.getLogger(__name__)

RETENTION_CHECK_SECONDS = 3600.0


def remove_clip(data_dir: Path, client_id: int, relative: str) -> bool:
    """Delete one of a client's clip files; return whether a file went.

    Only inside the client's own folder, whatever a row says: a delete never reaches another file.
    A file already gone is no error; another failure is logged (the rows are gone already).
    """
    folder, path = data_dir / "clips" / str(client_id), data_dir / relative
    if path.parent.resolve() != folder.resolve():
        log.warning("client %d: clip %s is outside %s, left in place", client_id, relative, folder)
        return False
    try:
        path.unlink()
    except FileNotFoundError:  # already gone (retention, or a clip that was never written)
        return False
    except OSError as error:
        log.warning("client %d: cannot remove clip %s: %s", client_id, path, error.strerror)
        return False
    return True


def remove_client_clips(data_dir: Path, client_id: int, clip_paths: list[str]) -> int:
    """Delete a deleted client's clip files and its then-empty clips folder; return how many files went."""
    removed = sum(remove_clip(data_dir, client_id, relative) for relative in clip_paths)
    folder = data_dir / "clips" / str(client_id)
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass
    except OSError as error:  # not empty: files the database does not know, kept for the operator to judge
        log.warning("client %d: %s kept: %s", client_id, folder, error.strerror)
    return removed


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
                remove_clip(self._settings.data_dir, incident.client_id, incident.clip_path)
        await self._store.delete_incidents([incident.id for incident in expired])
        return len(expired)
