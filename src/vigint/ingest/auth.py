"""Authentication of an API key against the store."""

import time

from vigint import keys
from vigint.store import ApiKey, KeyState, Store


async def authenticate(store: Store, api_key: str, now: float | None = None) -> ApiKey | None:
    """Return the record of `api_key` if it authenticates now, else None.

    A key that fails its format or checksum is refused without touching the database; otherwise this
    is one indexed look-up by hash. Unknown, revoked and expired keys all give None: callers answer
    them alike, so that nobody can learn which keys exist.
    """
    if not keys.is_well_formed(api_key):
        return None
    record = await store.find_key(keys.hash_key(api_key))
    now = time.time() if now is None else now
    if record is None or record.state(now) is not KeyState.ACTIVE:
        return None
    return record
