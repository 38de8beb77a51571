"""Retention: incidents and their clips older than `retention_days` are deleted, at start and every hour;
a deleted client's clips go with it. A clip file is only ever removed inside its own client's folder."""

import asyncio
import enum
import logging
import time
from pathlib import Path

from vigint.config import StorageSettings
from vigint.media import SECONDS_PER_DAY
from vigint.store import Store
from vigint.tasks import every

log = logging.getLogger(__name__)

RETENTION_CHECK_SECONDS = 3600.0


class Removal(enum.Enum):
    REMOVED = enum.auto()
    GONE = enum.auto()  # already gone (retention, or a clip that was never written)
    KEPT = enum.auto()  # outside the client's folder, or the file system refused: logged


def remove_clip(data_dir: Path, client_id: int, relative: str) -> Removal:
    """Delete one of a client's clip files, only inside the client's own folder whatever a row says: a delete
    never reaches another file."""
    folder, path = data_dir / "clips" / str(client_id), data_dir / relative
    if path.parent.resolve() != folder.resolve():
        log.warning("client %d: clip %s is outside %s, left in place", client_id, relative, folder)
        return Removal.KEPT
    try:
        path.unlink()
    except FileNotFoundError:
        return Removal.GONE
    except OSError as error:
        log.warning("client %d: cannot remove clip %s: %s", client_id, path, error.strerror)
        return Removal.KEPT
    return Removal.REMOVED


def remove_client_clips(data_dir: Path, client_id: int, clip_paths: list[str]) -> int:
    """Delete a deleted client's clip files and its then-empty clips folder; return how many files went."""
    removed = sum(remove_clip(data_dir, client_id, relative) is Removal.REMOVED for relative in clip_paths)
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

    async def run(self, stopping: asyncio.Event, node_id: str) -> None:
        """Delete what has expired now and every hour, until `stopping`, on one node of all that share the
        database: the holder of the "retention" lease."""
        async def apply() -> None:
            now = time.time()
            if await self._store.hold_lease("retention", node_id, now + 2 * RETENTION_CHECK_SECONDS, now):
                await self.delete_expired(now)

        await every(RETENTION_CHECK_SECONDS, stopping, apply, log, "retention pass failed")

    async def delete_expired(self, now: float | None = None) -> int:
        """Delete what retention no longer keeps at `now` (default: the current time); return how many incidents
        went. An incident whose clip file cannot be removed stays, to be tried again at the next pass: its row is
        what remembers that the file is due to go."""
        cutoff = (time.time() if now is None else now) - self._settings.retention_days * SECONDS_PER_DAY
        gone = [incident.id for incident in await self._store.expired_incidents(cutoff) if not incident.clip_path
                or remove_clip(self._settings.data_dir, incident.client_id, incident.clip_path) is not Removal.KEPT]
        await self._store.delete_incidents(gone)
        return len(gone)
