"""The fleet: cameras last seen and down, unusual-usage flags, and keys in use about to expire."""

from vigint.store.clients import _KEY_COLUMNS, _key
from vigint.store.engine import Engine
from vigint.store.records import ApiKey, CameraRecord, Flag, FlagKind


class FleetQueries(Engine):
    """What the fleet monitor writes and `vigint status` / `vigint alerts` read."""

    async def cameras(self) -> list[CameraRecord]:
        """Return every camera that ever streamed, with when it was last seen and whether it is down."""
        rows = await self._fetch_all("SELECT * FROM cameras ORDER BY client_id, camera")
        return [CameraRecord(**dict(row)) for row in rows]

    async def camera_seen(self, live: list[tuple[int, str]], now: float) -> list[tuple[int, str]]:
        """Note the live cameras; return those that were down and are back (their down mark is cleared)."""
        async with self._transaction() as db:
            back = [(row["client_id"], row["camera"]) for row in await self._fetch_all(
                "SELECT client_id, camera, down_since FROM cameras WHERE down_since IS NOT NULL")
                    if (row["client_id"], row["camera"]) in set(live)]
            await db.executemany(
                """INSERT INTO cameras (client_id, camera, last_seen_at)
                   SELECT id, ?2, ?3 FROM clients WHERE id = ?1
                   ON CONFLICT (client_id, camera) DO UPDATE SET last_seen_at = excluded.last_seen_at,
                                                                 down_since = NULL""",
                [(client_id, camera, now) for client_id, camera in live])
        return back

    async def mark_cameras_down(self, silent_since: float, now: float) -> list[CameraRecord]:
        """Mark cameras unseen since `silent_since` and not yet reported as down; return them."""
        async with self._transaction() as db:
            rows = await self._fetch_all(
                "SELECT * FROM cameras WHERE down_since IS NULL AND last_seen_at < ?", (silent_since,))
            await db.executemany("UPDATE cameras SET down_since = ? WHERE client_id = ? AND camera = ?",
                                 [(row["last_seen_at"], row["client_id"], row["camera"]) for row in rows])
        return [CameraRecord(**{**dict(row), "down_since": row["last_seen_at"]}) for row in rows]

    async def raise_flag(self, kind: FlagKind, subject: str, client_id: int | None, key_id: int | None,
                         detail: str, now: float, quiet_seconds: float = 86400) -> Flag | None:
        """Store a flag unless the same kind and subject was flagged within `quiet_seconds`; return it if new.

        Raises:
            ValueError: `kind` is not a FlagKind's value.
        """
        kind = FlagKind(kind)
        async with self._transaction() as db:
            await db.serialize(f"flag {kind} {subject}")  # two nodes raising it at once: one flag
            recent = await self._fetch_one("SELECT id FROM flags WHERE kind = ? AND subject = ? AND at > ?",
                                           (kind, subject, now - quiet_seconds))
            if recent is not None:
                return None
            (row,) = await db.fetch_all(
                "INSERT INTO flags (at, kind, subject, client_id, key_id, detail) VALUES (?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (now, kind, subject, client_id, key_id, detail))
        return (await self.flags(flag_id=row["id"]))[0]

    async def flags(self, client_id: int | None = None, unnotified: bool = False, flag_id: int | None = None,
                    since: float | None = None) -> list[Flag]:
        """Return flags, newest first, filtered as asked."""
        rows = await self._fetch_all(
            """SELECT * FROM flags WHERE (client_id = ?1 OR ?1 IS NULL) AND (?2 = 0 OR notified_at IS NULL)
               AND (id = ?3 OR ?3 IS NULL) AND (at >= ?4 OR ?4 IS NULL) ORDER BY id DESC""",
            (client_id, int(unnotified), flag_id, since))
        return [Flag(**{**dict(row), "kind": FlagKind(row["kind"])}) for row in rows]

    async def flag_notified(self, flag_id: int, now: float) -> None:
        """Note that the operator was emailed about a flag."""
        async with self._transaction() as db:
            await db.execute("UPDATE flags SET notified_at = ? WHERE id = ?", (now, flag_id))

    async def keys_expiring(self, now: float, until: float, used_since: float) -> list[ApiKey]:
        """Return the keys that work now, expire by `until`, were used since `used_since`, and whose expiry
        the operator was not warned of yet."""
        rows = await self._fetch_all(
            f"""SELECT {_KEY_COLUMNS} FROM api_keys k JOIN clients c ON c.id = k.client_id
                WHERE k.expires_at > ? AND k.expires_at <= ? AND k.last_used_at >= ?
                  AND k.expiry_warned_at IS NULL AND k.revoked_at IS NULL AND c.status = 'active'
                ORDER BY k.expires_at""", (now, until, used_since))
        return [_key(row) for row in rows]

    async def key_expiry_warned(self, key_id: int, now: float) -> None:
        """Note that the operator was warned that this key expires soon."""
        async with self._transaction() as db:
            await db.execute("UPDATE api_keys SET expiry_warned_at = ? WHERE id = ?", (now, key_id))
