"""Copying a SQLite store into PostgreSQL (`vigint.store.copy`): every table, every row as it was, or nothing."""

import sqlite3

import pytest
from helpers import add_client

from vigint.errors import StoreError
from vigint.store import Store, UsageDelta, copy


async def test_the_copy_knows_every_table_its_key_and_foreign_key_order_as_sqlite_builds_them(db_path):
    async with await Store.open(db_path):  # the schema as the migrations build it
        pass
    with sqlite3.connect(db_path) as db:
        built = {name: sql for name, sql in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        order = [table.name for table in copy.tables()]
        assert sorted(order) == sorted(built)
        for table in copy.tables():
            referenced = {row[2] for row in db.execute(f"PRAGMA foreign_key_list({table.name})")}
            assert referenced <= set(order[:order.index(table.name)]), table.name
            key = [row[1] for row in sorted(db.execute(f"PRAGMA table_info({table.name})"), key=lambda r: r[5])
                   if row[5]]
            assert table.primary_key == tuple(key), table.name
            assert (table.identity is not None) == ("AUTOINCREMENT" in built[table.name]), table.name


def test_tables_follow_later_migrations_and_refuse_what_cannot_be_copied():
    migrations = [("CREATE TABLE b (id INTEGER PRIMARY KEY AUTOINCREMENT)", "CREATE TABLE old (x TEXT PRIMARY KEY)"),
                  ("CREATE TABLE a (k TEXT, n INTEGER, PRIMARY KEY (k, n))", "DROP TABLE old",
                   "ALTER TABLE b ADD COLUMN a_k TEXT REFERENCES a(k)")]
    assert [(t.name, t.primary_key, t.identity) for t in copy.tables(migrations)] == [
        ("a", ("k", "n"), None), ("b", ("id",), "id")]
    with pytest.raises(StoreError, match="table c has no primary key"):
        copy.tables([("CREATE TABLE c (x TEXT)",)])
    with pytest.raises(StoreError, match="in a circle"):
        copy.tables([("CREATE TABLE c (id INTEGER PRIMARY KEY, d INTEGER REFERENCES d(id))",
                      "CREATE TABLE d (id INTEGER PRIMARY KEY, c INTEGER REFERENCES c(id))")])


async def _dump(store: Store, table: copy.Table) -> list[tuple]:
    rows = await store._fetch_all(f"SELECT * FROM {table.name} ORDER BY {', '.join(table.primary_key)}")
    return [tuple(dict(row).items()) for row in rows]


async def test_small_batches_copy_every_row_as_it_was(db_path, postgres_url):
    async with await Store.open(db_path) as source:
        for number in range(3):
            await add_client(source, f"c{number}@example.test", f"Client {number}")
        await source.delete_client(2)
        await source.record_usage([UsageDelta(key, hour * 3600, hour + 0.125, 10**12 + hour, hour)
                                   for key in (1, 3) for hour in range(5)], {1: 1e9 + 0.5})
        await source.camera_seen([(1, f"cam-{n}") for n in range(5)], 1e9)
        async with await Store.open(postgres_url) as target:
            seen = []
            counts = await copy.copy_database(source, target, lambda *done: seen.append(done), batch_rows=2)
            assert seen == [(c.table, c.source) for c in counts]
            assert {table: dict(seen)[table] for table in ("clients", "usage", "cameras")} == {
                "clients": 2, "usage": 10, "cameras": 5}  # over several batches of 2, keys of two columns
            for table in copy.tables():
                assert await _dump(target, table) == await _dump(source, table), table.name
            with pytest.raises(StoreError, match=r"already holds rows \(clients 2, api_keys 2, usage 10"):
                await copy.copy_database(source, target)


async def test_a_source_written_during_the_copy_leaves_the_target_empty(db_path, postgres_url):
    async with await Store.open(db_path) as source:
        await add_client(source)

        def another_writer(table: str, rows: int) -> None:
            if table == "api_keys":
                with sqlite3.connect(db_path) as db:
                    db.execute("INSERT INTO clients (name, email, created_at, updated_at) "
                               "VALUES ('B', 'b@b.test', 0, 0)")

        async with await Store.open(postgres_url) as target:
            with pytest.raises(StoreError, match=r"does not match the source \(clients 2 in the source, 1 copied\)"):
                await copy.copy_database(source, target, another_writer)
            await copy.ensure_empty(target)  # nothing was kept
