"""Keys handed over by a one-time link, rotated keys and their expiry warnings, in the store, on both engines."""

import asyncio
import secrets
import time

from helpers import add_client

from vigint import keys
from vigint.store import Handover, KeyState, Store
from vigint.web.access import token_hash

HOUR = 3600


def handed_over(now: float, hours: float = 48) -> tuple[str, bytes, Handover, str]:
    """A hand-over link as `vigint key create --handover` makes one: its token, seal, record and key."""
    token, seal = secrets.token_urlsafe(32), keys.new_seal()
    return token, seal, Handover(token_hash(token), seal, now + hours * HOUR), keys.derive(token, seal)


async def test_a_handed_over_key_is_picked_up_once_even_by_two_requests_at_once(database):
    now = time.time()
    token, seal, handover, api_key = handed_over(now)
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        key = await store.create_key(client_id, keys.hash_key(api_key), keys.display_prefix(api_key), "site-2",
                                     handover=handover)
        assert key.state(now) is KeyState.AWAITING_PICKUP and await store.find_key(keys.hash_key(api_key))
        found, stored_seal = await store.pending_handover(token_hash(token), now)
        assert found.id == key.id and stored_seal == seal
        assert await store.pick_up_key(token_hash(token), keys.hash_key(keys.generate()), now) is None  # not its key
        both = await asyncio.gather(*(store.pick_up_key(token_hash(token), keys.hash_key(api_key), now)
                                      for _ in range(2)))
        [picked] = [record for record in both if record is not None]
        assert picked.id == key.id and picked.picked_up_at == now and picked.state(now) is KeyState.ACTIVE
        assert await store.pending_handover(token_hash(token), now) is None  # the link is spent, its seal gone
        audit = {(entry.action, entry.key_id): entry.detail for entry in await store.list_audit(client_id)}
        assert ("key.pickup", key.id) in audit and "handover_until=" in audit[("key.create", key.id)]
        assert [action for action, _ in audit].count("key.pickup") == 1


async def test_a_link_dies_unopened_after_its_lifetime_or_for_good_with_its_client_and_its_key_never_works(database):
    now = time.time()
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        links = [handed_over(now - 49 * HOUR), handed_over(now)]
        for _, _, handover, api_key in links:
            await store.create_key(client_id, keys.hash_key(api_key), keys.display_prefix(api_key), handover=handover)
        (dead_token, _, _, dead_key), (live_token, _, _, live_key) = links
        assert await store.pending_handover(token_hash(dead_token), now) is None
        assert await store.pick_up_key(token_hash(dead_token), keys.hash_key(dead_key), now) is None
        [expired] = await store.expire_handovers(now)
        assert expired.prefix == keys.display_prefix(dead_key) and expired.state(now) is KeyState.EXPIRED
        assert await store.expire_handovers(now) == []  # audited once
        assert [e.action for e in await store.list_audit(client_id)].count("key.handover_expire") == 1
        await store.revoke_client(client_id, now)
        assert await store.pending_handover(token_hash(live_token), now) is None
        assert await store.pick_up_key(token_hash(live_token), keys.hash_key(live_key), now) is None
        await store.reactivate_client(client_id, now=now)  # back within the link's lifetime: the link stays dead
        assert await store.pending_handover(token_hash(live_token), now) is None
        assert await store.pick_up_key(token_hash(live_token), keys.hash_key(live_key), now) is None
        live = await store.find_key(keys.hash_key(live_key))
        assert live.state(now) is KeyState.EXPIRED and live.handover_expires_at == now
        ended = [e for e in await store.list_audit(client_id) if e.action == "key.handover_end"]
        assert [e.key_id for e in ended] == [live.id] and "ended unopened with the revocation" in ended[0].detail


async def test_revoking_one_key_ends_its_link_for_good_and_leaves_the_others(database):
    now = time.time()
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        (token, _, handover, api_key), (other_token, _, other, _) = handed_over(now), handed_over(now)
        key = await store.create_key(client_id, keys.hash_key(api_key), keys.display_prefix(api_key), handover=handover)
        await store.create_key(client_id, keys.hash_key(keys.generate()), "vig_other", handover=other)
        await store.revoke_key(key.id, now)
        await store.reactivate_client(client_id, key.id, now)  # the operator restores that key alone
        assert await store.pick_up_key(token_hash(token), keys.hash_key(api_key), now) is None
        assert await store.pending_handover(token_hash(other_token), now) is not None  # untouched


async def test_rotation_gives_a_successor_and_an_expiry_and_only_keys_in_use_are_warned_of(database):
    now = time.time()
    async with await Store.open(database) as store:
        client_id, key_id, _ = await add_client(store)
        _, quiet_key, _ = await add_client(store, "quiet@b.test", "Quiet")
        await store.record_usage([], {key_id: now - HOUR, quiet_key: now - 8 * 86_400})  # streamed: an hour, 8 days ago
        successor = keys.generate()
        old, new = await store.rotate_key(key_id, keys.hash_key(successor), keys.display_prefix(successor),
                                          "(rotated 2026-01-31)", now + 2 * 86_400, now)
        assert (old.expires_at, new.client_id, new.label, new.expires_at) == (now + 2 * 86_400, client_id,
                                                                               "(rotated 2026-01-31)", None)
        again = keys.generate()  # a second rotation never lengthens the first one's grace
        old, _ = await store.rotate_key(key_id, keys.hash_key(again), keys.display_prefix(again), "", now + 9e9, now)
        assert old.expires_at == now + 2 * 86_400
        await store.rotate_key(quiet_key, keys.hash_key(keys.generate()), "vig_quiet0", "", now + 86_400, now)
        [expiring] = await store.keys_expiring(now, now + 3 * 86_400, now - 7 * 86_400)
        assert expiring.id == key_id  # the quiet one's agents stopped a week ago: nobody to warn about
        assert await store.keys_expiring(now, now + 86_400, now - 7 * 86_400) == []  # not within a day yet
        await store.key_expiry_warned(key_id, now)
        assert await store.keys_expiring(now, now + 3 * 86_400, now - 7 * 86_400) == []  # warned once
        rotations = [e for e in await store.list_audit(client_id) if e.action == "key.rotate"]  # newest first
        assert len(rotations) == 2 and rotations[-1].key_id == key_id and f"successor={new.id}" in rotations[-1].detail
