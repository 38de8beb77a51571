"""Store writes of incidents that wait out a busy database: another process holding the write lock (an admin
command, a backup) delays an incident, never loses it."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from vigint.store import is_busy

log = logging.getLogger(__name__)

# A write waits busy_timeout (5 s) for the lock before failing, so retries need not be frequent.
PERSIST_FIRST_RETRY_SECONDS = 0.5
PERSIST_MAX_RETRY_SECONDS = 30.0
T = TypeVar("T")


async def persist(what: str, write: Callable[[], Awaitable[T]]) -> T:
    """Run a store write until the database takes it: another process holding the write lock (an admin
    command, a backup) delays an incident, never loses it. Other errors are raised at once."""
    delay = PERSIST_FIRST_RETRY_SECONDS
    while True:
        try:
            return await write()
        except Exception as error:  # noqa: BLE001 - re-raised unless the store says it is only busy
            if not is_busy(error):
                raise  # a full disk or a read-only file: retrying would only hide it
            log.warning("%s: database busy (%s); retrying in %.1f s", what, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, PERSIST_MAX_RETRY_SECONDS)
