"""The database engine: which database, its transactions and its schema; no domain queries.

A store opens either a SQLite file (the embedded default, `vigint.store.sqlite`) or a PostgreSQL server
(``postgresql://…``, for several nodes: `vigint.store.postgres`). The query modules write one SQL text for
both: ``?`` or ``?N`` parameters, ``RETURNING`` for new ids, and only what both engines mean the same way;
the few differences (locking a row, change notices) are methods of the backend. The schema is the list of
numbered migrations in `vigint.store.migrations`, applied at open, the same on both engines.
"""

import contextvars
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, Self

from vigint.store import postgres, sqlite
from vigint.store.migrations import MIGRATIONS

Row = Mapping[str, Any]  # a result row, by column name (sqlite3.Row, asyncpg.Record)

# How long a statement waits for another writer's lock before giving up: admin commands and the server's
# batched writes hold it for milliseconds, so 5 s only ever elapses when something hangs.
BUSY_TIMEOUT_MS = sqlite.BUSY_TIMEOUT_MS


def is_postgres(target: str | Path) -> bool:
    """Tell whether a `--db` value names a PostgreSQL server rather than a SQLite file."""
    return str(target).startswith(("postgresql://", "postgres://"))


def is_busy(error: BaseException) -> bool:
    """Tell whether a database error is passing (another writer holds the lock, a lost connection, a
    conflict between nodes), so the write is worth retrying."""
    return sqlite.is_busy(error) or postgres.is_busy(error)


def describe(target: str | Path) -> str:
    """Return a `--db` value fit for a log line or a banner: a URL's password is masked."""
    return postgres.describe(str(target)) if is_postgres(target) else str(Path(target).resolve())


class Transaction(Protocol):
    """One open transaction: its statements commit together, or none does."""

    async def execute(self, sql: str, params: Sequence = ()) -> int:
        """Run one statement; return how many rows it changed."""

    async def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        """Run one statement once per parameter row."""

    async def fetch_all(self, sql: str, params: Sequence = ()) -> list[Row]:
        """Run a query (or a statement with RETURNING); return its rows."""

    async def serialize(self, subject: str) -> None:
        """Make other transactions that serialize on the same `subject` wait until this one ends (a check,
        then a write, that two nodes must not interleave)."""

    async def notify_keys_changed(self) -> None:
        """Tell every node, at commit, that keys were revoked or deleted, or a browser signed out (see
        `Engine.data_version`)."""

    async def scrub_at_commit(self) -> None:
        """Leave, after commit, no copy in the database's files of the secrets this transaction erased."""


class Database(Protocol):
    """An open database of one engine."""

    skip_locked: str  # appended to a SELECT of rows to claim: rows another node claims now are skipped

    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    async def fetch_all(self, sql: str, params: Sequence = ()) -> list[Row]: ...

    async def read_all(self, sql: str, params: Sequence = ()) -> list[Row]: ...

    async def data_version(self) -> int: ...

    async def close(self) -> None: ...


_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar("transaction", default=None)


class Engine:
    """An open database and the transactions on it.

    The query classes of this package build on it; use the `Store` that combines them all.
    """

    def __init__(self, database: Database, name: str, shared: bool):
        self._database = database
        self.name = name  # for messages: a URL's password masked
        # Several nodes may share it (PostgreSQL): streams are then registered in it for all nodes. A SQLite
        # file serves one machine, where each node keeps its own streams and a hello never waits for a write.
        self.shared = shared

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @classmethod
    async def open(cls, target: str | Path) -> Self:
        """Open (creating if needed) a SQLite file or a ``postgresql://`` database; bring its schema up to
        date.

        Raises:
            StoreError: the database cannot be reached, created or written, or was made by a newer Vigint.
        """
        if is_postgres(target):
            return cls(await postgres.open_database(str(target), MIGRATIONS), describe(target), shared=True)
        path = Path(target).expanduser()
        return cls(await sqlite.open_database(path, MIGRATIONS), describe(path), shared=False)

    @property
    def skip_locked(self) -> str:
        return self._database.skip_locked

    async def close(self) -> None:
        """Close the connections."""
        await self._database.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        """Open a transaction; the queries of this store inside it run in it."""
        async with self._database.transaction() as transaction:
            token = _current.set(transaction)
            try:
                yield transaction
            finally:
                _current.reset(token)

    async def _fetch_all(self, sql: str, params: Sequence = ()) -> list[Row]:
        transaction = _current.get()
        if transaction is not None:
            return await transaction.fetch_all(sql, params)
        return await self._database.fetch_all(sql, params)

    async def _fetch_one(self, sql: str, params: Sequence = ()) -> Row | None:
        rows = await self._fetch_all(sql, params)
        return rows[0] if rows else None

    async def _read_all(self, sql: str, params: Sequence = ()) -> list[Row]:
        """Run a query that must never wait behind a write (authentication, the revocation watch)."""
        return await self._database.read_all(sql, params)

    async def data_version(self) -> int:
        """Return a number that changes whenever keys may have been revoked or deleted, by any process or
        node: a cheap change detector for the revocation watch."""
        return await self._database.data_version()
