"""The database engine: connections, transactions and the schema's migrations; no domain queries.

SQLite through aiosqlite, in WAL mode so the admin CLI and the server can use one file at once. Each
write is one ``BEGIN IMMEDIATE`` transaction, so a writer waits (``busy_timeout``) instead of failing
half-way. The schema is the list of numbered migrations in `vigint.store.migrations`, applied at open.
"""

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self
from urllib.parse import quote

import aiosqlite

from vigint.errors import StoreError
from vigint.store.migrations import MIGRATIONS

# How long a statement waits for another process's write lock before giving up: admin commands and
# the server's batched writes hold it for milliseconds, so 5 s only ever elapses when something hangs.
BUSY_TIMEOUT_MS = 5000


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


class Engine:
    """An open database: one writer connection, one read-only reader, and the transactions on them.

    The query classes of this package build on it; use the `Store` that combines them all.
    """

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
        return f"{type(self).__name__}({str(self.path)!r})"

    @classmethod
    async def open(cls, path: Path) -> Self:
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

    async def __aenter__(self) -> Self:
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

    async def _read_all(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """Run a query on the reader connection: never queued behind a write (see `__init__`)."""
        return list(await self._reader.execute_fetchall(sql, params))

    async def data_version(self) -> int:
        """Return a number that changes whenever another connection (this store's writer included)
        commits: a cheap change detector."""
        (version,) = await (await self._reader.execute("PRAGMA data_version")).fetchone()
        return version
