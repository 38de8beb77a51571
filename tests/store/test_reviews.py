"""Incident reviews and spent mute links in the store, on both engines: one client's incidents only, notes
checked, every change audited, lists filtered by review, false alarms counted per camera, a mute link spent
once."""

import asyncio
import time

import pytest
from helpers import add_client

from vigint.errors import InvalidInputError, NotFoundError
from vigint.store import Editor, ReviewMark, Store
from vigint.store.incidents import MAX_REVIEW_NOTE


async def test_a_review_is_kept_listed_filtered_counted_and_audited(database):
    now = time.time()
    async with await Store.open(database) as store:
        client_id, key_id, _ = await add_client(store)
        shop = [await store.create_incident(client_id, key_id, "shop", now - 60 * n) for n in range(3)]
        old = await store.create_incident(client_id, key_id, "shop", now - 8 * 86_400)  # over 7 days ago
        yard = await store.create_incident(client_id, key_id, "yard", now - 30)
        marked = await store.review_incident(client_id, shop[0].id, ReviewMark.FALSE_ALARM,
                                             "  the cat\r\nagain ", Editor.CUSTOMER, now)
        assert marked.review.mark is ReviewMark.FALSE_ALARM and marked.review.note == "the cat\nagain"
        assert (marked.review.at, marked.review.by) == (now, "customer")
        await store.review_incident(client_id, shop[1].id, ReviewMark.FALSE_ALARM, "", Editor.CUSTOMER, now)
        await store.review_incident(client_id, old.id, ReviewMark.FALSE_ALARM, "", Editor.CUSTOMER, now)
        await store.review_incident(client_id, yard.id, ReviewMark.REVIEWED, "the postman", Editor.CUSTOMER,
                                    now)
        assert await store.false_alarms_by_camera(client_id, now - 7 * 86_400) == {"shop": 2}
        ids = {name: [i.id for i in await store.list_incidents(client_id, review=name)]
               for name in ("false_alarm", "reviewed", "unreviewed")}
        assert ids == {"false_alarm": [shop[0].id, shop[1].id, old.id], "reviewed": [yard.id],
                       "unreviewed": [shop[2].id]}
        listed = await store.client_incidents(client_id, "shop", None, None, 0, 10, review="false_alarm")
        assert [row.incident.id for row in listed] == [shop[0].id, shop[1].id, old.id]
        assert len(await store.client_incidents(client_id, None, None, None, 0, 10)) == 5
        # The same review again changes nothing; clearing it drops the note.
        await store.review_incident(client_id, yard.id, ReviewMark.REVIEWED, "the postman ", Editor.CUSTOMER,
                                    now + 1)
        cleared = await store.review_incident(client_id, yard.id, None, "ignored", Editor.CUSTOMER, now + 2)
        assert cleared.review is None and (await store.get_incident(yard.id)).review is None
        trail = [entry.detail for entry in await store.list_audit(client_id)
                 if entry.action == "incident.review"]
        assert trail[0] == f"incident={yard.id} by=customer: reviewed -> none; note: 11 -> 0 characters"
        assert trail[-1] == (f"incident={shop[0].id} by=customer: none -> false alarm; "
                             "note: 0 -> 13 characters")
        assert len(trail) == 5


async def test_hostile_notes_filters_and_another_client_s_incident_change_nothing(database):
    now = time.time()
    async with await Store.open(database) as store:
        mine, key_id, _ = await add_client(store)
        theirs, their_key, _ = await add_client(store, "b@beta.test", "Beta")
        incident = await store.create_incident(mine, key_id, "shop", now)
        their_incident = await store.create_incident(theirs, their_key, "shop", now)
        for note, message in (("x" * (MAX_REVIEW_NOTE + 1), f"at most {MAX_REVIEW_NOTE} characters"),
                              ("x" * 1_000_000, "this one has 1,000,000"),
                              ("bell\x07", "control characters"), ("nul\x00", "control characters")):
            with pytest.raises(InvalidInputError, match=message):
                await store.review_incident(mine, incident.id, ReviewMark.FALSE_ALARM, note, Editor.CUSTOMER,
                                            now)
        with pytest.raises(NotFoundError):
            await store.review_incident(mine, their_incident.id, ReviewMark.FALSE_ALARM, "", Editor.CUSTOMER,
                                        now)
        with pytest.raises(InvalidInputError, match="unknown review filter"):
            await store.list_incidents(mine, review="' OR 1=1 --")
        assert (await store.get_incident(incident.id)).review is None
        assert (await store.get_incident(their_incident.id)).review is None
        assert not [entry for entry in await store.list_audit() if entry.action == "incident.review"]


async def test_a_mute_link_is_spent_once_even_by_two_at_the_same_instant_and_forgotten_once_expired(database):
    now = time.time()
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        tries = [store.spend_mute_link("ab" * 32, client_id, now, now + 60) for _ in range(4)]
        spent = await asyncio.gather(*tries)
        assert sorted(spent) == [False, False, False, True]
        assert not await store.spend_mute_link("ab" * 32, client_id, now + 30, now + 60)
        assert await store.spend_mute_link("cd" * 32, client_id, now + 120, now + 180)  # clears the expired
        rows = await store._fetch_all("SELECT signature FROM mute_links_used")
        assert [row["signature"] for row in rows] == ["cd" * 32]
