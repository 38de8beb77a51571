import asyncio
import csv
import io
import json
import re
import sqlite3
import subprocess
import sys

import pytest
from cryptography import x509
from helpers import run_vigint

from vigint import __version__, keys
from vigint.cli.main import main
from vigint.store import MIGRATIONS, Store, UsageDelta

KEY_PATTERN = re.compile(r"VIGINT_API_KEY=(vig_\w+)")


def create(cli, name="Acme", email="ops@acme.test") -> dict:
    result = cli("client", "create", "--name", name, "--email", email, "--json")
    assert result.code == 0, result.err
    return result.json()


def states(cli, client_id: int) -> dict[int, str]:
    [client] = [c for c in cli("client", "list", "--json").json() if c["id"] == client_id]
    return {key["id"]: key["state"] for key in client["keys"]}


def test_client_create_prints_a_valid_key_that_the_database_does_not_hold(cli, db_path):
    result = cli("client", "create", "--name", "Acme", "--email", "ops@acme.test")
    assert result.code == 0
    [api_key] = KEY_PATTERN.findall(result.out)
    assert keys.is_well_formed(api_key)
    second = create(cli, "Beta", "beta@b.test")["api_key"]
    assert keys.is_well_formed(second) and second != api_key
    for path in db_path.parent.glob("vigint.db*"):
        raw = path.read_bytes()
        assert api_key.encode() not in raw and second.encode() not in raw
        assert api_key[10:30].encode() not in raw  # nor any part beyond the display prefix


def test_create_json_carries_the_documented_fields(cli):
    document = create(cli)
    assert set(document) == {"client_id", "key_id", "api_key"}
    [client] = cli("client", "list", "--json").json()
    assert client["id"] == document["client_id"] and client["status"] == "active"
    assert {"name", "email", "created_at", "last_seen_at", "keys"} <= set(client)
    [key] = client["keys"]
    assert key["id"] == document["key_id"] and key["prefix"] == document["api_key"][:10]
    assert key["state"] == "active"
    assert {"label", "created_at", "expires_at", "revoked_at", "last_used_at"} <= set(key)


def test_duplicate_email_is_refused_with_one_clear_line(cli):
    create(cli)
    result = cli("client", "create", "--name", "Other", "--email", "ops@acme.test")
    assert result.code == 1
    assert result.err == "vigint: error: a client with email ops@acme.test already exists (id 1)\n"
    assert len(cli("client", "list", "--json").json()) == 1


def test_bad_input_is_one_line_and_exit_code_1(cli, tmp_path):
    create(cli)
    cases = {
        ("client", "create", "--name", "  ", "--email", "a@b.test"): "the client name must not be empty",
        ("client", "create", "--name", "X", "--email", "not-an-email"): "'not-an-email' is not an email address",
        ("client", "revoke", "--client-id", "42"): "no client with id 42",
        ("key", "revoke", "--key-id", "42"): "no key with id 42",
        ("key", "list", "--client-id", "42"): "no client with id 42",
        ("client", "reactivate", "--client-id", "1", "--key-id", "42"): "client 1 has no key with id 42",
        ("key", "create", "--client-id", "1", "--expires-in", "0"): "--expires-in must be a positive",
        ("client", "create", "--name", "X", "--email", "x@y.test", "--timezone", "Mars/Olympus"):
            "unknown time zone 'Mars/Olympus': use an IANA name such as Europe/Paris",
        ("client", "update", "--client-id", "1", "--timezone", "../../etc/passwd"): "unknown time zone",
        ("client", "update", "--client-id", "42", "--timezone", "UTC"): "no client with id 42",
        ("client", "create", "--name", "X", "--email", "x@y.test", "--language", "de"):
            "unknown language 'de': alerts are written in en or fr",
        ("client", "update", "--client-id", "1", "--language", "français"): "unknown language 'français'",
        ("client", "update", "--client-id", "1"):
            "nothing to change: give --timezone, --language, --address or --vat-id",
    }
    for args, message in cases.items():
        result = cli(*args)
        assert result.code == 1, args
        assert result.err.startswith("vigint: error: ") and message in result.err, result.err
        assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_unwritable_database_path_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for path, reason in [(blocker / "vigint.db", "Not a directory"),
                         (tmp_path / "missing-dir" / "vigint.db", "No such file or directory")]:
        assert main(["client", "create", "--name", "A", "--email", "a@b.test", "--db", str(path)]) == 1
        # The path itself is named, so the operator knows which setting to fix.
        assert capsys.readouterr().err.endswith(f"vigint: error: cannot open database {path}: {reason}\n")


def test_commands_that_read_refuse_a_missing_database_and_create_none(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the wrong folder: no vigint.db here
    for command in (["client", "list"], ["status"], ["usage"], ["key", "list"], ["audit"],
                    ["client", "revoke", "--client-id", "1"], ["invoice", "--client-id", "1", "--period", "2026-10"]):
        assert main(command) == 1, command
        err = capsys.readouterr().err
        assert err == (f"vigint: error: no database at {tmp_path / 'vigint.db'}: run this where `vigint serve` runs, "
                       "or name its database with --db PATH, $VIGINT_DB or [database] path in config.ini\n"), command
    assert list(tmp_path.iterdir()) == []
    assert main(["client", "create", "--name", "A", "--email", "a@b.test"]) == 0
    assert f"vigint: creating a new database at {tmp_path / 'vigint.db'}" in capsys.readouterr().err
    assert main(["client", "list"]) == 0 and "1 client" in capsys.readouterr().out


def test_database_newer_than_the_program_is_a_clear_error(cli, db_path):
    create(cli)
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    result = cli("client", "list")
    assert result.code == 1 and "newer than this program knows" in result.err and "upgrade vigint" in result.err


def test_a_client_s_alerts_take_its_time_zone_until_it_is_cleared(cli):
    client = create(cli)
    result = cli("client", "update", "--client-id", str(client["client_id"]), "--timezone", "Europe/Paris")
    assert result.code == 0 and "Europe/Paris" in result.out
    assert cli("client", "list", "--json").json()[0]["timezone"] == "Europe/Paris"
    assert cli("client", "update", "--client-id", str(client["client_id"]), "--timezone", "").code == 0
    assert cli("client", "list", "--json").json()[0]["timezone"] is None  # the server's again
    created = cli("client", "create", "--name", "Tokyo shop", "--email", "t@t.test", "--timezone", "Asia/Tokyo")
    assert created.code == 0 and cli("client", "list", "--json").json()[1]["timezone"] == "Asia/Tokyo"
    assert [event["action"] for event in cli("audit", "--json").json()][:4] == [  # newest first
        "key.create", "client.create", "client.update", "client.update"]


def test_a_client_s_alerts_take_its_language_shown_in_the_list(cli):
    created = cli("client", "create", "--name", "Boulangerie", "--email", "b@b.test", "--language", "FR", "--json")
    client_id = str(created.json()["client_id"])
    [listed] = cli("client", "list", "--json").json()
    assert listed["language"] == "fr" and listed["timezone"] is None
    table = cli("client", "list").out  # the Alerts column: the language, then the time zone below it
    assert "Alerts" in table and re.search(r"│ fr +│ #1 vig_", table) and re.search(r"│ default +│ +│", table)
    both = cli("client", "update", "--client-id", client_id, "--language", "en", "--timezone", "Europe/Paris")
    assert both.code == 0 and both.out == ("Client 1: its alerts show times in Europe/Paris; its alerts are written "
                                           "in en.\n")
    assert [(c["language"], c["timezone"]) for c in cli("client", "list", "--json").json()] == [("en", "Europe/Paris")]
    assert cli("client", "update", "--client-id", client_id, "--language", "").code == 0
    [listed] = cli("client", "list", "--json").json()
    assert listed["language"] is None and listed["timezone"] == "Europe/Paris"  # the server's language again
    details = [entry["detail"] for entry in cli("audit", "--json").json() if entry["action"] == "client.update"]
    assert details == ["language=server", "timezone=Europe/Paris language=en"]  # newest first


def test_revoke_then_reactivate_restores_every_key(cli):
    client = create(cli)
    second = cli("key", "create", "--client-id", str(client["client_id"]), "--json").json()
    assert cli("client", "revoke", "--client-id", str(client["client_id"])).code == 0
    assert states(cli, client["client_id"]) == {client["key_id"]: "revoked", second["key_id"]: "revoked"}
    assert cli("client", "reactivate", "--client-id", str(client["client_id"])).code == 0
    assert states(cli, client["client_id"]) == {client["key_id"]: "active", second["key_id"]: "active"}


def test_reactivate_with_key_id_restores_only_that_key(cli):
    client = create(cli)
    second = cli("key", "create", "--client-id", str(client["client_id"]), "--json").json()
    cli("client", "revoke", "--client-id", str(client["client_id"]))
    result = cli("client", "reactivate", "--client-id", str(client["client_id"]), "--key-id", str(second["key_id"]))
    assert result.code == 0
    assert states(cli, client["client_id"]) == {client["key_id"]: "revoked", second["key_id"]: "active"}


def test_rotation_new_key_stays_valid_after_the_old_one_is_revoked(cli):
    client = create(cli)
    new = cli("key", "create", "--client-id", str(client["client_id"]), "--name", "site-2", "--json").json()
    assert keys.is_well_formed(new["api_key"]) and new["api_key"] != client["api_key"]
    assert cli("key", "revoke", "--key-id", str(client["key_id"])).code == 0
    listed = {k["id"]: k for k in cli("key", "list", "--client-id", str(client["client_id"]), "--json").json()}
    assert listed[client["key_id"]]["state"] == "revoked"
    assert listed[new["key_id"]]["state"] == "active" and listed[new["key_id"]]["label"] == "site-2"


def test_key_with_expiry_lists_its_expiry(cli):
    client = create(cli)
    new = cli("key", "create", "--client-id", str(client["client_id"]), "--expires-in", "1", "--json").json()
    [listed] = [k for k in cli("key", "list", "--json").json() if k["id"] == new["key_id"]]
    assert listed["expires_at"] is not None and listed["state"] == "active"


def test_delete_needs_yes_and_then_removes_the_client(cli):
    client = create(cli)
    refused = cli("client", "delete", "--client-id", str(client["client_id"]))
    assert refused.code == 1 and "--yes" in refused.err
    assert len(cli("client", "list", "--json").json()) == 1
    assert cli("client", "delete", "--client-id", str(client["client_id"]), "--yes").code == 0
    assert cli("client", "list", "--json").json() == []
    assert cli("key", "list", "--json").json() == []


def test_audit_lists_admin_actions_newest_first_and_never_a_key(cli):
    client = create(cli)
    other = create(cli, "Beta", "beta@b.test")
    cli("client", "revoke", "--client-id", str(client["client_id"]))
    entries = cli("audit", "--client-id", str(client["client_id"]), "--json").json()
    assert [e["action"] for e in entries] == ["client.revoke", "key.create", "client.create"]
    everything = cli("audit", "--json")
    assert len(everything.json()) == 5
    table = cli("audit")
    for api_key in (client["api_key"], other["api_key"]):
        assert api_key not in everything.out and api_key not in table.out


def test_tables_show_clients_and_key_prefixes(cli):
    client = create(cli)
    table = cli("client", "list").out
    assert "Acme" in table and "ops@acme.test" in table and client["api_key"][:10] in table
    for column in ("Status", "Keys", "Created", "Last seen"):
        assert column in table
    assert client["api_key"] not in table


def test_version_and_usage_errors(tmp_path):
    result = run_vigint("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"vigint {__version__}"
    result = run_vigint("client", "create", "--name", "X", cwd=tmp_path)
    assert result.returncode == 2 and "--email" in result.stderr


def test_list_works_while_another_process_writes(tmp_path):
    db = tmp_path / "shared.db"
    assert run_vigint("client", "create", "--name", "first", "--email", "first@x.test", "--db", str(db),
                      cwd=tmp_path).returncode == 0  # listing a database that does not exist yet is an error
    writer = subprocess.Popen([sys.executable, "-c", f"""
from vigint.cli.main import main
for i in range(40):
    assert main(["client", "create", "--name", f"c{{i}}", "--email", f"c{{i}}@x.test", "--json",
                 "--db", {str(db)!r}]) == 0
"""], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        listings = 0
        while writer.poll() is None or listings < 3:
            result = run_vigint("client", "list", "--json", "--db", str(db), cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            listings += 1
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0, writer.stderr.read()
    final = run_vigint("client", "list", "--json", "--db", str(db), cwd=tmp_path)
    assert len(json.loads(final.stdout)) == 41


def test_usage_report_per_key_within_the_period(cli, db_path):
    client = create(cli)
    other = create(cli, "Beta", "beta@b.test")
    day = 86400
    jan_1 = 1_767_225_600  # 2026-01-01T00:00:00Z

    async def record():
        async with await Store.open(db_path) as store:
            await store.record_usage([
                UsageDelta(client["key_id"], jan_1, 3600.0, 1_000_000, 54_000),
                UsageDelta(client["key_id"], jan_1 + day, 1800.0, 500_000, 27_000),
                UsageDelta(client["key_id"], jan_1 + 2 * day, 60.0, 1, 1),
                UsageDelta(other["key_id"], jan_1, 10.0, 10, 10),
            ], {})

    asyncio.run(record())
    rows = cli("usage", "--client-id", str(client["client_id"]), "--since", "2026-01-01", "--until", "2026-01-02",
               "--json").json()
    assert rows == [{"client_id": client["client_id"], "client_name": "Acme", "key_id": client["key_id"],
                     "key_prefix": client["api_key"][:10], "stream_seconds": 5400.0, "bytes_received": 1_500_000,
                     "frames_decoded": 81_000, "ai_calls": 0, "ai_tokens": 0, "alerts_sent": 0,
                     "incidents": 0, "backfill_bytes": 0, "backfill_seconds": 0.0, "live_view_seconds": 0.0}]
    everyone = cli("usage", "--json").json()
    assert [(r["client_id"], r["bytes_received"]) for r in everyone] == [(client["client_id"], 1_500_001),
                                                                          (other["client_id"], 10)]
    table = cli("usage", "--since", "2026-01-01").out
    assert "Acme" in table and "1.52" in table  # stream hours: 5460 s
    bad = cli("usage", "--since", "January")
    assert bad.code == 2


def test_cert_writes_a_pair_and_refuses_to_overwrite(cli, tmp_path):
    result = cli("cert", "--host", "vigint.example.com", "--out-dir", str(tmp_path / "tls"))
    assert result.code == 0 and "vigint serve --tls-cert" in result.out
    pem = (tmp_path / "tls" / "vigint-cert.pem").read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["vigint.example.com"]
    assert oct((tmp_path / "tls" / "vigint-key.pem").stat().st_mode & 0o777) == "0o600"
    again = cli("cert", "--host", "vigint.example.com", "--out-dir", str(tmp_path / "tls"))
    assert again.code == 1 and "--force" in again.err
    assert (tmp_path / "tls" / "vigint-cert.pem").read_bytes() == pem


def test_invoices_are_numbered_once_reprinted_the_same_and_survive_deletion(cli, db_path, tmp_path, seller):
    first = create(cli)
    second = create(cli, "Beta", "beta@b.test")
    october = 1_790_812_800  # 2026-10-01T00:00:00Z

    async def record():
        async with await Store.open(db_path) as store:
            await store.record_usage([UsageDelta(first["key_id"], october, 7200.0, 2_000_000_000, 10, 3, 4000, 2),
                                      UsageDelta(first["key_id"], october - 3600, 3600.0, 1, 1)], {})

    asyncio.run(record())
    out = tmp_path / "invoice.csv"
    result = cli("invoice", "--client-id", str(first["client_id"]), "--period", "2026-10", "--format", "csv",
                 "--out", str(out))
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    # 2 camera-hours × 0.01 + 2 GB × 0.05 + 3 × 0.002 + 4k tokens × 0.001 + 2 alerts × 0.01, VAT 20 %
    assert [(r["description"], r["amount"]) for r in rows] == [
        ("Camera streaming", "0.02"), ("Video received", "0.10"), ("AI verifications", "0.01"),
        ("AI tokens", "0.00"), ("Alerts delivered", "0.02"), ("Subtotal", "0.15"), ("VAT 20 %", "0.03"),
        ("Total", "0.18")]
    number = int(rows[0]["invoice"])
    other = cli("invoice", "--client-id", str(second["client_id"]), "--period", "2026-10", "--format", "csv",
                "--allow-empty")
    assert int(next(csv.DictReader(io.StringIO(other.out)))["invoice"]) == number + 1
    again = cli("invoice", "--client-id", str(first["client_id"]), "--period", "2026-10", "--format", "csv")
    assert again.out.splitlines() == out.read_text().splitlines()  # the same invoice, not a new number
    assert cli("client", "delete", "--client-id", str(first["client_id"]), "--yes").code == 0
    html = cli("invoice", "--client-id", str(first["client_id"]), "--period", "2026-10")
    assert html.code == 0 and f"Invoice {number}" in html.out and "Acme" in html.out and "0.18" in html.out
    future = cli("invoice", "--client-id", str(second["client_id"]), "--period", "2099-01")
    assert future.code == 1 and "not over yet" in future.err


def test_delete_removes_the_clients_clip_files_and_folder(cli, db_path, tmp_path, monkeypatch):
    data_dir = tmp_path / "server-data"
    monkeypatch.setenv("VIGINT_STORAGE_DATA_DIR", str(data_dir))
    doomed, kept = create(cli), create(cli, "Beta", "beta@b.test")

    async def record_incidents(client: dict, count: int, with_clip: int) -> list:
        async with await Store.open(db_path) as store:
            paths = []
            for number in range(count):
                incident = await store.create_incident(client["client_id"], client["key_id"], "door", 1000.0 + number)
                if number < with_clip:
                    relative = f"clips/{client['client_id']}/{incident.id}.mp4"
                    await store.update_incident(incident.id, clip_path=relative)
                    (data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
                    (data_dir / relative).write_bytes(b"mp4")
                    paths.append(data_dir / relative)
            return paths

    doomed_clips = asyncio.run(record_incidents(doomed, 3, with_clip=2))  # one incident never got a clip
    kept_clips = asyncio.run(record_incidents(kept, 1, with_clip=1))
    result = cli("client", "delete", "--client-id", str(doomed["client_id"]), "--yes")
    assert result.code == 0, result.err
    assert "deleted with its keys, usage and incidents; 2 clip files removed." in result.out
    assert not any(path.exists() for path in doomed_clips)
    assert not (data_dir / "clips" / str(doomed["client_id"])).exists()
    assert all(path.read_bytes() == b"mp4" for path in kept_clips)
    assert [c["id"] for c in cli("client", "list", "--json").json()] == [kept["client_id"]]
    [incident] = cli("incidents", "list", "--json").json()
    assert incident["client_id"] == kept["client_id"] and data_dir / incident["clip"] == kept_clips[0]


def test_delete_without_clips_says_none_were_removed(cli):
    client = create(cli)
    result = cli("client", "delete", "--client-id", str(client["client_id"]), "--yes")
    assert result.code == 0 and "0 clip files removed" in result.out


def test_delete_never_removes_files_outside_the_clients_clip_folder(cli, db_path, tmp_path, monkeypatch):
    data_dir = tmp_path / "server-data"
    monkeypatch.setenv("VIGINT_STORAGE_DATA_DIR", str(data_dir))
    client, other = create(cli), create(cli, "Beta", "beta@b.test")
    foreign = data_dir / "clips" / str(other["client_id"]) / "1.mp4"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"mp4")

    async def point_at_the_other_clients_clip():
        async with await Store.open(db_path) as store:
            incident = await store.create_incident(client["client_id"], client["key_id"], "door", 1000.0)
            sneaky = f"clips/{client['client_id']}/../{other['client_id']}/1.mp4"
            await store.update_incident(incident.id, clip_path=sneaky)

    asyncio.run(point_at_the_other_clients_clip())
    result = cli("client", "delete", "--client-id", str(client["client_id"]), "--yes")
    assert result.code == 0 and "0 clip files removed" in result.out
    assert foreign.read_bytes() == b"mp4"


def test_a_reversed_or_malformed_period_is_an_error(cli):
    create(cli)
    reversed_ = cli("usage", "--since", "2026-11-30", "--until", "2026-11-01")
    assert reversed_.code == 1
    assert reversed_.err == ("vigint: error: --since 2026-11-30 is after --until 2026-11-01: the period is "
                             "empty; swap them\n")
    malformed = cli("usage", "--since", "2026-13-01")
    assert malformed.code == 2 and "'2026-13-01' is not a date like 2026-01-31" in malformed.err


@pytest.mark.slow  # seven commands, each a new process
def test_tables_stay_whole_at_80_columns(tmp_path):
    db = str(tmp_path / "vigint.db")
    run_vigint("--db", db, "client", "create", "--name", "Boulangerie Dupont et Fils", "--email",
               "contact@boulangerie-dupont-et-fils.fr", "--timezone", "Europe/Paris", cwd=tmp_path)
    run_vigint("--db", db, "key", "create", "--client-id", "1", "--name", "back office camera host", cwd=tmp_path)

    async def record():
        async with await Store.open(db) as store:
            await store.create_incident(1, 1, "entrée-principale", 1_760_000_000.0)
            await store.record_usage([UsageDelta(1, 1_760_000_000.0, 7200.0, 2_000_000_000, 10, 3, 4000, 2)], {})

    asyncio.run(record())
    for command in (("client", "list"), ("key", "list"), ("incidents", "list"), ("usage",), ("audit",), ("review",),
                    ("status",)):
        shown = run_vigint("--db", db, *command, cwd=tmp_path, env={"COLUMNS": "80"})
        assert shown.returncode == 0, shown.stderr
        assert all(len(line) <= 80 for line in shown.stdout.splitlines()), shown.stdout
        cut = re.findall(r"\w+…", re.sub(r"vig_\w{6}…", "", shown.stdout))  # a key's prefix ends so on purpose
        assert not cut, (command, cut, shown.stdout)
    listed = run_vigint("--db", db, "client", "list", cwd=tmp_path, env={"COLUMNS": "80"}).stdout
    assert "Boulangerie" in listed and "Dupont et Fils" in listed and "Not shown at this width" in listed
    assert "1 client\n" in listed or " 1 client " in listed


def test_a_month_whose_usage_rounds_to_nothing_is_not_called_unused(cli, db_path, seller):
    client = create(cli)

    async def stream_a_few_seconds():  # 10 s and 300 kB in October: 0.003 camera-hours and 0.0003 GB round to 0
        async with await Store.open(db_path) as store:
            await store.record_usage([UsageDelta(client["key_id"], 1_760_000_000.0, 10.0, 300_000, 100)], {})

    asyncio.run(stream_a_few_seconds())
    refused = cli("invoice", "--client-id", str(client["client_id"]), "--period", "2025-10")
    assert refused.code == 1
    assert "usage in 2025-10 rounds to 0.00 EUR" in refused.err and "used nothing" not in refused.err
