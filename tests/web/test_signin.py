"""Asking for a sign-in link: it tells nobody who the clients are, strangers cannot block a customer, and no
other site can post the page's forms."""

import asyncio
import re
import statistics
import time

import aiohttp
import pytest
from helpers import Mailbox, add_client, eventually, serving

from vigint.config import EmailSettings, Settings, StorageSettings, WebSettings
from vigint.networks import Proxies, requester_key
from vigint.web.access import SESSION_COOKIE, new_sign_in_link

SMTP_DELAY = 0.2  # a slow mail server: what the answer must not wait for


class SlowMailbox(Mailbox):
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(SMTP_DELAY)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_mailbox():
    with serving(SlowMailbox()) as box:
        yield box


async def page(start, tmp_path, mailbox, **web) -> object:
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"), web=WebSettings(**web),
                        email=EmailSettings(smtp_host="127.0.0.1", smtp_port=mailbox.port, security="none"))
    server = await start(settings)
    server.base = f"http://127.0.0.1:{server.page.port}"
    return server


async def ask(base: str, address: str, source: str = "127.0.0.1", **headers) -> tuple[int, str, float]:
    """Ask for a link from the loopback address `source`; return the status, the page and the seconds taken."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as browser:
        began = time.perf_counter()
        async with browser.post(f"{base}/sign-in", data={"email": address}, headers=headers) as answer:
            text = await answer.text()
        return answer.status, text, time.perf_counter() - began


async def test_the_answer_does_not_wait_for_the_mail_server(start, tmp_path, slow_mailbox):
    site = await page(start, tmp_path, slow_mailbox)
    for index in range(7):
        await add_client(site.store, f"owner{index}@shop.test", f"Shop {index}")
    known, unknown = [], []
    for index in range(7):  # each from its own address: no limit is ever in the way
        unknown.append((await ask(site.base, f"nobody{index}@shop.test", f"127.0.7.{2 * index + 1}"))[2])
        known.append((await ask(site.base, f"owner{index}@shop.test", f"127.0.7.{2 * index + 2}"))[2])
    difference = statistics.median(known) - statistics.median(unknown)
    assert difference < 0.03, f"a client's address is answered {difference * 1000:.0f} ms later"
    await eventually(lambda: len(slow_mailbox.messages) == 7, timeout=20)  # every link still went out
    assert sorted(message["To"] for message in slow_mailbox.messages) == [f"owner{i}@shop.test" for i in range(7)]


async def test_strangers_cannot_stop_a_customer_from_asking_for_a_link(start, tmp_path, mailbox):
    site = await page(start, tmp_path, mailbox)
    await add_client(site.store, "owner@shop.test")
    for stranger in range(1, 4):  # three strangers, each at the customer's mailbox's limit
        for _ in range(4):
            await ask(site.base, "owner@shop.test", f"127.0.8.{stranger}")
    for _ in range(12):  # and one at its own limit of requests
        await ask(site.base, "nobody@shop.test", "127.0.8.9")
    # Links go out after the answers: wait for the strangers' (3 each for the customer, none for an unknown address).
    received = await eventually(lambda: len(mailbox.messages) == 9 and 9)
    await ask(site.base, "owner@shop.test", "127.0.8.20")
    await eventually(lambda: len(mailbox.messages) == received + 1)


async def test_behind_a_trusted_proxy_each_requester_has_its_own_limits(start, tmp_path, mailbox):
    site = await page(start, tmp_path, mailbox, trusted_proxies="127.0.0.1")
    await add_client(site.store, "owner@shop.test")
    for _ in range(12):  # a stranger spends its own hourly allowance, and only its own
        await ask(site.base, f"x{_}@shop.test", **{"X-Forwarded-For": "203.0.113.7"})
    for _ in range(4):  # and the mailbox's, for itself
        await ask(site.base, "owner@shop.test", **{"X-Forwarded-For": "203.0.113.7"})
    received = len(mailbox.messages)  # none: the stranger's own allowance was spent on unknown addresses
    # The customer, behind the same proxy; what it wrote itself to the left of the proxy's entry is not believed.
    await ask(site.base, "owner@shop.test", **{"X-Forwarded-For": "203.0.113.7, 198.51.100.2"})
    await eventually(lambda: len(mailbox.messages) == received + 1)


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(start, tmp_path, mailbox):
    site = await page(start, tmp_path, mailbox)  # no trusted proxy
    await add_client(site.store, "owner@shop.test")
    for index in range(10):  # a new claimed address each time: the socket's is what counts
        await ask(site.base, f"x{index}@shop.test", "127.0.9.1", **{"X-Forwarded-For": f"198.51.100.{index}"})
    await ask(site.base, "owner@shop.test", "127.0.9.1", **{"X-Forwarded-For": "198.51.100.99"})
    await ask(site.base, "owner@shop.test", "127.0.9.2")  # a control from elsewhere: its link arrives
    await eventually(lambda: mailbox.messages)
    await asyncio.sleep(0.5)
    assert len(mailbox.messages) == 1


def test_the_requester_is_the_right_most_address_no_trusted_proxy_wrote():
    proxies = Proxies("10.0.0.0/8, 2001:db8::1")
    assert proxies.requester("10.0.0.2", ["1.2.3.4, 5.6.7.8", "10.0.0.9"]) == "5.6.7.8"
    assert proxies.requester("2001:db8::1", ["5.6.7.8"]) == "5.6.7.8"
    assert proxies.requester("192.0.2.1", ["5.6.7.8"]) == "192.0.2.1"  # not a trusted proxy: header ignored
    assert proxies.requester("10.0.0.2", ["not-an-address"]) == "10.0.0.2"
    assert proxies.requester("10.0.0.2", []) == "10.0.0.2"
    assert requester_key("2001:db8:1:2:3:4:5:6") == requester_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "null"}, {"Sec-Fetch-Site": "same-site", "Origin": "http://x"}],
                         ids=["origin", "fetch-site", "null origin", "same-site"])
async def test_a_form_from_another_site_is_refused_and_spends_nothing(start, tmp_path, mailbox, headers):
    site = await page(start, tmp_path, mailbox)
    client_id, _, _ = await add_client(site.store, "owner@shop.test")
    link = await new_sign_in_link(site.store, site.settings.web, site.base, client_id)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(link, headers=headers, allow_redirects=False) as forged:
            assert forged.status == 403 and "another site" in await forged.text()
            assert SESSION_COOKIE not in forged.cookies
            assert forged.headers["X-Content-Type-Options"] == "nosniff"
        status, text, _ = await ask(site.base, "owner@shop.test", **headers)
        assert status == 403
        # The page's own form, as a browser sends it: the link was not spent.
        own = {"Origin": site.base, "Sec-Fetch-Site": "same-origin"}
        async with browser.post(link, headers=own, allow_redirects=False) as signed:
            assert signed.status == 303 and SESSION_COOKIE in signed.cookies
    assert (await ask(site.base, "owner@shop.test", "127.0.0.1", Origin=site.base))[0] == 200
    await eventually(lambda: mailbox.messages)
    assert [message["To"] for message in mailbox.messages] == ["owner@shop.test"]
    assert re.search(r"/sign-in/\S+", mailbox.messages[0].get_content())
