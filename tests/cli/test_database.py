"""`vigint db copy`: a SQLite database filled through the real CLI and store, copied into a real PostgreSQL; the
same listings then print the same on both."""

import asyncio
import stat
import time
from datetime import datetime, timezone
from pathlib import Path

from helpers import Result, add_client, eventually, run_vigint

from vigint.cli.commands import live_streams
from vigint.cli.main import main
from vigint.config import Settings
from vigint.ingest.auth import authenticate
from vigint.store import Channel, FlagKind, Store, UsageDelta


def _last_month() -> tuple[str, float]:
    """Return last month as YYYY-MM (closed, so it can be invoiced) and a time inside it."""
    today = datetime.now(timezone.utc).date()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year}-{month:02d}", datetime(year, month, 10, tzinfo=timezone.utc).timestamp()


PERIOD, IN_PERIOD = _last_month()


def _run(capsys, database: str, *args: str) -> Result:
    code = main([*args, "--db", database])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def _ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


async def _fill_store(database: str) -> None:
    """What the server writes: usage, incidents with their outbox, cameras, a flag."""
    now = time.time()
    async with await Store.open(database) as store:
        await store.record_usage([UsageDelta(1, int(IN_PERIOD), 3600.5, 2_000_000_000, 54_000, 2, 1500, 1),
                                  UsageDelta(1, int(IN_PERIOD) + 3600, 1800.25, 900_000_000, 27_000),
                                  UsageDelta(4, int(now) // 3600 * 3600, 60.0, 1_000_000, 900)], {1: now - 60, 4: now})
        delivered = await store.create_incident(1, 1, "front-door", now - 7200)
        await store.update_incident(delivered.id, ended_at=now - 7100, clip_path=f"clips/1/{delivered.id}.mp4",
                                    verdict="confirmed", description="a person", threat=3)
        await store.enqueue_alerts(delivered.id, [Channel.EMAIL, Channel.WEBHOOK], now - 7100)
        for alert in await store.due_alerts(now):
            await store.alert_delivered(alert, now - 7000)
        pending = await store.create_incident(1, 4, "till", now - 600)
        await store.enqueue_alerts(pending.id, [Channel.EMAIL], now + 60)
        await store.record_event(1, "yard", "camera_down", "no video for 10 minutes", now - 300, [Channel.EMAIL])
        await store.camera_seen([(1, "front-door"), (1, "till"), (1, "yard")], now - 3600)
        await store.mark_cameras_down(now - 1800, now - 1200)
        await store.camera_seen([(1, "front-door")], now)
        await store.raise_flag(FlagKind.SPIKE, "key:1", 1, 1, "12x its usual hourly bytes", now - 100)


def _fill(cli, db_path: Path) -> dict[str, str]:
    """Fill the SQLite database as an operator and a server would; return the API keys by what they are."""
    made = {name: _ok(cli("client", "create", "--name", name, "--email", f"{name.lower()}@example.test",
                          "--json")).json() for name in ("Acme", "Beta", "Gone")}  # clients 1-3, keys 1-3
    expiring = _ok(cli("key", "create", "--client-id", "1", "--name", "site-2", "--expires-in", "30", "--json"))
    rotated = _ok(cli("key", "create", "--client-id", "1", "--name", "old", "--json"))  # key 5
    _ok(cli("key", "revoke", "--key-id", "5"))
    _ok(cli("client", "revoke", "--client-id", "2"))
    _ok(cli("client", "delete", "--client-id", "3", "--yes"))  # its ids are never given again
    asyncio.run(_fill_store(str(db_path)))
    _ok(cli("invoice", "--client-id", "2", "--period", PERIOD, "--allow-empty"))  # number 1, to a revoked client
    _ok(cli("invoice", "--client-id", "1", "--period", PERIOD, "--allow-empty"))  # number 2
    return {"first": made["Acme"]["api_key"], "expiring": expiring.json()["api_key"],
            "revoked client": made["Beta"]["api_key"], "deleted client": made["Gone"]["api_key"],
            "rotated out": rotated.json()["api_key"]}


LISTINGS = [("client", "list"), ("client", "list", "--json"), ("key", "list"), ("key", "list", "--json"),
            ("usage",), ("usage", "--json"), ("usage", "--client-id", "1", "--since", f"{PERIOD}-01"),
            ("audit",), ("audit", "--json"), ("incidents", "list"), ("incidents", "list", "--json"),
            ("alerts",), ("alerts", "--json"), ("status", "--json"),
            ("invoice", "--client-id", "1", "--period", PERIOD), ("invoice", "--client-id", "2", "--period", PERIOD,
                                                                  "--format", "csv")]


async def _authenticated(database: str, api_keys: dict[str, str]) -> dict[str, int | None]:
    async with await Store.open(database) as store:
        return {what: getattr(await authenticate(store, key), "id", None) for what, key in api_keys.items()}


def test_copied_database_lists_the_same_on_postgresql_and_keeps_keys_and_ids(cli, db_path, postgres_url,
                                                                              capsys, seller):
    api_keys = _fill(cli, db_path)
    copied = _ok(cli("db", "copy", "--to", postgres_url))
    assert "Row counts, verified" in copied.out
    assert [line.split()[:2] for line in copied.out.splitlines() if "rows copied" in line][:4] == [
        ["clients", "2"], ["api_keys", "4"], ["usage", "3"], ["incidents", "3"]]

    for args in LISTINGS:
        on_sqlite, on_postgres = _ok(cli(*args)), _ok(_run(capsys, postgres_url, *args))
        assert on_postgres.out == on_sqlite.out, args
    keys = _ok(_run(capsys, postgres_url, "key", "list", "--json")).json()
    assert {k["id"]: k["state"] for k in keys} == {1: "active", 2: "revoked", 4: "active", 5: "revoked"}
    assert keys[2]["expires_at"] is not None
    incidents = _ok(_run(capsys, postgres_url, "incidents", "list", "--json")).json()
    assert sorted(i["alert_state"] for i in incidents) == ["delivered", "pending", "pending"]
    for client_id, number in (("1", "2"), ("2", "1")):  # the numbers issued on SQLite, not new ones
        invoice = _run(capsys, postgres_url, "invoice", "--client-id", client_id, "--period", PERIOD, "--format", "csv")
        assert invoice.out.splitlines()[1].startswith(f"{number},"), invoice.out

    # The same keys open streams on PostgreSQL; the revoked, rotated-out and deleted ones still do not.
    assert asyncio.run(_authenticated(postgres_url, api_keys)) == asyncio.run(_authenticated(str(db_path), api_keys))
    assert asyncio.run(_authenticated(postgres_url, api_keys)) == {
        "first": 1, "expiring": 4, "revoked client": None, "deleted client": None, "rotated out": None}

    # New rows get new ids, past every id SQLite ever gave (the deleted client's 3 included), as on SQLite.
    on_postgres = _ok(_run(capsys, postgres_url, "client", "create", "--name", "New", "--email", "n@n.test", "--json"))
    on_sqlite = _ok(cli("client", "create", "--name", "New", "--email", "n@n.test", "--json"))
    assert (on_postgres.json()["client_id"], on_postgres.json()["key_id"]) == (4, 6)
    assert (on_sqlite.json()["client_id"], on_sqlite.json()["key_id"]) == (4, 6)

    again = cli("db", "copy", "--to", postgres_url)
    assert again.code == 1 and "already holds rows (clients 3, api_keys 5" in again.err, again.err
    assert len(_ok(_run(capsys, postgres_url, "client", "list", "--json")).json()) == 3


def test_a_missing_source_is_one_clear_line_and_is_not_created(postgres_url, capsys, tmp_path):
    missing = tmp_path / "missing.db"
    result = _run(capsys, str(missing), "db", "copy", "--to", postgres_url)
    assert result.code == 1
    assert result.err == f"vigint: error: no database at {missing}: nothing to copy (give the SQLite file with --db)\n"
    assert not missing.exists()


def test_clips_follow_the_rows_to_the_bucket_and_a_password_stays_masked(cli, db_path, postgres_url, capsys, bucket,
                                                                           monkeypatch, tmp_path):
    from s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

    _ok(cli("client", "create", "--name", "Acme", "--email", "ops@acme.test"))

    async def incident_with_clip() -> str:
        async with await Store.open(db_path) as store:
            incident = await store.create_incident(1, 1, "door", time.time())
            await store.update_incident(incident.id, clip_path=f"clips/1/{incident.id}.mp4")
            return f"clips/1/{incident.id}.mp4"

    name = asyncio.run(incident_with_clip())
    clip = tmp_path / "vigint-data" / name  # the cli fixture runs in tmp_path: the default data_dir is there
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"\x00\x00\x00\x18ftypisom a clip")
    for variable, value in (("AWS_ENDPOINT_URL", bucket.endpoint), ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
                            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY), ("AWS_REGION", REGION)):
        monkeypatch.setenv(variable, value)
    missing = cli("db", "copy", "--to", postgres_url, "--clips", "s3://no-such-bucket/vigint")
    assert missing.code == 1 and "no-such-bucket" in missing.err  # the clips go first: no row was copied
    assert _ok(_run(capsys, postgres_url, "client", "list", "--json")).json() == []
    assert cli("db", "copy", "--to", postgres_url, "--clips", "/var/clips").code == 2  # not an s3:// URL
    with_password = postgres_url.replace("postgres@", "postgres:s3cret@")  # the test server trusts any password
    copied = _ok(cli("db", "copy", "--to", with_password, "--clips", f"s3://{bucket.name}/site-b"))
    assert f"clips                     1 copied to s3://{bucket.name}/site-b" in copied.out
    assert bucket.objects() == {f"site-b/1/{name.rsplit('/', 1)[1]}": clip.read_bytes()}
    assert "clients                   1 rows copied" in copied.out
    assert "s3cret" not in copied.out and "postgres:***@127.0.0.1" in copied.out


async def test_copy_refuses_while_a_server_runs_on_the_source(start, db_path, postgres_url, tmp_path):
    async with await Store.open(db_path) as store:
        await add_client(store)
    server = await start()

    async def snapshot_written() -> bool:
        return await live_streams(server.store, Settings(), time.time()) is not None

    await eventually(snapshot_written)
    refused = await asyncio.to_thread(run_vigint, "db", "copy", "--to", postgres_url, "--db", str(db_path),
                                      cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert "a vigint serve is running on" in refused.stderr and "stop it first" in refused.stderr
    async with await Store.open(postgres_url) as target:
        assert await target.count_clients() == 0


def test_a_backup_is_a_private_consistent_copy_and_never_overwrites(cli, tmp_path, postgres_url, capsys):
    assert cli("client", "create", "--name", "Acme", "--email", "ops@acme.test").code == 0
    backup = tmp_path / "backup.db"
    made = cli("db", "backup", "--to", str(backup))
    assert made.code == 0 and "Keep it with the clip-link secret" in made.out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600 and not backup.with_name("backup.db.part").exists()
    listed = cli("client", "list", "--json")  # the live database; then the copy, which must list the same
    assert main(["client", "list", "--json", "--db", str(backup)]) == 0
    assert capsys.readouterr().out == listed.out
    again = cli("db", "backup", "--to", str(backup))
    assert again.code == 1 and "exists already" in again.err
    assert main(["db", "backup", "--to", str(tmp_path / "pg.db"), "--db", postgres_url]) == 1
