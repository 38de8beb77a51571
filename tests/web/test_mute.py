"""An alert email's mute links over real HTTP: a real incident's email (aiosmtpd), its link opened (a
scanner's GET mutes nothing), its button pressed (that camera only is muted, audited, once); replayed, forged,
expired and other clients' links refused with nothing changed."""

import re
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
from footage import make_scene, open_stream, send_video
from helpers import add_client, eventually, url

from vigint.alerts import emails, mutes
from vigint.arming import next_morning
from vigint.config import AlertSettings, EmailSettings, MotionSettings, Settings, StorageSettings
from vigint.store import Editor


def alerting(tmp_path, smtp_port: int) -> Settings:
    return Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                    motion=MotionSettings(cooldown_seconds=5),
                    email=EmailSettings(smtp_host="127.0.0.1", smtp_port=smtp_port, security="none",
                                        sender="alerts@vigint.test"),
                    alerts=AlertSettings(retry_seconds=0.3, max_retry_seconds=0.5))


def mute_links(message) -> dict[str, str]:
    """The mute links of an alert email's text part, by their choice (1h, morning)."""
    text = emails.text_of(message).replace("\r\n", "\n")
    found = re.findall(r"^(http\S+/mute/\d+\?\S+)$", text, re.MULTILINE)
    return {parse_qs(urlsplit(link).query)["for"][0]: link for link in found}


async def queued_alert(server, client_id: int, key_id: int, camera: str):
    """An incident recorded and alerted as the desk does (for the tests that need many quickly)."""
    incident = await server.store.create_incident(client_id, key_id, camera, time.time())
    await server.store.enqueue_alerts(incident.id, server.outbox.channels, time.time())
    server.outbox.wake()
    return incident


async def press(link: str) -> tuple[int, str, int, str]:
    """Open a mute link as a person does: the page (GET), then its button (POST from the page)."""
    async with aiohttp.ClientSession() as browser:
        async with browser.get(link) as page:
            shown = (page.status, await page.text())
        origin = f"{urlsplit(link).scheme}://{urlsplit(link).netloc}"
        async with browser.post(link, headers={"Origin": origin}) as done:
            return (*shown, done.status, await done.text())


async def test_a_real_incident_s_email_mutes_its_camera_only_once_after_a_button_not_a_scanner(
        start, tmp_path, mailbox):
    server = await start(settings=alerting(tmp_path, mailbox.port))
    client_id, _, api_key = await add_client(server.store)
    await server.store.update_client(client_id, timezone="Europe/Paris")
    # Another camera of the client's, which the link must leave as it is:
    await server.store.set_camera(client_id, "yard", Editor.CUSTOMER, schedule="Sun")
    connection, _ = await open_stream(url(server), api_key, "shop")
    await send_video(connection, make_scene(25, moving=(8, 11)), speed=8)
    await connection.close()
    await eventually(lambda: len(mailbox.messages) == 1, timeout=30)
    [message] = mailbox.messages
    links = mute_links(message)
    assert set(links) == {"1h", "morning"} and "Mute this camera for 1 hour" in emails.text_of(message)
    assert 'Mute it until morning (08:00)</a>' in message.get_body(("html",)).get_content()
    expires = int(parse_qs(urlsplit(links["1h"]).query)["exp"][0])
    assert time.time() + 23 * 3600 < expires <= time.time() + 24 * 3600  # a day, not the clip's month
    async with aiohttp.ClientSession() as scanner:  # a mail scanner opens every link: nothing may happen
        for link in links.values():
            async with scanner.get(link) as page:
                assert page.status == 200 and 'id="mute"' in await page.text()
    assert await server.store.camera_setting(client_id, "shop") is None
    before = time.time()
    status, page, pressed, answer = await press(links["1h"])
    assert status == 200 and "Mute camera “shop”?" in page and pressed == 200, answer
    assert "Camera “shop” is muted" in answer and "Muted for 60 min." in answer
    shop = await server.store.camera_setting(client_id, "shop")
    assert before + 3600 <= shop.muted_until <= time.time() + 3600 and shop.updated_by is Editor.MUTE_LINK
    assert (await server.store.camera_setting(client_id, "yard")).muted_until is None
    [entry] = [entry for entry in await server.store.list_audit(client_id) if "by=mute link" in entry.detail]
    assert entry.detail.startswith("camera='shop' by=mute link: muted_until: none -> ")
    _, _, replayed, answer = await press(links["1h"])  # the same link again: spent
    assert replayed == 409 and "used already" in answer
    assert (await server.store.camera_setting(client_id, "shop")).muted_until == shop.muted_until
    _, _, pressed, answer = await press(links["morning"])  # the other link of the email is its own
    morning = next_morning(datetime.now(UTC), ZoneInfo("Europe/Paris"))  # the client's, not the server's
    assert pressed == 200 and "Muted until " in answer and f"{morning:%H:%M}." in answer, answer
    ends = (await server.store.camera_setting(client_id, "shop")).muted_until
    assert ends == morning.timestamp()


async def test_forged_expired_altered_and_other_clients_links_mute_nothing(start, tmp_path, mailbox):
    server = await start(settings=alerting(tmp_path, mailbox.port))
    mine, my_key, _ = await add_client(server.store)
    theirs, their_key, _ = await add_client(server.store, "b@beta.test", "Beta")
    my_incident = await queued_alert(server, mine, my_key, "shop")
    their_incident = await queued_alert(server, theirs, their_key, "shop")
    await eventually(lambda: len(mailbox.messages) == 2)
    sent = {message["To"]: mute_links(message)["1h"] for message in mailbox.messages}
    my_link, their_link = sent["ops@acme.test"], sent["b@beta.test"]
    parts = urlsplit(my_link)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    base = f"{parts.scheme}://{parts.netloc}/mute/"
    past = int(time.time()) - 1
    forged = [
        f"{base}{their_incident.id}?{parts.query}",  # my signature on their incident
        f"{base}{my_incident.id}?{urlencode({**query, 'exp': int(query['exp']) + 3600})}",  # a later expiry
        f"{base}{my_incident.id}?{urlencode({**query, 'for': 'morning'})}",  # a longer mute
        f"{base}{my_incident.id}?{urlencode({**query, 'sig': '0' * 64})}",  # a made-up signature
        f"{base}{my_incident.id}?{urlencode({**query, 'exp': '9' * 5000})}",
        f"{base}{my_incident.id}",  # no signature
        f"{base}999999?{parts.query}",  # no such incident
        mutes.mute_link(server.outbox.page_url, server.outbox.secret, my_incident, "1h", past),  # expired
        mutes.mute_link(server.outbox.page_url, "another secret" * 4, my_incident, "1h", int(query["exp"])),
    ]
    for link in forged:
        status, page, pressed, answer = await press(link)
        assert (status, pressed) == (403, 403), link
        assert "Nothing was muted" in answer and "invalid or has expired" in answer
        assert 'id="mute"' not in page
    assert await server.store.camera_setting(mine, "shop") is None
    assert await server.store.camera_setting(theirs, "shop") is None
    assert (await press(their_link))[2] == 200  # their own link mutes their camera, and only theirs
    assert (await server.store.camera_setting(theirs, "shop")).muted_until is not None
    assert await server.store.camera_setting(mine, "shop") is None
    evil = {"Origin": "https://evil.example"}  # the button of a copy of the page, on another site
    async with aiohttp.ClientSession() as elsewhere, elsewhere.post(my_link, headers=evil) as answer:
        assert answer.status == 403
    assert await server.store.camera_setting(mine, "shop") is None
    assert (await press(my_link))[2] == 200  # still unspent: the refused tries cost it nothing


async def test_a_camera_event_s_email_offers_no_mute(start, tmp_path, mailbox):
    server = await start(settings=alerting(tmp_path, mailbox.port))
    client_id, _, _ = await add_client(server.store)
    await server.store.record_event(client_id, "shop", "camera_down", "shop sends nothing", time.time(),
                                    server.outbox.channels)
    server.outbox.wake()
    await eventually(lambda: mailbox.messages)
    assert mute_links(mailbox.messages[0]) == {} and "/mute/" not in str(mailbox.messages[0])
