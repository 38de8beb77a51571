"""Keys handed over by a one-time link (`vigint key create --handover`): the link's page, its pick-up, its
death.

The database keeps the SHA-256 of the link's token and a random seal; the key is derived from both
(`vigint.keys.derive`) by the page that shows it, and checked here against the key's stored hash. Picking the
key up, the link dying and a revocation of its key or client all erase the seal, so the link alone is then
worth nothing, for good (reactivating does not revive it); the files keep no copy of an erased seal
(`scrub_at_commit`). Every pick-up and every death is audited.
"""

from vigint.store.audit import record_audit
from vigint.store.clients import _KEY_COLUMNS, _key, end_handovers
from vigint.store.engine import Engine, Transaction
from vigint.store.records import ApiKey

# A link that can still be used: not used yet, not dead, its key not revoked (columns of api_keys alone:
# SQLite's RETURNING takes no table alias).
_USABLE = """handover_hash = ?1 AND handover_seal IS NOT NULL AND picked_up_at IS NULL
             AND handover_expires_at > ?2 AND revoked_at IS NULL"""


async def _keys(db: Transaction, key_ids: list[int]) -> list[ApiKey]:
    marks = ", ".join("?" * len(key_ids))
    rows = await db.fetch_all(f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN clients c ON c.id = k.client_id "
                              f"WHERE k.id IN ({marks}) ORDER BY k.id", key_ids) if key_ids else []
    return [_key(row) for row in rows]


class HandoverQueries(Engine):
    """Hand-over links: looking one up, spending it, and letting the dead ones go."""

    async def pending_handover(self, token_hash: str, now: float) -> tuple[ApiKey, bytes] | None:
        """Return the key that a usable link hands over, with the link's seal; None if no link has this token
        hash, or it was used, it died, or its key or client was revoked."""
        rows = await self._fetch_all(
            f"""SELECT {_KEY_COLUMNS}, handover_seal FROM api_keys k JOIN clients c ON c.id = k.client_id
                WHERE {_USABLE} AND c.status = 'active'""", (token_hash, now))
        if not rows:
            return None
        values = dict(rows[0])
        seal = bytes.fromhex(values.pop("handover_seal"))
        return _key(values), seal

    async def pick_up_key(self, token_hash: str, key_hash: str, now: float) -> ApiKey | None:
        """Spend a hand-over link whose key has the SHA-256 `key_hash`: from now on the key works, and its
        seal is gone. Return the key's record, or None if the link was not usable or the hash is not its
        key's. A link is spent once, even by two requests at the same instant."""
        async with self._transaction() as db:
            rows = await db.fetch_all(
                f"""UPDATE api_keys SET picked_up_at = ?2, handover_seal = NULL WHERE {_USABLE} AND hash = ?3
                    AND client_id IN (SELECT id FROM clients WHERE status = 'active')
                    RETURNING id, client_id, prefix""", (token_hash, now, key_hash))
            if rows:
                await db.scrub_at_commit()
            for row in rows:
                await record_audit(db, now, "key.pickup", row["client_id"], row["id"],
                                   detail=f"prefix={row['prefix']}")
            picked = await _keys(db, [row["id"] for row in rows])
        return picked[0] if picked else None

    async def expire_handovers(self, now: float) -> list[ApiKey]:
        """Let the links that died unopened go: erase their seals, audit each; return their keys (which stay
        unusable: the key was never shown)."""
        async with self._transaction() as db:
            rows = await end_handovers(db, now, "key.handover_expire", "its hand-over link died unopened",
                                       "handover_expires_at <= ?", (now,))
            return await _keys(db, [row["id"] for row in rows])
