"""The store: every SQL statement Vigint runs lives in this module.

SQLite through aiosqlite, in WAL mode so the admin CLI and the server can use one file at once. Each
write is one ``BEGIN IMMEDIATE`` transaction, so a writer waits (``busy_timeout``) instead of failing
half-way. The schema is a list of numbered migrations applied at open (``PRAGMA user_version``). Rows
come back as small frozen dataclasses; nothing here formats output or generates keys.
"""

import asyncio
import enum
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import aiosqlite

from vigint.billing.invoices import Invoice, Line
from vigint.billing.meter import UsageDelta
from vigint.errors import InvalidInputError, NotFoundError, StoreError

# How long a statement waits for another process's write lock before giving up: admin commands and
# the server's batched writes hold it for milliseconds, so 5 s only ever elapses when something hangs.
BUSY_TIMEOUT_MS = 5000

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE clients (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: audit rows and invoices name it
            name TEXT NOT NULL CHECK (length(name) > 0),
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            hash TEXT NOT NULL UNIQUE,  -- SHA-256 of the whole key; the key itself is never stored
            prefix TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            expires_at REAL,
            revoked_at REAL,
            -- 'client' when revoked with its client, so reactivating the client restores exactly those
            revoked_by TEXT CHECK (revoked_by IN ('key', 'client')),
            last_used_at REAL)""",
        "CREATE INDEX api_keys_client ON api_keys(client_id)",
        """CREATE TABLE usage (
            key_id INTEGER NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
            bucket_start INTEGER NOT NULL,  -- Unix seconds at the start of the hour
            stream_seconds REAL NOT NULL DEFAULT 0,
            bytes_received INTEGER NOT NULL DEFAULT 0,
            frames_decoded INTEGER NOT NULL DEFAULT 0,
            ai_calls INTEGER NOT NULL DEFAULT 0,
            ai_tokens INTEGER NOT NULL DEFAULT 0,
            alerts_sent INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, bucket_start)) WITHOUT ROWID""",
        """CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            key_id INTEGER REFERENCES api_keys(id) ON DELETE SET NULL,
            camera TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            type TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            threat INTEGER NOT NULL DEFAULT 0,
            clip_path TEXT,  -- relative to [storage] data_dir
            -- not_checked (no AI), confirmed, rejected, unverified (AI unreachable or malformed)
            verdict TEXT NOT NULL DEFAULT 'not_checked',
            -- pending (outbox rows undelivered), delivered, suppressed (not alerted), none (no channel)
            alert_state TEXT NOT NULL DEFAULT 'pending')""",
        "CREATE INDEX incidents_client ON incidents(client_id, started_at)",
        """CREATE TABLE alert_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
            channel TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            delivered_at REAL,
            last_error TEXT)""",
        "CREATE INDEX alert_outbox_due ON alert_outbox(delivered_at, next_attempt_at)",
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            action TEXT NOT NULL,
            client_id INTEGER,  -- no foreign key: the trail outlives a deleted client
            key_id INTEGER,
            detail TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX audit_log_client ON audit_log(client_id)",
    ),
    (
        # Issued invoices keep a copy of everything they show, so they print the same after prices change
        # or their client is deleted; the number is never reused.
        """CREATE TABLE invoices (
            number INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id INTEGER NOT NULL,  -- no foreign key: invoices outlive a deleted client
            period TEXT NOT NULL,
            issued_on TEXT NOT NULL,
            document TEXT NOT NULL,  -- JSON: client, seller, currency, VAT rate, lines; amounts as strings
            UNIQUE (client_id, period))""",
    ),
    (
        """CREATE TABLE cameras (
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            camera TEXT NOT NULL,
            last_seen_at REAL NOT NULL,
            down_since REAL,  -- set once the camera was reported down; cleared when it returns
            PRIMARY KEY (client_id, camera))""",
        """CREATE TABLE flags (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            kind TEXT NOT NULL,  -- addresses, spike, hellos
            subject TEXT NOT NULL,  -- what is flagged: key:<id> or address:<ip>; one open flag per kind and subject a day
            client_id INTEGER REFERENCES clients(id) ON DELETE CASCADE,
            key_id INTEGER,
            detail TEXT NOT NULL,
            notified_at REAL)""",
        "CREATE INDEX flags_subject ON flags(kind, subject, at)",
        """CREATE TABLE server_status (
            id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the running server's latest snapshot
            updated_at REAL NOT NULL,
            document TEXT NOT NULL)""",
    ),
)


class ClientStatus(enum.StrEnum):
    """Whether a client's keys may be used at all."""

    ACTIVE = "active"
    REVOKED = "revoked"


class KeyState(enum.StrEnum):
    """Whether one key authenticates now."""

    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Client:
    """One customer."""

    id: int
    name: str
    email: str
    status: ClientStatus
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ApiKey:
    """One API key's record: its hash stays in the database, only the display prefix comes out."""

    id: int
    client_id: int
    prefix: str
    label: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None
    client_status: ClientStatus

    def state(self, now: float) -> KeyState:
        """Return whether this key authenticates at time `now` (Unix seconds)."""
        if self.revoked_at is not None or self.client_status is not ClientStatus.ACTIVE:
            return KeyState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyState.EXPIRED
        return KeyState.ACTIVE


@dataclass(frozen=True)
class AuditEntry:
    """One admin action: what, on which client or key, when. Never a key."""

    id: int
    at: float
    action: str
    client_id: int | None
    key_id: int | None
    detail: str


@dataclass(frozen=True)
class UsageRow:
    """One key's usage over a period."""

    client_id: int
    client_name: str
    key_id: int
    key_prefix: str
    stream_seconds: float
    bytes_received: int
    frames_decoded: int
    ai_calls: int
    ai_tokens: int
    alerts_sent: int
    incidents: int


@dataclass(frozen=True)
class Incident:
    """Something that happened in front of a camera, with what was done about it."""

    id: int
    client_id: int
    key_id: int | None
    camera: str
    started_at: float
    ended_at: float | None
    type: str
    description: str
    threat: int
    clip_path: str | None
    verdict: str
    alert_state: str


@dataclass(frozen=True)
class CameraRecord:
    """A camera that streamed at least once."""

    client_id: int
    camera: str
    last_seen_at: float
    down_since: float | None


@dataclass(frozen=True)
class Flag:
    """Something unusual the operator should look at."""

    id: int
    at: float
    kind: str
    subject: str
    client_id: int | None
    key_id: int | None
    detail: str
    notified_at: float | None


@dataclass(frozen=True)
class Alert:
    """One undelivered outbox row, with what delivering it needs."""

    id: int
    channel: str  # email or webhook
    attempts: int
    incident: Incident
    client_name: str
    client_email: str


_KEY_COLUMNS = """k.id, k.client_id, k.prefix, k.label, k.created_at, k.expires_at, k.revoked_at,
                  k.last_used_at, c.status AS client_status"""


def _client(row: sqlite3.Row) -> Client:
    return Client(**{**dict(row), "status": ClientStatus(row["status"])})


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(**{**dict(row), "client_status": ClientStatus(row["client_status"])})


def _invoice(row: sqlite3.Row) -> Invoice:
    document = json.loads(row["document"])
    lines = tuple(Line(description, Decimal(quantity), unit, Decimal(unit_price), Decimal(amount))
                  for description, quantity, unit, unit_price, amount in document["lines"])
    return Invoice(row["number"], row["issued_on"], row["period"], row["client_id"], document["client_name"],
                   document["client_email"], document["currency"], lines, Decimal(document["vat_rate"]),
                   document["seller_name"], document["seller_address"], document["seller_vat_id"])


def is_busy(error: BaseException) -> bool:
    """Tell whether a database error only means another connection holds the lock: worth retrying.

    SQLite says "database is locked" (or "database table is locked") for both of its busy codes.
    """
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def _prepare_file(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite creates it world-readable."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    except OSError as error:
        raise StoreError(f"cannot open database {path}: {error.strerror}") from None


class Store:
    """An open database. Use `await Store.open(path)` (or ``async with await Store.open(path)``)."""

    def __init__(self, db: aiosqlite.Connection, path: Path):
        self._db = db
        self.path = path
        # One connection writes for the whole server: its tasks take turns at transactions.
        self._write_lock = asyncio.Lock()
        # Authentication and the revocation watch read through their own connection: aiosqlite runs one
        # connection's statements one at a time, so on the writer they would queue behind a write that
        # waits busy_timeout for another process's lock. In WAL mode readers never wait for writers.
        self._reader: aiosqlite.Connection | None = None

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @classmethod
    async def open(cls, path: Path) -> "Store":
        """Open (creating if needed) the database at `path` and bring its schema up to date.

        Raises:
            StoreError: the file cannot be created or written, or was made by a newer Vigint.
        """
        path = Path(path)
        _prepare_file(path)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open database {path}: {error}") from None
        store = cls(db, path)
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await store._use_wal()
            await db.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe in WAL mode
            await db.execute("PRAGMA foreign_keys = ON")
            await store._migrate()
            store._reader = await aiosqlite.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                                                    isolation_level=None)
            store._reader.row_factory = sqlite3.Row
            await store._reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as error:
            await store.close()
            raise StoreError(f"cannot use database {path}: {error}") from None
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Close the connections."""
        if self._reader is not None:
            await self._reader.close()
        await self._db.close()

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _use_wal(self) -> None:
        """Switch to WAL mode, which lets readers and one writer work at once across processes.

        SQLite answers "database is locked" without waiting while another process creates the file or
        checkpoints it on its last close, so this one step retries for up to busy_timeout.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                (mode,) = await (await self._db.execute("PRAGMA journal_mode")).fetchone()
                if mode != "wal":
                    await self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if not is_busy(error) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def _migrate(self) -> None:
        async with self._transaction() as db:
            (version,) = await (await db.execute("PRAGMA user_version")).fetchone()
            if version > len(MIGRATIONS):
                raise StoreError(f"database {self.path} has schema version {version}, newer than this "
                                 f"program knows ({len(MIGRATIONS)}): upgrade vigint")
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number]:
                    await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    async def _fetch_all(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return list(await self._db.execute_fetchall(sql, params))

    async def _fetch_one(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        rows = await self._fetch_all(sql, params)
        return rows[0] if rows else None

    @staticmethod
    async def _audit(db: aiosqlite.Connection, now: float, action: str, client_id: int | None,
                     key_id: int | None = None, detail: str = "") -> None:
        await db.execute("INSERT INTO audit_log (at, action, client_id, key_id, detail) VALUES (?, ?, ?, ?, ?)",
                         (now, action, client_id, key_id, detail))

    # Clients

    async def create_client(self, name: str, email: str, key_hash: str, key_prefix: str,
                            now: float | None = None) -> tuple[Client, ApiKey]:
        """Create a client with its first key (given by hash and display prefix only).

        Raises:
            InvalidInputError: a client with this email already exists.
        """
        now = time.time() if now is None else now
        async with self._transaction() as db:
            existing = await self._fetch_one("SELECT id FROM clients WHERE email = ?", (email,))
            if existing is not None:
                raise InvalidInputError(f"a client with email {email} already exists (id {existing['id']})")
            cursor = await db.execute(
                "INSERT INTO clients (name, email, status, created_at, updated_at) VALUES (?, ?, 'active', ?, ?)",
                (name, email, now, now))
            client_id = cursor.lastrowid
            await self._audit(db, now, "client.create", client_id, detail=f"name={name!r} email={email}")
            key_id = await self._insert_key(db, client_id, key_hash, key_prefix, "", None, now)
        return await self.get_client(client_id), await self.get_key(key_id)

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
            cursor = await db.execute(
                "UPDATE api_keys SET revoked_at = ?, revoked_by = 'client' WHERE client_id = ? AND revoked_at IS NULL",
                (now, client_id))
            await self._audit(db, now, "client.revoke", client_id, detail=f"{cursor.rowcount} key(s) deactivated")
        return cursor.rowcount

    async def reactivate_client(self, client_id: int, key_id: int | None = None, now: float | None = None) -> int:
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
                cursor = await db.execute(
                    "UPDATE api_keys SET revoked_at = NULL, revoked_by = NULL WHERE client_id = ? AND revoked_by = 'client'",
                    (client_id,))
            else:
                cursor = await db.execute(
                    "UPDATE api_keys SET revoked_at = NULL, revoked_by = NULL WHERE id = ? AND client_id = ?",
                    (key_id, client_id))
                if cursor.rowcount == 0:
                    raise NotFoundError(f"client {client_id} has no key with id {key_id}")
            await db.execute("UPDATE clients SET status = 'active', updated_at = ? WHERE id = ?", (now, client_id))
            await self._audit(db, now, "client.reactivate", client_id, key_id,
                              detail=f"{cursor.rowcount} key(s) restored")
        return cursor.rowcount

    async def delete_client(self, client_id: int, now: float | None = None) -> Client:
        """Delete a client with its keys, usage, incidents and alerts. Raises NotFoundError."""
        now = time.time() if now is None else now
        async with self._transaction() as db:
            client = await self.get_client(client_id)
            await db.execute("DELETE FROM clients WHERE id = ?", (client_id,))
            await self._audit(db, now, "client.delete", client_id,
                              detail=f"name={client.name!r} email={client.email}")
        return client

    # Keys

    @staticmethod
    async def _insert_key(db: aiosqlite.Connection, client_id: int, key_hash: str, prefix: str, label: str,
                          expires_at: float | None, now: float) -> int:
        cursor = await db.execute(
            "INSERT INTO api_keys (client_id, hash, prefix, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (client_id, key_hash, prefix, label, now, expires_at))
        await Store._audit(db, now, "key.create", client_id, cursor.lastrowid,
                           detail=f"prefix={prefix}" + (f" label={label!r}" if label else ""))
        return cursor.lastrowid

    async def create_key(self, client_id: int, key_hash: str, prefix: str, label: str = "",
                         expires_at: float | None = None, now: float | None = None) -> ApiKey:
        """Add a key to an active client (rotation). Raises NotFoundError or InvalidInputError."""
        now = time.time() if now is None else now
        async with self._transaction() as db:
            client = await self.get_client(client_id)
            if client.status is not ClientStatus.ACTIVE:
                raise InvalidInputError(f"client {client_id} is revoked: reactivate it before adding keys")
            key_id = await self._insert_key(db, client_id, key_hash, prefix, label, expires_at, now)
        return await self.get_key(key_id)

    async def get_key(self, key_id: int) -> ApiKey:
        """Return one key's record. Raises NotFoundError."""
        row = await self._fetch_one(
            f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN clients c ON c.id = k.client_id WHERE k.id = ?", (key_id,))
        if row is None:
            raise NotFoundError(f"no key with id {key_id}")
        return _key(row)

    async def list_keys(self, client_id: int | None = None) -> list[ApiKey]:
        """Return every key, or one client's (NotFoundError if that client does not exist)."""
        if client_id is None:
            rows = await self._fetch_all(
                f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN clients c ON c.id = k.client_id ORDER BY k.id")
        else:
            await self.get_client(client_id)
            rows = await self._fetch_all(
                f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN clients c ON c.id = k.client_id "
                "WHERE k.client_id = ? ORDER BY k.id", (client_id,))
        return [_key(row) for row in rows]

    async def revoke_key(self, key_id: int, now: float | None = None) -> ApiKey:
        """Revoke one key; its client's other keys keep working. Raises NotFoundError."""
        now = time.time() if now is None else now
        async with self._transaction() as db:
            key = await self.get_key(key_id)
            await db.execute(
                "UPDATE api_keys SET revoked_at = ?, revoked_by = 'key' WHERE id = ? AND revoked_at IS NULL",
                (now, key_id))
            await self._audit(db, now, "key.revoke", key.client_id, key_id, detail=f"prefix={key.prefix}")
        return await self.get_key(key_id)

    async def find_key(self, key_hash: str) -> ApiKey | None:
        """Look a key up by the SHA-256 of the whole key: one indexed query, never behind a write."""
        rows = await self._reader.execute_fetchall(
            f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN clients c ON c.id = k.client_id WHERE k.hash = ?",
            (key_hash,))
        return _key(rows[0]) if rows else None

    async def keys_by_id(self, key_ids: set[int]) -> dict[int, ApiKey]:
        """Return the records of the given keys that still exist (a deleted client's are absent)."""
        if not key_ids:
            return {}
        marks = ", ".join("?" * len(key_ids))
        rows = await self._reader.execute_fetchall(
            f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN clients c ON c.id = k.client_id WHERE k.id IN ({marks})",
            tuple(key_ids))
        return {row["id"]: _key(row) for row in rows}

    async def data_version(self) -> int:
        """Return a number that changes whenever another connection (this store's writer included)
        commits: a cheap change detector."""
        (version,) = await (await self._reader.execute("PRAGMA data_version")).fetchone()
        return version

    async def count_clients(self) -> int:
        """Return how many clients exist."""
        (count,) = await (await self._db.execute("SELECT count(*) FROM clients")).fetchone()
        return count

    # Usage

    async def record_usage(self, deltas: list[UsageDelta], last_used: dict[int, float]) -> None:
        """Add usage deltas to their hourly buckets and move keys' last-used times, in one transaction.

        Keys deleted meanwhile are skipped: their usage went with their client.
        """
        async with self._transaction() as db:
            await db.executemany(
                """INSERT INTO usage (key_id, bucket_start, stream_seconds, bytes_received, frames_decoded, ai_calls,
                                      ai_tokens, alerts_sent)
                   SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ?1)
                   ON CONFLICT (key_id, bucket_start) DO UPDATE SET
                       stream_seconds = stream_seconds + excluded.stream_seconds,
                       bytes_received = bytes_received + excluded.bytes_received,
                       frames_decoded = frames_decoded + excluded.frames_decoded,
                       ai_calls = ai_calls + excluded.ai_calls,
                       ai_tokens = ai_tokens + excluded.ai_tokens,
                       alerts_sent = alerts_sent + excluded.alerts_sent""",
                [(d.key_id, d.bucket_start, d.stream_seconds, d.bytes_received, d.frames_decoded, d.ai_calls,
                  d.ai_tokens, d.alerts_sent) for d in deltas])
            await db.executemany(
                "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?",
                [(at, key_id) for key_id, at in last_used.items()])

    async def usage_report(self, client_id: int | None, since: float | None, until: float | None) -> list[UsageRow]:
        """Return usage per key within [since, until) (hour buckets), with the key's client, by client then key."""
        rows = await self._fetch_all(
            """SELECT c.id AS client_id, c.name AS client_name, k.id AS key_id, k.prefix AS key_prefix,
                      total(u.stream_seconds) AS stream_seconds, total(u.bytes_received) AS bytes_received,
                      total(u.frames_decoded) AS frames_decoded, total(u.ai_calls) AS ai_calls,
                      total(u.ai_tokens) AS ai_tokens, total(u.alerts_sent) AS alerts_sent,
                      (SELECT count(*) FROM incidents i WHERE i.key_id = k.id AND (?2 IS NULL OR i.started_at >= ?2)
                         AND (?3 IS NULL OR i.started_at < ?3)) AS incidents
               FROM usage u JOIN api_keys k ON k.id = u.key_id JOIN clients c ON c.id = k.client_id
               WHERE (?1 IS NULL OR c.id = ?1) AND (?2 IS NULL OR u.bucket_start >= ?2)
                 AND (?3 IS NULL OR u.bucket_start < ?3)
               GROUP BY k.id ORDER BY c.id, k.id""", (client_id, since, until))
        counts = ("bytes_received", "frames_decoded", "ai_calls", "ai_tokens", "alerts_sent", "incidents")
        return [UsageRow(**{**dict(row), **{name: int(row[name]) for name in counts}}) for row in rows]

    # Incidents and alerts

    async def create_incident(self, client_id: int, key_id: int, camera: str, started_at: float) -> Incident:
        """Record a new motion incident; its clip and verdict come later."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO incidents (client_id, key_id, camera, started_at, type) VALUES (?, ?, ?, ?, 'motion')",
                (client_id, key_id, camera, started_at))
        return await self.get_incident(cursor.lastrowid)

    async def update_incident(self, incident_id: int, **fields) -> None:
        """Set some of an incident's columns (ended_at, type, description, threat, clip_path, verdict, alert_state)."""
        allowed = {"ended_at", "type", "description", "threat", "clip_path", "verdict", "alert_state"}
        if not fields or not set(fields) <= allowed:
            raise ValueError(f"cannot update incident columns {set(fields) - allowed}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        async with self._transaction() as db:
            await db.execute(f"UPDATE incidents SET {assignments} WHERE id = ?", (*fields.values(), incident_id))

    async def get_incident(self, incident_id: int) -> Incident:
        """Return one incident. Raises NotFoundError."""
        row = await self._fetch_one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        if row is None:
            raise NotFoundError(f"no incident with id {incident_id}")
        return Incident(**dict(row))

    async def list_incidents(self, client_id: int | None = None, since: float | None = None) -> list[Incident]:
        """Return incidents, newest first, optionally of one client and since a time."""
        rows = await self._fetch_all(
            "SELECT * FROM incidents WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR started_at >= ?2) "
            "ORDER BY started_at DESC, id DESC", (client_id, since))
        return [Incident(**dict(row)) for row in rows]

    async def enqueue_alerts(self, incident_id: int, channels: list[str], now: float) -> None:
        """Queue one alert per channel for delivery (or mark the incident as having no channel)."""
        async with self._transaction() as db:
            await db.executemany("INSERT INTO alert_outbox (incident_id, channel, next_attempt_at) VALUES (?, ?, ?)",
                                 [(incident_id, channel, now) for channel in channels])
            await db.execute("UPDATE incidents SET alert_state = ? WHERE id = ?",
                             ("pending" if channels else "none", incident_id))

    async def due_alerts(self, now: float, limit: int = 20) -> list[Alert]:
        """Return undelivered alerts whose next attempt is due, oldest first."""
        rows = await self._fetch_all(
            """SELECT o.id AS outbox_id, o.channel, o.attempts, c.name AS client_name, c.email AS client_email, i.*
               FROM alert_outbox o JOIN incidents i ON i.id = o.incident_id JOIN clients c ON c.id = i.client_id
               WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at LIMIT ?""",
            (now, limit))
        alerts = []
        for row in rows:
            values = dict(row)
            head = {name: values.pop(name) for name in ("outbox_id", "channel", "attempts", "client_name",
                                                        "client_email")}
            alerts.append(Alert(head["outbox_id"], head["channel"], head["attempts"], Incident(**values),
                                head["client_name"], head["client_email"]))
        return alerts

    async def next_alert_due(self) -> float | None:
        """Return when the earliest undelivered alert is due, if any."""
        row = await self._fetch_one("SELECT min(next_attempt_at) AS due FROM alert_outbox WHERE delivered_at IS NULL")
        return row["due"]

    async def alert_delivered(self, alert: Alert, now: float) -> None:
        """Mark an alert delivered; the incident is delivered when all its alerts are."""
        async with self._transaction() as db:
            await db.execute("UPDATE alert_outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL "
                             "WHERE id = ?", (now, alert.id))
            await db.execute(
                """UPDATE incidents SET alert_state = 'delivered' WHERE id = ?1 AND NOT EXISTS
                   (SELECT 1 FROM alert_outbox WHERE incident_id = ?1 AND delivered_at IS NULL)""",
                (alert.incident.id,))

    async def alert_failed(self, alert: Alert, error: str, retry_at: float) -> None:
        """Record a failed attempt and when to try again."""
        async with self._transaction() as db:
            await db.execute("UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                             "WHERE id = ?", (error[:500], retry_at, alert.id))

    async def expired_incidents(self, before: float) -> list[Incident]:
        """Return incidents that started before `before` (for retention)."""
        rows = await self._fetch_all("SELECT * FROM incidents WHERE started_at < ?", (before,))
        return [Incident(**dict(row)) for row in rows]

    async def delete_incidents(self, incident_ids: list[int]) -> None:
        """Delete incidents (their outbox rows go with them)."""
        async with self._transaction() as db:
            await db.executemany("DELETE FROM incidents WHERE id = ?", [(i,) for i in incident_ids])

    # Invoices

    async def find_invoice(self, client_id: int, period: str) -> Invoice | None:
        """Return the invoice already issued to a client for a period, if any."""
        row = await self._fetch_one("SELECT * FROM invoices WHERE client_id = ? AND period = ?", (client_id, period))
        return None if row is None else _invoice(row)

    async def issue_invoice(self, draft: Invoice) -> Invoice:
        """Store a new invoice and give it the next number (the draft's number is ignored)."""
        document = json.dumps({
            "client_name": draft.client_name, "client_email": draft.client_email, "currency": draft.currency,
            "vat_rate": str(draft.vat_rate), "seller_name": draft.seller_name, "seller_address": draft.seller_address,
            "seller_vat_id": draft.seller_vat_id,
            "lines": [[line.description, str(line.quantity), line.unit, str(line.unit_price), str(line.amount)]
                      for line in draft.lines]})
        async with self._transaction() as db:
            await db.execute("INSERT INTO invoices (client_id, period, issued_on, document) VALUES (?, ?, ?, ?)",
                             (draft.client_id, draft.period, draft.issued_on, document))
            await self._audit(db, time.time(), "invoice.issue", draft.client_id, detail=f"period={draft.period}")
        return await self.find_invoice(draft.client_id, draft.period)

    # Fleet: cameras, flags, the server's snapshot

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
                """INSERT INTO cameras (client_id, camera, last_seen_at) SELECT ?, ?, ?
                   WHERE EXISTS (SELECT 1 FROM clients WHERE id = ?1)
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

    async def record_event(self, client_id: int, camera: str, kind: str, description: str, at: float,
                           channels: list[str]) -> Incident:
        """Record a camera event (down, back) as an incident with no clip, and queue its alerts."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO incidents (client_id, camera, started_at, ended_at, type, description, verdict) "
                "VALUES (?, ?, ?, ?, ?, ?, 'not_checked')", (client_id, camera, at, at, kind, description))
        await self.enqueue_alerts(cursor.lastrowid, channels, at)
        return await self.get_incident(cursor.lastrowid)

    async def raise_flag(self, kind: str, subject: str, client_id: int | None, key_id: int | None, detail: str,
                         now: float, quiet_seconds: float = 86400) -> Flag | None:
        """Store a flag unless the same kind and subject was flagged within `quiet_seconds`; return it if new."""
        async with self._transaction() as db:
            recent = await self._fetch_one("SELECT id FROM flags WHERE kind = ? AND subject = ? AND at > ?",
                                           (kind, subject, now - quiet_seconds))
            if recent is not None:
                return None
            cursor = await db.execute(
                "INSERT INTO flags (at, kind, subject, client_id, key_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (now, kind, subject, client_id, key_id, detail))
        return (await self.flags(flag_id=cursor.lastrowid))[0]

    async def flags(self, client_id: int | None = None, unnotified: bool = False, flag_id: int | None = None,
                    since: float | None = None) -> list[Flag]:
        """Return flags, newest first, filtered as asked."""
        rows = await self._fetch_all(
            """SELECT * FROM flags WHERE (?1 IS NULL OR client_id = ?1) AND (?2 = 0 OR notified_at IS NULL)
               AND (?3 IS NULL OR id = ?3) AND (?4 IS NULL OR at >= ?4) ORDER BY id DESC""",
            (client_id, int(unnotified), flag_id, since))
        return [Flag(**dict(row)) for row in rows]

    async def flag_notified(self, flag_id: int, now: float) -> None:
        """Note that the operator was emailed about a flag."""
        async with self._transaction() as db:
            await db.execute("UPDATE flags SET notified_at = ? WHERE id = ?", (now, flag_id))

    async def hourly_bytes(self, key_id: int, since: float) -> list[int]:
        """Return a key's bytes received per hourly bucket since `since`, oldest first."""
        rows = await self._fetch_all("SELECT bytes_received FROM usage WHERE key_id = ? AND bucket_start >= ? "
                                     "ORDER BY bucket_start", (key_id, since))
        return [row["bytes_received"] for row in rows]

    async def save_server_status(self, document: dict, now: float) -> None:
        """Replace the running server's snapshot (read by `vigint status` and `vigint client list`)."""
        async with self._transaction() as db:
            await db.execute("INSERT INTO server_status (id, updated_at, document) VALUES (1, ?, ?) "
                             "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, "
                             "document = excluded.document", (now, json.dumps(document)))

    async def server_status(self) -> tuple[float, dict] | None:
        """Return when the server last wrote its snapshot, and the snapshot; None if it never ran."""
        row = await self._fetch_one("SELECT updated_at, document FROM server_status WHERE id = 1")
        return None if row is None else (row["updated_at"], json.loads(row["document"]))

    # Audit

    async def list_audit(self, client_id: int | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Return admin actions, newest first, optionally for one client (deleted ones included)."""
        if client_id is None:
            rows = await self._fetch_all("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = await self._fetch_all("SELECT * FROM audit_log WHERE client_id = ? ORDER BY id DESC LIMIT ?",
                                         (client_id, limit))
        return [AuditEntry(**dict(row)) for row in rows]
