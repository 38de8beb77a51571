"""Reviewing incidents on the customer's page over real HTTP: marked, shown, filtered, counted per camera with
a hint, audited; hostile forms, other clients and other sites change nothing."""

import time

import aiohttp
from helpers import add_client
from test_pages import form_token, signed_in

from vigint.store.incidents import MAX_REVIEW_NOTE


async def page(browser: aiohttp.ClientSession, url: str) -> str:
    async with browser.get(url) as answer:
        assert answer.status == 200
        return await answer.text()


async def test_a_false_alarm_is_shown_filtered_counted_beside_its_camera_and_audited(site):
    client_id, key_id, _ = await add_client(site.store)
    now = time.time()
    shop = [(await site.store.create_incident(client_id, key_id, "shop floor", now - n)).id for n in range(2)]
    door = (await site.store.create_incident(client_id, key_id, "door", now - 5)).id
    async with await signed_in(site, client_id) as browser:
        token = await form_token(browser, f"{site.base}/incidents")
        form = {"mark": "false_alarm", "note": "the <b>cat</b> again", "csrf": token}
        async with browser.post(f"{site.base}/incidents/{shop[0]}/review", data=form,
                                allow_redirects=False) as marked:
            assert marked.status == 303 and marked.headers["Location"] == f"/incidents/{shop[0]}"
        shown = await page(browser, f"{site.base}/incidents/{shop[0]}")
        assert 'id="review">False alarm' in shown and "the &lt;b&gt;cat&lt;/b&gt; again" in shown
        async with browser.post(f"{site.base}/incidents/{door}/review",
                                data={"mark": "reviewed", "csrf": token}) as answer:
            assert answer.status == 200 and 'id="review">Reviewed' in await answer.text()
        listing = await page(browser, f"{site.base}/incidents?review=false_alarm")
        assert f'href="/incidents/{shop[0]}"' in listing and f'href="/incidents/{shop[1]}"' not in listing
        assert f'href="/incidents/{door}"' not in listing
        unreviewed = await page(browser, f"{site.base}/incidents?review=unreviewed")
        assert f'href="/incidents/{shop[1]}"' in unreviewed
        assert f'href="/incidents/{shop[0]}"' not in unreviewed
        everything = await page(browser, f"{site.base}/incidents?review=nonsense")  # an unknown filter: all
        assert all(f'href="/incidents/{i}"' in everything for i in (*shop, door))
        assert "shop floor (1 false alarm)" in everything and "door (" not in everything
        assert ('<b>shop floor</b>: 1 · <a href="/cameras/shop%20floor/settings">draw a mask or lower the '
                "sensitivity</a>") in everything
        async with browser.post(f"{site.base}/incidents/{shop[0]}/review", data={"mark": "", "csrf": token}) as cleared:
            assert cleared.status == 200 and 'id="review"' not in await cleared.text()
        assert "false-alarms" not in await page(browser, f"{site.base}/incidents")
    trail = [entry.detail for entry in await site.store.list_audit(client_id)
             if entry.action == "incident.review"]
    assert trail == [f"incident={shop[0]} by=customer: false alarm -> none; note: 20 -> 0 characters",
                     f"incident={door} by=customer: none -> reviewed; note: 0 -> 0 characters",
                     f"incident={shop[0]} by=customer: none -> false alarm; note: 0 -> 20 characters"]


async def test_hostile_reviews_other_clients_and_other_sites_change_nothing(site):
    mine, my_key, _ = await add_client(site.store)
    theirs, their_key, _ = await add_client(site.store, "b@beta.test", "Beta")
    incident = (await site.store.create_incident(mine, my_key, "shop", time.time())).id
    their_incident = (await site.store.create_incident(theirs, their_key, "shop", time.time())).id
    async with await signed_in(site, mine) as browser:
        review = f"{site.base}/incidents/{incident}/review"
        token = await form_token(browser, f"{site.base}/incidents")
        for form, status, said in (
            ({"mark": "false_alarm", "note": "x" * (MAX_REVIEW_NOTE + 1)}, 400, f"at most {MAX_REVIEW_NOTE}"),
            ({"mark": "false_alarm", "note": "a\x00b"}, 400, "without control characters"),
            ({"mark": "deleted"}, 400, "not one this page offers"),
        ):
            async with browser.post(review, data={**form, "csrf": token}) as answer:
                assert answer.status == status and said in await answer.text(), form
        async with browser.post(review, data={"mark": "reviewed", "note": "x" * 100_000, "csrf": token}) as huge:
            assert huge.status == 413  # past the page's form limit: not even read
        async with browser.post(f"{site.base}/incidents/{their_incident}/review",
                                data={"mark": "false_alarm", "csrf": token}) as other:
            assert other.status == 404
        async with browser.post(review, data={"mark": "false_alarm", "csrf": token},
                                headers={"Origin": "https://evil.example"}) as forged:
            assert forged.status == 403
        async with browser.post(review, data={"mark": "false_alarm"}) as tokenless:
            assert tokenless.status == 403
    async with aiohttp.ClientSession() as stranger, \
            stranger.post(review, data={"mark": "false_alarm"}, allow_redirects=False) as anonymous:
        assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/sign-in")
    assert (await site.store.get_incident(incident)).review is None
    assert (await site.store.get_incident(their_incident)).review is None
    assert not [entry for entry in await site.store.list_audit() if entry.action == "incident.review"]


async def test_a_french_client_reviews_in_french(site):
    client_id, key_id, _ = await add_client(site.store)
    await site.store.update_client(client_id, language="fr")
    incident = (await site.store.create_incident(client_id, key_id, "shop", time.time())).id
    async with await signed_in(site, client_id) as browser:
        review = f"{site.base}/incidents/{incident}/review"
        token = await form_token(browser, f"{site.base}/incidents")
        async with browser.post(review, data={"mark": "false_alarm", "csrf": token}) as answer:
            text = await answer.text()
        assert '<html lang="fr">' in text and 'id="review">Fausse alerte' in text and "Votre examen" in text
        listing = await page(browser, f"{site.base}/incidents")
        assert "dessinez un masque ou baissez la sensibilité" in listing and "Tous les incidents" in listing
