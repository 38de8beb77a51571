"""The regular review: `vigint audit --since` and `vigint review` (clients, keys, last seen, keys unused)."""

import asyncio
import time

from vigint import keys
from vigint.store import Store

DAY = 86_400


def test_review_names_keys_unused_for_30_days(cli, db_path):
    async def fill():
        async with await Store.open(db_path) as store:
            old = time.time() - 40 * DAY
            client, forgotten = await store.create_client("Old shop", "old@shop.test", keys.hash_key(keys.generate()),
                                                          "vig_forgot", now=old)
            used = await store.create_key(client.id, keys.hash_key(keys.generate()), "vig_usedkk", "till", now=old)
            await store.record_usage([], {used.id: time.time() - DAY})
            fresh, _ = await store.create_client("New shop", "new@shop.test", keys.hash_key(keys.generate()),
                                                 "vig_fresh1")
            return client.id, forgotten.id, fresh.id
    old_client, forgotten_key, new_client = asyncio.run(fill())
    review = {d["client_id"]: d for d in cli("review", "--json").json()}
    assert [k["key_id"] for k in review[old_client]["unused_keys"]] == [forgotten_key]
    assert review[old_client]["active_keys"] == 2 and review[old_client]["last_seen_at"].endswith("Z")
    assert review[new_client]["unused_keys"] == [] and review[new_client]["last_seen_at"] is None
    table = cli("review").out
    assert "2 clients; 1 with keys unused for 30 days" in table and f"#{forgotten_key} vig_forgot" in table


def test_audit_since_a_day_shows_only_what_came_after(cli, db_path):
    async def fill():
        async with await Store.open(db_path) as store:
            await store.create_client("Before", "b@shop.test", keys.hash_key(keys.generate()), "vig_before",
                                      now=time.time() - 10 * DAY)
            await store.create_client("After", "a@shop.test", keys.hash_key(keys.generate()), "vig_after1")
    asyncio.run(fill())
    since = time.strftime("%Y-%m-%d", time.localtime(time.time() - 2 * DAY))
    recent = cli("audit", "--since", since, "--json").json()
    assert {entry["client_id"] for entry in recent} == {2}
    assert len(cli("audit", "--json").json()) == 4  # each client's creation and first key
    assert cli("audit", "--since", "yesterday").code == 2
