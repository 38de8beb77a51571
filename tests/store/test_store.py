import asyncio
import dataclasses
import sqlite3
import stat
from decimal import Decimal

import pytest

from vigint import keys
from vigint.errors import InvalidInputError, NotFoundError, StoreError
from vigint.ingest.auth import authenticate
from vigint.store import (
    MIGRATIONS,
    AlertState,
    Channel,
    Claim,
    ClientStatus,
    FlagKind,
    Invoice,
    KeyState,
    Store,
    StreamEntry,
    Verdict,
)
from vigint.store.engine import describe
from vigint.store.postgres import dialect

# Every test here runs on both engines (the `database` fixture: a SQLite file, then a PostgreSQL schema), but for
# the few that look at what only a SQLite file has.


async def raw(database: str, sql: str, *params) -> list[tuple]:
    """Run one statement straight on the database, as another program (or another version) would."""
    if database.startswith("postgresql://"):
        import asyncpg
        connection = await asyncpg.connect(database)
        try:
            return [tuple(row) for row in await connection.fetch(dialect(sql), *params)]
        finally:
            await connection.close()
    with sqlite3.connect(database) as db:
        return db.execute(sql, params).fetchall()


async def new_client(store: Store, email: str = "ops@acme.test"):
    api_key = keys.generate()
    client, key = await store.create_client("Acme", email, keys.hash_key(api_key), keys.display_prefix(api_key))
    return client, key, api_key


async def new_key(store: Store, client_id: int, expires_at: float | None = None):
    api_key = keys.generate()
    key = await store.create_key(client_id, keys.hash_key(api_key), keys.display_prefix(api_key), "", expires_at)
    return key, api_key


async def test_database_is_created_owner_only_at_the_latest_schema(db_path):
    async with await Store.open(db_path):
        pass
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"clients", "api_keys", "usage", "incidents", "alert_outbox", "audit_log"} <= tables


async def test_database_newer_than_this_program_is_refused(database):
    async with await Store.open(database):
        pass
    if database.startswith("postgresql://"):
        assert await raw(database, "SELECT version FROM vigint_schema") == [(len(MIGRATIONS),)]
        await raw(database, "UPDATE vigint_schema SET version = version + 1")
    else:
        await raw(database, f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this program"):
        await Store.open(database)


async def test_revoke_and_reactivate_restore_the_same_keys(database):
    async with await Store.open(database) as store:
        client, _, first = await new_client(store)
        _, second = await new_key(store, client.id)
        assert await store.revoke_client(client.id) == 2
        assert (await store.get_client(client.id)).status is ClientStatus.REVOKED
        assert await authenticate(store, first) is None and await authenticate(store, second) is None
        assert await store.reactivate_client(client.id) == 2
        assert (await authenticate(store, first)).client_id == client.id
        assert (await authenticate(store, second)).client_id == client.id


async def test_reactivate_one_key_leaves_the_others_off(database):
    async with await Store.open(database) as store:
        client, key, first = await new_client(store)
        _, second = await new_key(store, client.id)
        await store.revoke_client(client.id)
        assert await store.reactivate_client(client.id, key_id=key.id) == 1
        assert await authenticate(store, first) is not None
        assert await authenticate(store, second) is None


async def test_reactivating_a_client_keeps_rotated_out_keys_revoked(database):
    async with await Store.open(database) as store:
        client, old, old_key = await new_client(store)
        _, new_api_key = await new_key(store, client.id)
        await store.revoke_key(old.id)
        await store.revoke_client(client.id)
        assert await store.reactivate_client(client.id) == 1
        assert await authenticate(store, old_key) is None
        assert await authenticate(store, new_api_key) is not None


async def test_expired_key_is_invalid(database):
    async with await Store.open(database) as store:
        client, _, _ = await new_client(store)
        key, api_key = await new_key(store, client.id, expires_at=1_000_000.0)
        assert (await authenticate(store, api_key, now=999_999.0)).id == key.id
        assert await authenticate(store, api_key, now=1_000_000.0) is None
        assert (await store.get_key(key.id)).state(1_000_001.0) is KeyState.EXPIRED


async def test_mistyped_key_is_refused_without_a_database_look_up(database):
    store = await Store.open(database)
    _, _, api_key = await new_client(store)
    await store.close()
    mistyped = api_key[:20] + ("x" if api_key[20] != "x" else "y") + api_key[21:]
    # The store is closed: reaching the database would raise instead of answering None.
    assert await authenticate(store, mistyped) is None
    with pytest.raises(Exception, match="closed|no active connection"):
        await authenticate(store, api_key)


async def test_duplicate_email_is_refused_whatever_its_case(database):
    async with await Store.open(database) as store:
        await new_client(store, "ops@acme.test")
        with pytest.raises(InvalidInputError, match="already exists"):
            await new_client(store, "OPS@acme.test")
        assert len(await store.list_clients()) == 1


async def test_delete_removes_keys_usage_and_incidents_but_keeps_the_audit_trail(database):
    async with await Store.open(database) as store:
        client, key, api_key = await new_client(store)
        other, _, other_key = await new_client(store, "other@b.test")
    await raw(database, "INSERT INTO usage (key_id, bucket_start, bytes_received) VALUES (?, 0, 10)", key.id)
    await raw(database, "INSERT INTO incidents (client_id, camera, started_at, type) VALUES (?, 'door', 0, 'motion')",
              client.id)
    async with await Store.open(database) as store:
        await store.delete_client(client.id)
        with pytest.raises(NotFoundError):
            await store.get_client(client.id)
        assert await authenticate(store, api_key) is None
        assert await authenticate(store, other_key) is not None
        actions = [entry.action for entry in await store.list_audit(client.id)]
    assert actions == ["client.delete", "key.create", "client.create"]
    assert await raw(database, "SELECT count(*) FROM usage") == [(0,)]
    assert await raw(database, "SELECT count(*) FROM incidents") == [(0,)]
    assert await raw(database, "SELECT count(*) FROM api_keys") == [(1,)]


async def test_unknown_ids_are_reported(database):
    async with await Store.open(database) as store:
        client, _, _ = await new_client(store)
        with pytest.raises(NotFoundError, match="no client with id 99"):
            await store.revoke_client(99)
        with pytest.raises(NotFoundError, match="no key with id 99"):
            await store.revoke_key(99)
        with pytest.raises(NotFoundError, match="has no key with id 99"):
            await store.reactivate_client(client.id, key_id=99)


async def test_a_client_s_alerts_carry_its_own_settings_until_they_are_cleared(database):
    async with await Store.open(database) as store:
        client, key, _ = await new_client(store)
        await store.update_client(client.id, language="fr", timezone="Europe/Paris")
        incident = await store.create_incident(client.id, key.id, "door", 1_000.0)
        await store.update_incident(incident.id, stills=2)
        await store.enqueue_alerts(incident.id, [Channel.EMAIL], 1_001.0)
        [alert] = await store.due_alerts(2_000.0)
        assert (alert.client_language, alert.client_timezone, alert.incident.stills) == ("fr", "Europe/Paris", 2)
        await store.update_client(client.id, language=None)
        assert (await store.get_client(client.id)).language is None  # the server's again, the zone kept
        assert (await store.get_client(client.id)).timezone == "Europe/Paris"
        with pytest.raises(ValueError, match="cannot update client settings"):
            await store.update_client(client.id, email="x@y.test")
        with pytest.raises(NotFoundError, match="no client with id 99"):
            await store.update_client(99, language="en")


async def test_keys_cannot_be_added_to_a_revoked_client(database):
    async with await Store.open(database) as store:
        client, _, _ = await new_client(store)
        await store.revoke_client(client.id)
        with pytest.raises(InvalidInputError, match="reactivate it"):
            await new_key(store, client.id)


async def test_alerts_go_only_to_known_channels_and_records_carry_their_states(database):
    async with await Store.open(database) as store:
        client, key, _ = await new_client(store)
        incident = await store.create_incident(client.id, key.id, "door", 1_000.0)
        with pytest.raises(ValueError, match="unknown alert channel"):
            await store.enqueue_alerts(incident.id, ["sms"], 1_001.0)
        with pytest.raises(ValueError, match="unknown alert channel"):
            await store.record_event(client.id, "door", "camera_down", "gone", 1_002.0, ["pager"])
        assert await store.due_alerts(2_000.0) == [] and len(await store.list_incidents(client.id)) == 1
        await store.enqueue_alerts(incident.id, [Channel.EMAIL], 1_001.0)
        [alert] = await store.due_alerts(2_000.0)
        assert alert.channel is Channel.EMAIL
        assert alert.incident.verdict is Verdict.NOT_CHECKED and alert.incident.alert_state is AlertState.PENDING


async def test_an_alert_on_a_channel_this_version_does_not_know_does_not_block_the_others(database):
    async with await Store.open(database) as store:
        client, key, _ = await new_client(store)
        incident = await store.create_incident(client.id, key.id, "door", 1_000.0)
        # as a later version sharing the database might have written it
        await raw(database, "INSERT INTO alert_outbox (incident_id, channel, next_attempt_at) VALUES (?, 'sms', 0)",
                  incident.id)
        await store.enqueue_alerts(incident.id, [Channel.EMAIL], 1_001.0)
        assert [alert.channel for alert in await store.due_alerts(2_000.0)] == [Channel.EMAIL]


async def test_a_dead_letter_is_kept_never_claimed_and_never_counts_as_delivered(database):
    async with await Store.open(database) as store:
        client, key, _ = await new_client(store)
        incident = await store.create_incident(client.id, key.id, "door", 1_000.0)
        await store.enqueue_alerts(incident.id, [Channel.EMAIL, Channel.WEBHOOK], 1_001.0)
        email, webhook = await store.due_alerts(2_000.0, claim_seconds=0)
        await store.alert_dead(email, "recipient refused: 550 no such mailbox", 2_000.0)
        assert [alert.channel for alert in await store.due_alerts(9e15, claim_seconds=0)] == [Channel.WEBHOOK]
        await store.alert_delivered(webhook, 2_001.0)
        assert await store.due_alerts(9e15) == [] and await store.next_alert_due() == float("inf")
        assert (await store.get_incident(incident.id)).alert_state is AlertState.DEAD  # not "delivered"
        [row] = await raw(database, "SELECT attempts, last_error, delivered_at FROM alert_outbox WHERE channel = ?",
                          "email")
        assert tuple(row) == (1, "recipient refused: 550 no such mailbox", None)


async def test_an_incident_state_this_version_does_not_know_is_one_clear_error(database):
    async with await Store.open(database) as store:
        client, key, _ = await new_client(store)
        incident = await store.create_incident(client.id, key.id, "door", 1_000.0)
        # as a later version sharing the database might have written it
        await raw(database, "UPDATE incidents SET verdict = 'escalated' WHERE id = ?", incident.id)
        with pytest.raises(StoreError, match=f"incident {incident.id} has the verdict 'escalated', unknown"):
            await store.list_incidents(client.id)


def entry(client_id: int, camera: str, node: str = "node-a", session: str = "s1") -> StreamEntry:
    return StreamEntry(client_id, camera, 1, node, session, "192.0.2.1", 1_000.0)


async def test_the_registry_keeps_camera_names_unique_and_counts_every_node(database):
    async with await Store.open(database) as node_a, await Store.open(database) as node_b:
        client, _, _ = await new_client(node_a)
        assert await node_a.claim_stream(entry(client.id, "door"), 2, 1_010.0, 1_000.0) is Claim.CLAIMED
        assert await node_b.claim_stream(entry(client.id, "door", "node-b", "s2"), 2, 1_010.0, 1_000.0) is Claim.TAKEN
        assert await node_b.claim_stream(entry(client.id, "yard", "node-b", "s3"), 2, 1_010.0, 1_000.0) is Claim.CLAIMED
        assert await node_b.claim_stream(entry(client.id, "till", "node-b", "s4"), 2, 1_010.0, 1_000.0) \
            is Claim.OVER_LIMIT
        assert {(s.camera, s.node_id) for s in await node_a.registered_streams(1_000.0)} == {
            ("door", "node-a"), ("yard", "node-b")}
        # Node a dies: it renews nothing, and once its lease has run out its camera may stream on node b.
        assert await node_b.renew_streams("node-b", {"s3"}, 1_020.0) == {"s3"}
        assert await node_b.claim_stream(entry(client.id, "door", "node-b", "s5"), 2, 1_030.0, 1_010.5) \
            is Claim.CLAIMED
        assert await node_a.renew_streams("node-a", {"s1"}, 1_021.0) == set()  # a's stream lost its name


async def test_a_release_frees_only_its_own_stream_and_an_entry_no_longer_renewed_expires(database):
    async with await Store.open(database) as store:
        client, _, _ = await new_client(store)
        await store.claim_stream(entry(client.id, "door", session="old"), 4, 1_010.0, 1_000.0)
        await store.release_stream(client.id, "door", "other")  # a later stream's release: not this entry
        assert [s.session_id for s in await store.registered_streams(1_000.0)] == ["old"]
        await store.claim_stream(entry(client.id, "yard", session="gone"), 4, 1_010.0, 1_000.0)
        assert await store.renew_streams("node-a", {"old"}, 1_020.0) == {"old"}
        assert [s.camera for s in await store.registered_streams(1_015.0)] == ["door"]
        await store.delete_client(client.id)
        assert await store.registered_streams(1_015.0) == []


async def test_a_cameras_node_is_found_by_its_registry_entry_until_its_lease_runs_out(database):
    async with await Store.open(database) as store:
        client, _, _ = await new_client(store)
        await store.save_node("node-a", 1_000.0, {"page_url": "http://node-a.example:5003"}, 1_000.0)
        await store.claim_stream(entry(client.id, "door"), 4, 1_010.0, 1_000.0)
        found = await store.stream_node(client.id, "door", 1_005.0)
        assert found.id == "node-a" and found.document["page_url"] == "http://node-a.example:5003"
        assert await store.stream_node(client.id, "yard", 1_005.0) is None
        assert await store.stream_node(client.id + 1, "door", 1_005.0) is None
        assert await store.stream_node(client.id, "door", 1_011.0) is None  # its node stopped renewing it


async def test_a_lease_has_one_holder_until_it_runs_out(database):
    async with await Store.open(database) as node_a, await Store.open(database) as node_b:
        assert await node_a.hold_lease("fleet", "node-a", 1_090.0, 1_000.0)
        assert not await node_b.hold_lease("fleet", "node-b", 1_095.0, 1_005.0)
        assert await node_a.hold_lease("fleet", "node-a", 1_100.0, 1_010.0)  # renewed by its holder
        assert await node_b.hold_lease("fleet", "node-b", 1_200.0, 1_100.5)  # taken over once expired
        assert not await node_a.hold_lease("fleet", "node-a", 1_300.0, 1_101.0)


async def test_two_nodes_claim_each_due_alert_once_and_a_dead_claim_is_retried(database):
    async with await Store.open(database) as node_a, await Store.open(database) as node_b:
        client, key, _ = await new_client(node_a)
        for second in range(10):
            incident = await node_a.create_incident(client.id, key.id, "door", 1_000.0 + second)
            await node_a.enqueue_alerts(incident.id, [Channel.EMAIL], 1_000.0 + second)

        async def drain(store: Store) -> list[int]:
            claimed = []
            while alerts := await store.due_alerts(2_000.0, claim_seconds=60, limit=1):
                claimed.append(alerts[0].id)
            return claimed

        claimed_a, claimed_b = await asyncio.gather(drain(node_a), drain(node_b))
        assert sorted(claimed_a + claimed_b) == sorted(set(claimed_a + claimed_b)) and len(claimed_a + claimed_b) == 10
        assert await node_a.due_alerts(2_059.0) == []  # claimed: nobody takes them before the claim runs out
        assert len(await node_b.due_alerts(2_061.0, limit=20)) == 10  # their claimer died: any node retries them


async def test_an_entry_whose_claim_is_in_flight_outlives_a_renewal_that_does_not_name_it(database):
    async with await Store.open(database) as store:
        client, _, _ = await new_client(store)
        await store.claim_stream(entry(client.id, "door", session="claiming"), 4, 1_010.0, 1_000.0)
        assert await store.renew_streams("node-a", {"older"}, 1_020.0) == set()
        assert [s.session_id for s in await store.registered_streams(1_005.0)] == ["claiming"]


async def test_two_nodes_at_once_raise_one_flag_create_one_client_and_number_invoices_without_gaps(database):
    async with await Store.open(database) as node_a, await Store.open(database) as node_b:
        for address in range(10):  # each a race between the nodes
            flags = await asyncio.gather(*(node.raise_flag(FlagKind.HELLOS, f"address:192.0.2.{address}", None, None,
                                                           "blocked", 1_000.0) for node in (node_a, node_b)))
            assert sum(flag is not None for flag in flags) == 1
        created = await asyncio.gather(new_client(node_a, "shop@acme.test"), new_client(node_b, "SHOP@acme.test"),
                                       return_exceptions=True)
        assert sorted(type(result).__name__ for result in created) == ["InvalidInputError", "tuple"]
        client = next(result for result in created if isinstance(result, tuple))[0]
        draft = Invoice(0, "2026-11-01", "2026-10", client.id, client.name, client.email, "EUR", (), Decimal("0.2"),
                        "Seller", "", "")
        first, again = await asyncio.gather(node_a.issue_invoice(draft), node_b.issue_invoice(draft))
        assert first.number == again.number == 1
        assert (await node_b.issue_invoice(dataclasses.replace(draft, period="2026-11"))).number == 2


def test_a_database_url_is_shown_without_its_passwords():
    assert describe("postgresql://vigint:s3cret@db.example:5432/vigint?sslmode=require&password=other") == \
        "postgresql://vigint:***@db.example:5432/vigint?sslmode=require&password=***"
    assert describe("postgresql://vigint@db/vigint?sslpassword=x") == "postgresql://vigint@db/vigint?sslpassword=***"
