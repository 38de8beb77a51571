"""Moving up: copy every row of a SQLite database into an empty PostgreSQL one, ids and all (`vigint db
copy`).

The tables, their primary keys, identity columns and foreign keys are read from the numbered migrations, the
one schema of both engines, so a table added later is copied without a change here. Ids are copied as they
are: key hashes stay tied to their clients, incident ids in signed clip links and invoice numbers stay valid.
Rows go in foreign-key order, in batches read by primary key (a million usage rows never sit in memory at
once), all in one transaction on the target; the row counts of both sides are compared before it commits, so
a copy either matches the source table by table or leaves the target empty.
"""

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vigint.errors import StoreError
from vigint.store.engine import Engine, Transaction, describe, is_postgres
from vigint.store.migrations import MIGRATIONS

# Rows read and written at a time: large enough that the round trips cost little, small enough that a
# table of millions of rows needs a few MB at a time.
BATCH_ROWS = 5000

_CREATE = re.compile(r"^\s*CREATE TABLE (?:IF NOT EXISTS )?(\w+)", re.IGNORECASE)
_DROP = re.compile(r"^\s*DROP TABLE (?:IF EXISTS )?(\w+)", re.IGNORECASE)
_ALTER = re.compile(r"^\s*ALTER TABLE (\w+)", re.IGNORECASE)
_REFERENCES = re.compile(r"\bREFERENCES (\w+)", re.IGNORECASE)
# A column declared as the key ("id INTEGER PRIMARY KEY AUTOINCREMENT", "x TEXT PRIMARY KEY"): name, type,
# rest.
_KEY_COLUMN = re.compile(r"(?:^|[(,])\s*(\w+)\s+(\w+)\s+PRIMARY KEY\b(.*)$", re.IGNORECASE | re.MULTILINE)
_KEY_LIST = re.compile(r"\bPRIMARY KEY \(([^)]*)\)", re.IGNORECASE)


@dataclass(frozen=True)
class Table:
    """One table of the schema, as the copy needs it."""

    name: str
    primary_key: tuple[str, ...]  # the batches are read in this order
    identity: str | None  # the AUTOINCREMENT column (a PostgreSQL identity whose sequence must move), if any
    references: frozenset[str]  # tables whose rows must be there first


@dataclass(frozen=True)
class TableCount:
    """How many rows a table holds on each side after the copy."""

    table: str
    source: int
    target: int


def _parse_table(name: str, statement: str) -> Table:
    column = _KEY_COLUMN.search(statement)
    listed = _KEY_LIST.search(statement)
    if column is not None:
        column_name, column_type, rest = column.groups()
        # Only AUTOINCREMENT becomes a PostgreSQL identity (`postgres.ddl`); a plain INTEGER key has no
        # sequence.
        autoincrement = column_type.upper() == "INTEGER" and rest.upper().lstrip().startswith("AUTOINCREMENT")
        key = (column_name,)
        identity = column_name if autoincrement else None
    elif listed is not None:
        key = tuple(part.strip() for part in listed.group(1).split(","))
        identity = None
    else:
        raise StoreError(f"table {name} has no primary key: vigint db copy cannot read it in batches")
    references = frozenset(_REFERENCES.findall(statement)) - {name}
    return Table(name, key, identity, references)


def tables(migrations: Sequence[Sequence[str]] = MIGRATIONS) -> list[Table]:
    """Return the tables the migrations leave, each after the tables it references (else in creation order).

    Raises:
        StoreError: a table has no primary key, or the references go round in a circle.
    """
    found: dict[str, Table] = {}
    for statement in (statement for migration in migrations for statement in migration):
        if created := _CREATE.match(statement):
            found[created.group(1)] = _parse_table(created.group(1), statement)
        elif dropped := _DROP.match(statement):
            found.pop(dropped.group(1), None)
        elif (altered := _ALTER.match(statement)) and altered.group(1) in found:
            table = found[altered.group(1)]
            added = frozenset(_REFERENCES.findall(statement)) - {table.name}
            found[table.name] = Table(table.name, table.primary_key, table.identity, table.references | added)
    ordered: list[Table] = []
    while len(ordered) < len(found):
        done = {table.name for table in ordered}
        ready = [t for t in found.values() if t.name not in done and t.references & found.keys() <= done]
        if not ready:
            raise StoreError(f"the tables {sorted(found.keys() - done)} reference each other in a circle")
        ordered.append(ready[0])
    return ordered


def check_targets(source: str | Path, target: str) -> None:
    """Refuse a copy that cannot be meant: the source must be an existing SQLite file, the target a PostgreSQL
    URL.

    Raises:
        StoreError: saying which and why.
    """
    if is_postgres(source):
        raise StoreError(f"the database {describe(source)} is PostgreSQL already: vigint db copy moves a "
                         "SQLite file up to PostgreSQL")
    if not is_postgres(target):
        # Not echoed: whatever it is, it may carry a password.
        raise StoreError("--to must be a postgresql:// URL: to copy a SQLite file, copy the file "
                         "(with vigint serve stopped)")
    path = Path(source).expanduser()
    if not path.is_file():
        raise StoreError(f"no database at {path.resolve()}: nothing to copy (give the SQLite file with --db)")


async def _count(fetch: Callable, table: str) -> int:
    """Return how many rows `table` holds, read with `fetch` (a transaction's `fetch_all`, or a store's)."""
    (row,) = await fetch(f"SELECT count(*) AS n FROM {table}")
    return int(row["n"])


async def _refuse_rows(fetch: Callable, name: str) -> None:
    held = [(table.name, await _count(fetch, table.name)) for table in tables()]
    held = [f"{table} {count}" for table, count in held if count]
    if held:
        raise StoreError(f"the target {name} already holds rows ({', '.join(held)}): vigint db copy copies "
                         "only into an empty database")


async def ensure_empty(target: Engine) -> None:
    """Refuse a target that holds any row: a copy never mixes two databases' ids.

    Raises:
        StoreError: naming the tables that hold rows.
    """
    await _refuse_rows(target._fetch_all, target.name)


def _driver_error(error: BaseException) -> bool:
    """Tell whether `error` is the database's refusal of a row (a constraint, a value), not a bug of ours."""
    return isinstance(error, sqlite3.Error) or type(error).__module__.startswith("asyncpg")


async def _copy_table(source: Engine, db: Transaction, table: Table, batch_rows: int) -> int:
    """Copy one table's rows, `batch_rows` at a time in primary-key order; return how many."""
    key = ", ".join(table.primary_key)
    last = ()
    copied = 0
    while True:
        # Keyset paging: each batch starts after the last key of the one before, so every read is an index
        # range however deep into the table (OFFSET would rescan all the rows before it, each time).
        after = f"WHERE ({key}) > ({', '.join('?' * len(last))})" if last else ""
        # The source's read-only connection: it never writes, and never joins the target's transaction.
        rows = await source._read_all(f"SELECT * FROM {table.name} {after} ORDER BY {key} LIMIT ?",
                                      (*last, batch_rows))
        if not rows:
            return copied
        columns = list(rows[0].keys())
        try:
            await db.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                                 f"VALUES ({', '.join('?' * len(columns))})", [tuple(row) for row in rows])
        except Exception as error:
            if not _driver_error(error):
                raise
            raise StoreError(f"cannot copy table {table.name}: {error}") from None
        copied += len(rows)
        if len(rows) < batch_rows:
            return copied
        last = tuple(rows[-1][column] for column in table.primary_key)


async def _move_sequences(source: Engine, db: Transaction, schema: list[Table]) -> None:
    """Move the target's identity sequences past every id the source ever gave, so new rows never collide.

    Past SQLite's own counter, not only the largest id copied: the ids of deleted rows are not given again
    (a deleted client's audit rows and invoices still name its id).
    """
    sequences = await source._read_all("SELECT name, seq FROM sqlite_sequence")
    given = {row["name"]: row["seq"] for row in sequences}
    for table in schema:
        if table.identity is None:
            continue
        (row,) = await db.fetch_all(f"SELECT max({table.identity}) AS top FROM {table.name}")
        top = max(row["top"] or 0, given.get(table.name) or 0)
        if top:  # an empty sequence stays as it is: its first id is 1
            await db.execute("SELECT setval(pg_get_serial_sequence(?, ?)::regclass, ?)",
                             (table.name, table.identity, top))


async def copy_database(source: Engine, target: Engine,
                        progress: Callable[[str, int], None] = lambda *_: None,
                        batch_rows: int = BATCH_ROWS) -> list[TableCount]:
    """Copy every row of the SQLite store `source` into the empty PostgreSQL store `target`, in one
    transaction.

    Both are open (so at this program's schema version). `progress(table, rows)` is called as each table is
    copied. The source is only read. Returns every table's row count on both sides, which match.

    Raises:
        StoreError: the engines are not SQLite to PostgreSQL, the target holds rows, a row is refused, or a
            table's counts differ (something wrote to the source meanwhile); the target then holds no row.
    """
    if is_postgres(source.name) or not is_postgres(target.name):
        raise StoreError(f"vigint db copy copies a SQLite database into PostgreSQL, not {source.name} into "
                         f"{target.name}")
    schema = tables()
    async with target._transaction() as db:
        await _refuse_rows(db.fetch_all, target.name)
        for table in schema:
            progress(table.name, await _copy_table(source, db, table, batch_rows))
        await _move_sequences(source, db, schema)
        counts = [TableCount(table.name, await _count(source._read_all, table.name),
                             await _count(db.fetch_all, table.name)) for table in schema]
        differ = [f"{c.table} {c.source} in the source, {c.target} copied"
                  for c in counts if c.source != c.target]
        if differ:  # raising here rolls the whole copy back: the target stays empty, ready for another try
            raise StoreError(f"the copy does not match the source ({'; '.join(differ)}): was something "
                             "writing to it? Nothing was kept; stop it and copy again")
    return counts
