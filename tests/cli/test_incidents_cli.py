"""`vigint incidents list` shows each incident's review by the customer and filters by it (the real CLI)."""

import asyncio
import time

from helpers import add_client

from vigint.store import Editor, ReviewMark, Store


async def reviewed_incidents(db_path) -> tuple[int, list[int]]:
    """A client with three incidents: one a false alarm with a note, one reviewed, one not reviewed."""
    now = time.time()
    async with await Store.open(str(db_path)) as store:
        client_id, key_id, _ = await add_client(store)
        ids = [(await store.create_incident(client_id, key_id, "shop", now - n)).id for n in range(3)]
        await store.review_incident(client_id, ids[0], ReviewMark.FALSE_ALARM, "la porte qui bat",
                                    Editor.CUSTOMER, now)
        await store.review_incident(client_id, ids[1], ReviewMark.REVIEWED, "", Editor.CUSTOMER, now)
    return client_id, ids


async def test_the_list_shows_each_review_and_filters_by_it(cli, db_path):
    client_id, ids = await reviewed_incidents(db_path)
    listed = (await asyncio.to_thread(cli, "incidents", "list", "--json")).json()
    reviews = {incident["id"]: incident["review"] for incident in listed}
    assert reviews[ids[2]] is None
    assert reviews[ids[1]]["state"] == "reviewed" and reviews[ids[1]]["note"] == ""
    false_alarm = reviews[ids[0]]
    assert false_alarm["state"] == "false_alarm" and false_alarm["note"] == "la porte qui bat"
    assert false_alarm["by"] == "customer"
    assert false_alarm["at"].endswith("Z")
    for review, expected in (("false_alarm", [ids[0]]), ("reviewed", [ids[1]]), ("unreviewed", [ids[2]])):
        shown = await asyncio.to_thread(cli, "incidents", "list", "--client-id", str(client_id), "--review",
                                        review, "--json")
        assert [incident["id"] for incident in shown.json()] == expected, review
    table = await asyncio.to_thread(cli, "incidents", "list", "--review", "false_alarm")
    assert "false alarm: la porte qui bat" in table.out and "1 incident" in table.out
    refused = await asyncio.to_thread(cli, "incidents", "list", "--review", "' OR 1=1")
    assert refused.code == 2 and "invalid choice" in refused.err
