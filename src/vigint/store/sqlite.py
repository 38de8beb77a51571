"""SQLite through aiosqlite: the embedded engine, one file beside the server.

WAL mode lets the admin CLI and the server (or several servers on one machine) use one file at once. Each
write is one ``BEGIN IMMEDIATE`` transaction, so writers queue (``busy_timeout``) instead of failing
half-way; that lock is also what serialises claims, so `serialize` and `skip_locked` need nothing more.

Erased secrets (a hand-over link's seal) must not stay readable in the files: ``secure_delete`` zeroes what a
write frees, and a transaction that erases one checkpoints at commit and truncates the WAL, which still holds
the page images written before.
"""

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import aiosqlite

from vigint.errors import StoreError

BUSY_TIMEOUT_MS = 5000

log = logging.getLogger(__name__)


def is_busy(error: BaseException) -> bool:
    """SQLite says "database is locked" (or "database table is locked") for both of its busy codes."""
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


class _Transaction:
    def __init__(self, db: aiosqlite.Connection):
        self._db = db
        self.scrub = False  # checkpoint and truncate the WAL once committed

    async def execute(self, sql: str, params: Sequence = ()) -> int:
        cursor = await self._db.execute(sql, params)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        await self._db.executemany(sql, rows)

    async def fetch_all(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        return list(await self._db.execute_fetchall(sql, params))

    async def serialize(self, subject: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the whole database's write lock."""

    async def notify_keys_changed(self) -> None:
        """Nothing to do: ``PRAGMA data_version`` sees every commit of every process."""

    async def scrub_at_commit(self) -> None:
        self.scrub = True


class SqliteDatabase:
    """One writer connection and one read-only reader, on one file."""

    skip_locked = ""  # the write lock is the database's: no two claims ever run at once

    def __init__(self, db: aiosqlite.Connection, path: Path):
        self._db = db
        self.path = path
        # One connection writes for the whole process: its tasks take turns at transactions.
        self._write_lock = asyncio.Lock()
        # Authentication and the revocation watch read through their own connection: aiosqlite runs one
        # connection's statements one at a time, so on the writer they would queue behind a write that
        # waits busy_timeout for another process's lock. In WAL mode readers never wait for writers.
        self._reader: aiosqlite.Connection | None = None

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        await self._db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Transaction]:
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            transaction = _Transaction(self._db)
            try:
                yield transaction
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
            if transaction.scrub:
                await self._scrub()

    async def _scrub(self) -> None:
        """Copy the WAL into the database file and empty it. A reader of another process in the middle of a
        long read can keep the WAL from being emptied (after busy_timeout): the next scrub, or the last close,
        empties it."""
        (busy, _, _), = await self._db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        if busy:
            log.warning("the write-ahead log of %s could not be emptied now (a long read elsewhere): "
                        "an erased secret stays in %s-wal until the next checkpoint",
                        self.path, self.path.name)

    async def fetch_all(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        return list(await self._db.execute_fetchall(sql, params))

    async def read_all(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        return list(await self._reader.execute_fetchall(sql, params))

    async def data_version(self) -> int:
        """A number that changes whenever another connection (this process's writer included) commits."""
        (version,) = await (await self._reader.execute("PRAGMA data_version")).fetchone()
        return version

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

    async def _migrate(self, migrations: Sequence[Sequence[str]]) -> None:
        async with self.transaction() as transaction:
            (version,) = (await transaction.fetch_all("PRAGMA user_version"))[0]
            if version > len(migrations):
                raise StoreError(f"database {self.path} has schema version {version}, newer than this "
                                 f"program knows ({len(migrations)}): upgrade vigint")
            for number in range(version, len(migrations)):
                for statement in migrations[number]:
                    await transaction.execute(statement)
            await transaction.execute(f"PRAGMA user_version = {len(migrations)}")


def _prepare_file(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite creates it world-readable."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    except OSError as error:
        raise StoreError(f"cannot open database {path}: {error.strerror}") from None


async def open_database(path: Path, migrations: Sequence[Sequence[str]]) -> SqliteDatabase:
    """Open (creating if needed) the database file at `path` and bring its schema up to date.

    Raises:
        StoreError: the file cannot be created or written, or was made by a newer Vigint.
    """
    _prepare_file(path)
    try:
        db = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open database {path}: {error}") from None
    database = SqliteDatabase(db, path)
    try:
        db.row_factory = sqlite3.Row
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await database._use_wal()
        await db.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe in WAL mode
        await db.execute("PRAGMA secure_delete = ON")  # what a write frees is zeroed, not left readable
        await db.execute("PRAGMA foreign_keys = ON")
        await database._migrate(migrations)
        database._reader = await aiosqlite.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                                                   isolation_level=None)
        database._reader.row_factory = sqlite3.Row
        await database._reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.Error as error:
        await database.close()
        raise StoreError(f"cannot use database {path}: {error}") from None
    except BaseException:
        await database.close()
        raise
    return database
