"""Clients and their API keys: creating, rotating, revoking, reactivating, deleting, and looking keys up.

A key is stored as the SHA-256 of the whole key plus a display prefix; nothing here sees or makes a key.
Every change writes its audit row in the same transaction.
"""

import time
from collections.abc import Sequence

from vigint.errors import InvalidInputError, NotFoundError
from vigint.store.audit import audit_time, record_audit
from vigint.store.engine import Engine, Row, Transaction
from vigint.store.records import ApiKey, Client, ClientStatus, Handover, KeyState
from vigint.words import plural

_KEY_COLUMNS = """k.id, k.client_id, k.prefix, k.label, k.created_at, k.expires_at, k.revoked_at,
                  k.last_used_at, c.status AS client_status, k.handover_expires_at, k.picked_up_at"""
# Every key is read with its client's status, which its state depends on.
_SELECT_KEYS = f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN clients c ON c.id = k.client_id"
# What `update_client` changes: timezone and language (NULL: the server's), address and VAT number (its
# invoices').
CLIENT_SETTINGS = frozenset({"timezone", "language", "address", "vat_id"})
SERVER_DEFAULTED = frozenset({"timezone", "language"})
# A revocation ends a pending hand-over link for good: reactivating must not bring back a link that may have
# been forwarded or seen meanwhile.
_ENDED_BY_REVOCATION = "its hand-over link ended unopened with the revocation"


def _client(row: Row) -> Client:
    return Client(**{**dict(row), "status": ClientStatus(row["status"])})


def _key(row: Row) -> ApiKey:
    return ApiKey(**{**dict(row), "client_status": ClientStatus(row["client_status"])})


async def _insert_key(db: Transaction, client_id: int, key_hash: str, prefix: str, label: str,
                      expires_at: float | None, now: float, handover: Handover | None = None) -> int:
    """Add a key row and its audit row on `db`, the caller's open transaction; return the key's id. A key
    given with a `handover` link is refused until the link is used."""
    link = (handover.token_hash, handover.seal.hex(), handover.expires_at) if handover else (None, None, None)
    (row,) = await db.fetch_all(
        "INSERT INTO api_keys (client_id, hash, prefix, label, created_at, expires_at, handover_hash, "
        "handover_seal, handover_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (client_id, key_hash, prefix, label, now, expires_at, *link))
    await record_audit(db, now, "key.create", client_id, row["id"],
                       detail=f"prefix={prefix}" + (f" label={label!r}" if label else "")
                       + (f" handover_until={audit_time(handover.expires_at)}" if handover else ""))
    return row["id"]


async def end_handovers(db: Transaction, now: float, action: str, why: str, where: str,
                        params: Sequence = ()) -> list[Row]:
    """End the unused hand-over links of the keys matching `where` (with `params`), on `db`, the caller's open
    transaction: erase their seals (and every copy of them in the files, at commit), make them expire now at
    the latest, audit each as `action` (`why` says how it ended); return their keys' id, client_id and prefix.
    Such a key never works: it was never shown."""
    rows = await db.fetch_all(
        f"""UPDATE api_keys SET handover_seal = NULL,
                   handover_expires_at = CASE WHEN handover_expires_at > ? THEN ? ELSE handover_expires_at END
            WHERE handover_seal IS NOT NULL AND picked_up_at IS NULL AND {where}
            RETURNING id, client_id, prefix""", (now, now, *params))
    for row in rows:
        detail = f"prefix={row['prefix']}: {why}"
        await record_audit(db, now, action, row["client_id"], row["id"], detail=detail)
    if rows:
        await db.scrub_at_commit()
    return rows


class ClientQueries(Engine):
    """Clients, their keys, and the look-ups that authenticate a stream."""

    async def create_client(self, name: str, email: str, key_hash: str, key_prefix: str,
                            now: float | None = None, timezone: str | None = None,
                            language: str | None = None,
                            handover: Handover | None = None) -> tuple[Client, ApiKey]:
        """Create a client with its first key (given by hash and display prefix only, and its hand-over link
        if it is handed over by one), and the time zone and language of its alerts (None: the server's).

        Raises:
            InvalidInputError: a client with this email already exists.
        """
        now = time.time() if now is None else now
        async with self._transaction() as db:
            # two commands creating it at once: one client
            await db.serialize(f"client email {email.lower()}")
            existing = await self._fetch_one("SELECT id FROM clients WHERE lower(email) = lower(?)", (email,))
            if existing is not None:
                raise InvalidInputError(f"a client with email {email} already exists (id {existing['id']})")
            (row,) = await db.fetch_all(
                "INSERT INTO clients (name, email, status, created_at, updated_at, timezone, language) "
                "VALUES (?, ?, 'active', ?, ?, ?, ?) RETURNING id",
                (name, email, now, now, timezone, language))
            client_id = row["id"]
            await record_audit(db, now, "client.create", client_id, detail=f"name={name!r} email={email}")
            key_id = await _insert_key(db, client_id, key_hash, key_prefix, "", None, now, handover)
        return await self.get_client(client_id), await self.get_key(key_id)

    async def update_client(self, client_id: int, now: float | None = None, **settings: str | None) -> None:
        """Change some of a client's own settings: `timezone` (an IANA name), `language` (en, fr), None for
        the server's; `address`, `vat_id` (printed on its next invoices), None for none. Audited with the new
        values.

        Raises:
            NotFoundError: no such client.
            ValueError: no setting given, or one a client does not have.
        """
        unknown = set(settings) - CLIENT_SETTINGS
        if not settings or unknown:
            raise ValueError(f"cannot update client settings {sorted(unknown)}: expected some of "
                             f"{sorted(CLIENT_SETTINGS)}")
        now = time.time() if now is None else now
        assignments = "".join(f"{name} = ?, " for name in settings)
        async with self._transaction() as db:
            await self.get_client(client_id)
            await db.execute(f"UPDATE clients SET {assignments}updated_at = ? WHERE id = ?",
                             (*settings.values(), now, client_id))
            detail = " ".join(f"{name}={value or ('server' if name in SERVER_DEFAULTED else 'none')}"
                              for name, value in settings.items())
            await record_audit(db, now, "client.update", client_id, detail=detail)

    async def get_client(self, client_id: int) -> Client:
        """Return one client. Raises NotFoundError."""
        row = await self._fetch_one("SELECT * FROM clients WHERE id = ?", (client_id,))
        if row is None:
            raise NotFoundError(f"no client with id {client_id}")
        return _client(row)

    async def list_clients(self) -> list[Client]:
        """Return every client, oldest first."""
        return [_client(row) for row in await self._fetch_all("SELECT * FROM clients ORDER BY id")]

    async def revoke_client(self, client_id: int, now: float | None = None) -> int:
        """Deactivate a client and all its keys at once; return how many keys were active.

        Raises:
            NotFoundError: no such client.
        """
        now = time.time() if now is None else now
        async with self._transaction() as db:
            await self.get_client(client_id)
            await db.execute("UPDATE clients SET status = 'revoked', updated_at = ? WHERE id = ?",
                             (now, client_id))
            count = await db.execute(
                "UPDATE api_keys SET revoked_at = ?, revoked_by = 'client' "
                "WHERE client_id = ? AND revoked_at IS NULL", (now, client_id))
            # signed out at once
            await db.execute("DELETE FROM web_sessions WHERE client_id = ?", (client_id,))
            await record_audit(db, now, "client.revoke", client_id,
                               detail=f"{plural(count, 'key')} deactivated")
            await end_handovers(db, now, "key.handover_end", _ENDED_BY_REVOCATION, "client_id = ?",
                                (client_id,))
            await db.notify_keys_changed()
        return count

    async def reactivate_client(self, client_id: int, key_id: int | None = None,
                                now: float | None = None) -> int:
        """Make a client active again, with the keys its revocation deactivated, or only `key_id`.

        Keys revoked one by one (rotation) stay revoked unless named by `key_id`.
        Returns how many keys were restored.
        Raises:
            NotFoundError: no such client, or `key_id` is not one of its keys.
        """
        now = time.time() if now is None else now
        async with self._transaction() as db:
            await self.get_client(client_id)
            if key_id is None:
                count = await db.execute(
                    "UPDATE api_keys SET revoked_at = NULL, revoked_by = NULL "
                    "WHERE client_id = ? AND revoked_by = 'client'", (client_id,))
            else:
                count = await db.execute(
                    "UPDATE api_keys SET revoked_at = NULL, revoked_by = NULL WHERE id = ? AND client_id = ?",
                    (key_id, client_id))
                if count == 0:
                    raise NotFoundError(f"client {client_id} has no key with id {key_id}")
            await db.execute("UPDATE clients SET status = 'active', updated_at = ? WHERE id = ?",
                             (now, client_id))
            await record_audit(db, now, "client.reactivate", client_id, key_id,
                               detail=f"{plural(count, 'key')} restored")
        return count

    async def delete_client(self, client_id: int, now: float | None = None) -> Client:
        """Delete a client with its keys, usage, incidents and alerts. Raises NotFoundError."""
        now = time.time() if now is None else now
        async with self._transaction() as db:
            client = await self.get_client(client_id)
            await db.execute("DELETE FROM clients WHERE id = ?", (client_id,))
            await record_audit(db, now, "client.delete", client_id,
                               detail=f"name={client.name!r} email={client.email}")
            await db.notify_keys_changed()
        return client

    # Keys

    async def create_key(self, client_id: int, key_hash: str, prefix: str, label: str = "",
                         expires_at: float | None = None, now: float | None = None,
                         handover: Handover | None = None) -> ApiKey:
        """Add a key to an active client, handed over by a link if `handover`. Raises NotFoundError or
        InvalidInputError."""
        now = time.time() if now is None else now
        async with self._transaction() as db:
            client = await self.get_client(client_id)
            if client.status is not ClientStatus.ACTIVE:
                raise InvalidInputError(f"client {client_id} is revoked: reactivate it before adding keys")
            key_id = await _insert_key(db, client_id, key_hash, prefix, label, expires_at, now, handover)
        return await self.get_key(key_id)

    async def rotate_key(self, key_id: int, key_hash: str, prefix: str, label: str, old_expires_at: float,
                         now: float | None = None, handover: Handover | None = None) -> tuple[ApiKey, ApiKey]:
        """Give a key in use its successor (same client, `label`, handed over by a link if `handover`) and
        make it expire at `old_expires_at` (or sooner, if it already did); return both. Streams of the old key
        are closed at its expiry, on every node.

        Raises:
            NotFoundError: no such key.
            InvalidInputError: the key is not in use (revoked, expired, its client revoked, or not picked up).
        """
        now = time.time() if now is None else now
        async with self._transaction() as db:
            old = await self.get_key(key_id)
            state = old.state(now)
            if state is not KeyState.ACTIVE:
                what = state.value.replace("_", " ")
                raise InvalidInputError(f"key {key_id} is {what}: only a key in use can be rotated "
                                        f"(vigint key create --client-id {old.client_id} makes a new one)")
            new_id = await _insert_key(db, old.client_id, key_hash, prefix, label, None, now, handover)
            expires_at = min(old_expires_at, old.expires_at or old_expires_at)
            await db.execute("UPDATE api_keys SET expires_at = ? WHERE id = ?", (expires_at, key_id))
            detail = f"prefix={old.prefix} successor={new_id} expires={audit_time(expires_at)}"
            await record_audit(db, now, "key.rotate", old.client_id, key_id, detail=detail)
            await db.notify_keys_changed()
        return await self.get_key(key_id), await self.get_key(new_id)

    async def get_key(self, key_id: int) -> ApiKey:
        """Return one key's record. Raises NotFoundError."""
        row = await self._fetch_one(f"{_SELECT_KEYS} WHERE k.id = ?", (key_id,))
        if row is None:
            raise NotFoundError(f"no key with id {key_id}")
        return _key(row)

    async def list_keys(self, client_id: int | None = None) -> list[ApiKey]:
        """Return every key, or one client's (NotFoundError if that client does not exist)."""
        if client_id is None:
            rows = await self._fetch_all(f"{_SELECT_KEYS} ORDER BY k.id")
        else:
            await self.get_client(client_id)
            rows = await self._fetch_all(f"{_SELECT_KEYS} WHERE k.client_id = ? ORDER BY k.id", (client_id,))
        return [_key(row) for row in rows]

    async def revoke_key(self, key_id: int, now: float | None = None) -> ApiKey:
        """Revoke one key; its client's other keys keep working. Raises NotFoundError."""
        now = time.time() if now is None else now
        async with self._transaction() as db:
            key = await self.get_key(key_id)
            await db.execute(
                "UPDATE api_keys SET revoked_at = ?, revoked_by = 'key' WHERE id = ? AND revoked_at IS NULL",
                (now, key_id))
            await record_audit(db, now, "key.revoke", key.client_id, key_id, detail=f"prefix={key.prefix}")
            await end_handovers(db, now, "key.handover_end", _ENDED_BY_REVOCATION, "id = ?", (key_id,))
            await db.notify_keys_changed()
        return await self.get_key(key_id)

    async def find_key(self, key_hash: str) -> ApiKey | None:
        """Look a key up by the SHA-256 of the whole key: one indexed query, never behind a write."""
        rows = await self._read_all(f"{_SELECT_KEYS} WHERE k.hash = ?", (key_hash,))
        return _key(rows[0]) if rows else None

    async def keys_by_id(self, key_ids: set[int]) -> dict[int, ApiKey]:
        """Return the records of the given keys that still exist (a deleted client's are absent)."""
        if not key_ids:
            return {}
        marks = ", ".join("?" * len(key_ids))
        rows = await self._read_all(f"{_SELECT_KEYS} WHERE k.id IN ({marks})", tuple(key_ids))
        return {row["id"]: _key(row) for row in rows}

    async def count_clients(self) -> int:
        """Return how many clients exist."""
        return (await self._fetch_one("SELECT count(*) AS count FROM clients"))["count"]
