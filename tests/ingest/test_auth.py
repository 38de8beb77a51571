import time
from dataclasses import dataclass

from helpers import add_client

from vigint import keys
from vigint.ingest.auth import authenticate, invalid_streams
from vigint.store import ApiKey, Handover, Store
from vigint.web.access import token_hash


@dataclass(eq=False)
class Stream:
    """An open stream as the revocation check sees one: its key, and whether it was looked up again."""

    key: ApiKey
    checked: bool = False


async def test_a_key_authenticates_until_it_is_revoked_and_again_once_reactivated(db_path):
    async with await Store.open(db_path) as store:
        client_id, key_id, api_key = await add_client(store)
        assert (await authenticate(store, api_key)).id == key_id
        await store.revoke_client(client_id)
        assert await authenticate(store, api_key) is None
        await store.reactivate_client(client_id)
        assert (await authenticate(store, api_key)).id == key_id
        assert await authenticate(store, keys.generate()) is None  # well formed, unknown
        # bad checksum
        assert await authenticate(store, api_key[:-1] + ("A" if api_key[-1] != "A" else "B")) is None


async def test_an_expiring_key_is_refused_from_its_expiry_and_its_stream_found(db_path):
    async with await Store.open(db_path) as store:
        client_id, _, _ = await add_client(store)
        api_key = keys.generate()
        await store.create_key(client_id, keys.hash_key(api_key), keys.display_prefix(api_key),
                               expires_at=1_000.0)
        stream = Stream(await authenticate(store, api_key, now=999.0))
        assert stream.key is not None and await authenticate(store, api_key, now=1_000.0) is None
        assert (await invalid_streams(store, [stream], None, 999.0))[0] == set()
        assert (await invalid_streams(store, [stream], None, 1_000.0))[0] == {stream}


async def test_streams_of_revoked_keys_are_found_once_the_database_changed(db_path):
    async with await Store.open(db_path) as store:
        first_id, _, first_key = await add_client(store)
        _, _, second_key = await add_client(store, "b@b.test", "Beta")
        mine = Stream(await authenticate(store, first_key))
        theirs = Stream(await authenticate(store, second_key))
        invalid, version = await invalid_streams(store, [mine, theirs], None, time.time())
        assert invalid == set() and mine.checked and theirs.checked
        assert await invalid_streams(store, [mine, theirs], version, time.time()) == (set(), version)
        await store.revoke_client(first_id)  # as `vigint client revoke` does, from another connection
        invalid, later = await invalid_streams(store, [mine, theirs], version, time.time())
        assert invalid == {mine} and later != version


async def test_a_new_stream_is_looked_up_once_even_if_nothing_changed(db_path):
    async with await Store.open(db_path) as store:
        client_id, _, api_key = await add_client(store)
        early = Stream(await authenticate(store, api_key))
        _, version = await invalid_streams(store, [], None, time.time())
        await store.revoke_client(client_id)
        # the change, seen with no stream open
        _, version = await invalid_streams(store, [], version, time.time())
        # authenticated before the revocation
        invalid, _ = await invalid_streams(store, [early], version, time.time())
        assert invalid == {early}


async def test_a_key_rotated_after_its_stream_opened_closes_the_stream_at_its_new_expiry(db_path):
    async with await Store.open(db_path) as store:
        _, key_id, api_key = await add_client(store)
        stream = Stream(await authenticate(store, api_key))
        _, version = await invalid_streams(store, [stream], None, 1_000.0)
        successor = keys.generate()
        await store.rotate_key(key_id, keys.hash_key(successor), keys.display_prefix(successor), "", 2_000.0,
                               1_000.0)
        # the change is seen once...
        invalid, version = await invalid_streams(store, [stream], version, 1_500.0)
        assert invalid == set() and stream.key.expires_at == 2_000.0
        # ...and kept in mind
        assert (await invalid_streams(store, [stream], version, 2_000.0))[0] == {stream}


async def test_a_handed_over_key_is_refused_until_picked_up_and_the_log_says_why(db_path, caplog):
    token = "t" * 43
    seal = keys.new_seal()
    api_key = keys.derive(token, seal)
    async with await Store.open(db_path) as store:
        client_id, _, _ = await add_client(store)
        await store.create_key(client_id, keys.hash_key(api_key), keys.display_prefix(api_key),
                               handover=Handover(token_hash(token), seal, time.time() + 3600))
        assert await authenticate(store, api_key) is None
        refusal = f"client {client_id} key {api_key[:10]}… refused: its hand-over link has not been opened"
        assert refusal in caplog.text
        await store.pick_up_key(token_hash(token), keys.hash_key(api_key), time.time())
        assert (await authenticate(store, api_key)).client_id == client_id
    assert api_key[10:] not in caplog.text
