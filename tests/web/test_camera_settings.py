"""A camera's settings on the customer's page over real HTTP: what the customer sets is stored (audited as
the customer) and shown; hostile forms are refused with a clear message, nothing changed, no other client
touched."""

import asyncio
import io
import re
import time

import av
import pytest
from footage import make_footage, open_stream, send_video
from helpers import add_client, eventually, url
from test_pages import form_token, recorded_incident, signed_in

from vigint.config import Settings, StorageSettings
from vigint.schedule import parse_schedule
from vigint.store import Editor
from vigint.tuning import Mask, rectangle
from vigint.web.stills import STILLS


@pytest.fixture
async def site(start, tmp_path):
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data")))
    server.base = f"http://127.0.0.1:{server.page.port}"
    return server


async def streaming(server, client_id: int, key: str, camera: str):
    """Stream 3 s of real 320x180 H.264 as the client's camera; return the connection, left open, once the
    server's ring holds its packets."""
    connection, _ = await open_stream(url(server), key, camera=camera)
    await send_video(connection, make_footage(3, gop_seconds=1, width=320, height=180))
    await eventually(lambda: server.streams.of_client(client_id).get(camera) and
                     server.streams.of_client(client_id)[camera].packets())
    return connection


async def post(browser, page: str, fields: dict, token: str | None, **headers) -> tuple[int, str]:
    """Send a settings form as the page's own (unless `headers` say otherwise); return the status and the text
    of the page it ends on."""
    data = {**fields, **({"csrf": token} if token is not None else {})}
    async with browser.post(page, data=data, headers=headers) as answer:
        return answer.status, await answer.text()


async def test_the_customer_arms_mutes_and_masks_a_camera_and_the_pages_show_it(site):
    client_id, _, _ = await add_client(site.store)
    page = f"{site.base}/cameras/back%20door/settings"  # a camera that never streamed: set up by its name
    async with await signed_in(site, client_id) as browser:
        async with browser.get(f"{site.base}/cameras/settings?camera=back+door") as named:
            assert str(named.url) == page and "back door" in await named.text()
        token = await form_token(browser, page)
        status, text = await post(browser, page, {"action": "arming", "armed": "schedule",
                                                  "schedule": "lun-sam 20h-8h, dim"}, token)
        assert status == 200 and "Saved." in text and "Mon-Sat 20:00-08:00, Sun" in text
        setting = await site.store.camera_setting(client_id, "back door")
        assert setting.schedule == parse_schedule("Mon-Sat 20:00-08:00, Sun")
        assert setting.updated_by is Editor.CUSTOMER
        async with browser.get(f"{site.base}/cameras") as cameras:
            listing = await cameras.text()
        state = r"back door.*?(armed|disarmed) until (\w{3} )?\d\d:\d\d"
        assert re.search(state, listing, re.DOTALL), listing
        assert 'href="/cameras/back%20door/settings"' in listing

        hours = "Mon-Fri 09:00-18:00, Sat 10:00-16:00"
        await post(browser, page, {"action": "preset", "hours": hours}, token)
        setting = await site.store.camera_setting(client_id, "back door")
        assert setting.schedule == parse_schedule("outside Mon-Fri 09:00-18:00, Sat 10:00-16:00")

        status, text = await post(browser, page, {"action": "mute_hour"}, token)
        muted = (await site.store.camera_setting(client_id, "back door")).muted_until
        assert abs(muted - (time.time() + 3600)) < 30 and "muted for 60 min" in text
        status, text = await post(browser, page, {"action": "mute_morning"}, token)
        muted = (await site.store.camera_setting(client_id, "back door")).muted_until
        assert time.localtime(muted)[3:6] == (8, 0, 0) and 0 < muted - time.time() <= 28 * 3600
        await post(browser, page, {"action": "unmute"}, token)
        assert (await site.store.camera_setting(client_id, "back door")).muted_until is None

        masks = "0,0.5,0.25,0.5\n0.1 0.2, 0.6 0.2, 0.4 0.7"
        fields = {"action": "motion", "masks": masks, "sensitivity": "2.5"}
        status, text = await post(browser, page, fields, token)
        assert status == 200 and "0,0.5,0.25,0.5" in text and "0.1 0.2, 0.6 0.2, 0.4 0.7" in text
        setting = await site.store.camera_setting(client_id, "back door")
        assert setting.masks == (rectangle(0, 0.5, 0.25, 0.5), Mask(((0.1, 0.2), (0.6, 0.2), (0.4, 0.7))))
        assert setting.sensitivity == 2.5
    trail = await site.store.list_audit(client_id)
    audited = [entry.detail for entry in trail if "camera='back door' by=customer" in entry.detail]
    assert any("masks" in detail for detail in audited) and any("muted_until" in detail for detail in audited)


MEGABYTE = "Mon 20:00-08:00, " * 62_000
HOSTILE = [
    ({"action": "arming", "armed": "schedule", "schedule": MEGABYTE}, 413, "Too much sent"),
    ({"action": "arming", "armed": "schedule", "schedule": "Mon 20:00-08:00, " * 40}, 400,
     "at most 500 characters"),
    ({"action": "arming", "armed": "schedule", "schedule": "Mon-Sat 25:00-08:00"}, 400,
     "25:00 is not a time of day"),
    ({"action": "motion", "masks": ", ".join(["0 0"] * 10_000)}, 413, "Too much sent"),
    ({"action": "motion", "masks": ", ".join(["0.5 0.5"] * 1_000)}, 400, "at most 64 corners"),
    ({"action": "motion", "masks": "0,0,0.1,0.1\n" * 40}, 400, "at most 32 masks"),
    ({"action": "motion", "masks": "0.5,0.5,0.75,0.2"}, 400, "reaches past the picture&#39;s edge"),
    ({"action": "motion", "masks": "1.5 0, 0 1, 1 1"}, 400, "is not a fraction of the picture"),
    ({"action": "motion", "masks": "nan 0, 0 1, 1 1"}, 400, "&#39;nan&#39; is not a number"),
    ({"action": "motion", "masks": "", "sensitivity": "NaN"}, 400, "&#39;NaN&#39; is not a number"),
    ({"action": "motion", "masks": "", "sensitivity": "1e9"}, 400, "is not a number from 0.1 to 10"),
    ({"action": "launch"}, 400, "is not one of"),
]


@pytest.mark.parametrize(("fields", "status", "message"), HOSTILE,
                         ids=["megabyte schedule", "long schedule", "bad time", "10,000 points",
                              "1,000 corners", "40 masks", "outside the picture", "past 1", "NaN corner",
                              "NaN sensitivity", "huge sensitivity", "unknown button"])
async def test_a_hostile_form_is_refused_with_its_reason_and_changes_nothing(site, fields, status, message):
    client_id, _, _ = await add_client(site.store)
    other_id, _, _ = await add_client(site.store, "other@shop.test", "Other")
    await site.store.set_camera(other_id, "front-door", Editor.OPERATOR, masks=[rectangle(0, 0, 0.5, 0.5)])
    await site.store.set_camera(client_id, "front-door", Editor.OPERATOR, sensitivity=1.5)
    before = await site.store.camera_settings()
    page = f"{site.base}/cameras/front-door/settings"
    async with await signed_in(site, client_id) as browser:
        token = await form_token(browser, page)
        answered, text = await post(browser, page, fields, token)
    assert answered == status and message in text, text[-2000:]
    assert await site.store.camera_settings() == before


@pytest.mark.parametrize("forgery", ["no token", "wrong token", "another session's token", "another origin"])
async def test_a_forged_form_is_refused_and_changes_nothing(site, forgery):
    client_id, _, _ = await add_client(site.store)
    other_id, _, _ = await add_client(site.store, "other@shop.test", "Other")
    page = f"{site.base}/cameras/front-door/settings"
    fields = {"action": "arming", "armed": "never"}
    async with await signed_in(site, client_id) as browser, await signed_in(site, other_id) as other:
        tokens = {"no token": None, "wrong token": "0" * 64,
                  "another session's token": await form_token(other, page),
                  "another origin": await form_token(browser, page)}
        token = tokens[forgery]
        headers = {"Origin": "https://evil.example"} if forgery == "another origin" else {}
        status, text = await post(browser, page, fields, token, **headers)
    assert status == 403 and ("another site" in text or "not acted on" in text)
    assert await site.store.camera_settings() == []


async def test_another_clients_camera_name_shows_and_changes_only_ones_own(site):
    owner_id, owner_key_id, _ = await add_client(site.store)
    other_id, _, _ = await add_client(site.store, "other@shop.test", "Other")
    incident_id = await recorded_incident(site, owner_id, owner_key_id, "front-door")
    await site.store.set_camera(owner_id, "front-door", Editor.CUSTOMER, masks=[rectangle(0, 0, 0.5, 0.5)],
                                schedule="never")
    owner_before = await site.store.camera_setting(owner_id, "front-door")
    page = f"{site.base}/cameras/front-door/settings"
    async with await signed_in(site, other_id) as browser:
        async with browser.get(page) as settings:
            text = await settings.text()
            assert "0,0,0.5,0.5" not in text and "disarmed" not in text and "<img" not in text
        async with browser.get(f"{site.base}/cameras/front-door/still.jpg", allow_redirects=False) as still:
            assert still.status == 404  # not the owner's incident still
        token = await form_token(browser, page)
        status, _ = await post(browser, page, {"action": "motion", "masks": "0.5,0.5,0.5,0.5"}, token)
        assert status == 200
        for bad in ("..", "a" * 65, "-x", "a%2Fb"):
            async with browser.get(f"{site.base}/cameras/{bad}/settings") as refused:
                assert refused.status == 404
        async with browser.get(f"{site.base}/cameras/settings?camera=%3Cb%3E") as named:
            assert named.url.path == "/cameras" and "letters, digits, spaces" in await named.text()
    async with await signed_in(site, owner_id) as browser:  # not streaming: its latest incident's still
        async with browser.get(f"{site.base}/cameras/front-door/still.jpg", allow_redirects=False) as still:
            assert still.status == 303 and still.headers["Location"] == f"/incidents/{incident_id}/stills/0.jpg"
    assert await site.store.camera_setting(owner_id, "front-door") == owner_before
    assert (await site.store.camera_setting(other_id, "front-door")).masks == (rectangle(0.5, 0.5, 0.5, 0.5),)


async def test_a_streaming_cameras_still_is_decoded_once_for_many_viewers(site):
    client_id, _, key = await add_client(site.store)
    connection = await streaming(site, client_id, key, "shop")
    still = f"{site.base}/cameras/shop/still.jpg"
    stills = site.page._app[STILLS]
    async with await signed_in(site, client_id) as browser:
        async with browser.get(f"{site.base}/cameras/shop/settings") as page:
            text = await page.text()
            assert '<img src="/cameras/shop/still.jpg"' in text and '<script src="/static/masks.js?v=' in text
            policy = page.headers["Content-Security-Policy"]
            assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("style-src")[0]

        async def fetch() -> bytes:
            async with browser.get(still) as answer:
                assert answer.status == 200 and answer.content_type == "image/jpeg"
                return await answer.read()

        pictures = await asyncio.gather(*(fetch() for _ in range(20)))
        assert stills.decodes == 1 and len(set(pictures)) == 1
        with av.open(io.BytesIO(pictures[0])) as container:
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (320, 180)
        # other pages keep no script (the cameras page runs live.js, which refreshes its snapshots)
        async with browser.get(f"{site.base}/incidents") as incidents:
            assert "script-src" not in incidents.headers["Content-Security-Policy"]
        async with browser.get(f"{site.base}/static/masks.js") as script:
            assert script.content_type == "text/javascript" and "immutable" in script.headers["Cache-Control"]
            assert script.headers["X-Content-Type-Options"] == "nosniff"
    await connection.close()


async def test_a_french_clients_camera_pages_are_in_french(site):
    client_id, _, _ = await add_client(site.store)
    await site.store.update_client(client_id, language="fr", timezone="Europe/Paris")
    await site.store.set_camera(client_id, "cour", Editor.CUSTOMER, schedule="never")
    async with await signed_in(site, client_id) as browser:
        async with browser.get(f"{site.base}/cameras/cour/settings") as page:
            text = await page.text()
        async with browser.get(f"{site.base}/cameras") as cameras:
            listing = await cameras.text()
    assert '<html lang="fr">' in text and "Sourdine pendant 1 h" in text and "désarmée" in text
    assert "Réglages" in listing and "désarmée" in listing
