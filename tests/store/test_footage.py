"""Live footage received, on both engines: what a backfill on any node skips."""

from helpers import add_client

from vigint.store import LiveSpan, Store
from vigint.store.footage import KEEP_LIVE_FOOTAGE_US


async def test_a_stream_s_span_moves_on_and_a_camera_keeps_a_week_of_them(database):
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        now = 1_800_000_000_000_000
        old = LiveSpan("old", client_id, "door", now - KEEP_LIVE_FOOTAGE_US - 10, now - KEEP_LIVE_FOOTAGE_US - 1)
        other = LiveSpan("other", client_id, "yard", 5, 6)
        await store.save_live_footage([old, other], [old, other])
        live = LiveSpan("live", client_id, "door", now, now + 1)
        await store.save_live_footage([live], [])
        assert await store.live_footage(client_id, "door") == [(old.first_us, old.last_us), (now, now + 1)]
        ended = LiveSpan("live", client_id, "door", now, now + 9)
        await store.save_live_footage([ended], [ended])  # the stream ended: its camera's week-old spans go
        assert await store.live_footage(client_id, "door") == [(now, now + 9)]
        assert await store.live_footage(client_id, "yard") == [(5, 6)]
        await store.save_live_footage([LiveSpan("gone", client_id + 1, "door", 1, 2)], [])  # a deleted client's
        assert await store.live_footage(client_id + 1, "door") == []
