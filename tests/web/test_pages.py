"""The customer's own page over real HTTP: signing in, what a session sees, and what it never sees."""

import asyncio
import http.client
import logging
import re
import socket
import time
from decimal import Decimal
from urllib.parse import unquote

import aiohttp
import av
from footage import make_h264, write_clip
from helpers import add_client, eventually, run_vigint
from yarl import URL

from vigint.config import Settings, StorageSettings, WebSettings
from vigint.incidents.storage import FolderStorage, still_name
from vigint.media import Packet
from vigint.store import Invoice, Line
from vigint.web.access import SESSION_COOKIE, new_sign_in_link

EPOCH_US = 1_767_225_600_000_000
D0, D1 = Decimal(0), Decimal(1)


def jpeg(width: int = 64, height: int = 36) -> bytes:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = width, height, "yuvj420p", 1
    frame = av.VideoFrame(width, height, "yuvj420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])


async def recorded_incident(server, client_id: int, key_id: int, camera: str = "front-door") -> int:
    """An incident as the desk leaves it: a row with a 2 s clip and a still in the clip storage."""
    store = server.store
    incident = await store.create_incident(client_id, key_id, camera, time.time() - 60)
    storage = FolderStorage(server.settings.storage.data_dir / "clips")
    video = make_h264(2)
    packets = [Packet(EPOCH_US + pts, EPOCH_US + dts, key, data) for pts, dts, key, data in video.units]
    name = f"clips/{client_id}/{incident.id}.mp4"
    write_clip(packets, storage.path(name), video.width, video.height)
    storage.path(still_name(client_id, incident.id, 0)).write_bytes(jpeg())
    await store.update_incident(incident.id, clip_path=name, stills=1, ended_at=time.time() - 50)
    return incident.id


async def signed_in(server, client_id: int) -> aiohttp.ClientSession:
    """A browser-like session signed in as the client through a one-time link."""
    link = await new_sign_in_link(server.store, server.settings.web, server.base, client_id)
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(link, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    return session


async def form_token(browser: aiohttp.ClientSession, page: str) -> str:
    """The form token a signed-in page's forms carry (`base.token_field`), read from `page` as a browser would."""
    async with browser.get(page) as answer:
        assert answer.status == 200
        return re.search(r'name="csrf" value="([0-9a-f]{64})"', await answer.text())[1]


async def test_a_client_link_from_the_cli_signs_in_once(site, tmp_path):
    client_id, _, _ = await add_client(site.store)
    env = {"VIGINT_WEB_PUBLIC_URL": site.base}
    printed = await asyncio.to_thread(run_vigint, "client", "link", "--client-id", str(client_id), "--db",
                                      str(site.settings.database.path), cwd=tmp_path, env=env)
    assert printed.returncode == 0, printed.stderr
    link = re.search(r"http://\S+/sign-in/\S+", printed.stdout)[0]
    assert "valid 15 minutes, once" in printed.stdout
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(link) as page:  # opening the link (a mail scanner would) does not spend it
            assert page.status == 200 and "Sign in" in await page.text()
        async with browser.post(link, data={"next": "/cameras"}, allow_redirects=False) as signed:
            assert signed.status == 303 and signed.headers["Location"] == "/cameras"
            cookie = signed.cookies[SESSION_COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]  # plain HTTP here
            assert 25 * 86_400 < int(cookie["max-age"]) <= 30 * 86_400
        async with browser.get(f"{site.base}/incidents") as page:
            assert page.status == 200 and "Acme" in await page.text()
    async with aiohttp.ClientSession() as stranger:
        async with stranger.post(link, allow_redirects=False) as again:
            assert again.status == 400 and "no longer works" in await again.text()
            assert SESSION_COOKIE not in again.cookies


async def test_expired_forged_and_malformed_links_are_refused(site):
    client_id, _, _ = await add_client(site.store)
    expired = await new_sign_in_link(site.store, site.settings.web, site.base, client_id, now=time.time() - 16 * 60)
    forged = expired[:-4] + ("AAAA" if not expired.endswith("AAAA") else "BBBB")
    async with aiohttp.ClientSession() as browser:
        for link in (expired, forged, f"{site.base}/sign-in/short", f"{site.base}/sign-in/{'x' * 5000}"):
            async with browser.post(link, allow_redirects=False) as answer:
                assert answer.status in (400, 404) and SESSION_COOKIE not in answer.cookies, link
        async with browser.get(f"{site.base}/incidents", allow_redirects=False) as page:
            assert page.status == 303 and unquote(page.headers["Location"]) == "/sign-in?next=/incidents"


async def test_a_session_sees_only_its_own_client(site):
    a, a_key, _ = await add_client(site.store, "a@shop.test", "Shop A")
    b, _, _ = await add_client(site.store, "b@shop.test", "Shop B")
    incident = await recorded_incident(site, a, a_key)
    invoice = await site.store.issue_invoice(Invoice(0, "2026-11-01", "2026-10", a, "Shop A", "a@shop.test", "EUR",
                                                     (Line("Camera hours", D1, "h", D1, D1),), D0, "Vigint", "", ""))
    urls = [f"/incidents/{incident}", f"/incidents/{incident}/clip.mp4", f"/incidents/{incident}/clip.mp4?download=1",
            f"/incidents/{incident}/stills/0.jpg", f"/invoices/{invoice.number}"]
    owner, other = await signed_in(site, a), await signed_in(site, b)
    async with owner, other:
        for url in urls:
            async with owner.get(site.base + url) as mine, other.get(site.base + url) as theirs:
                assert mine.status == 200, url
                assert theirs.status == 404, url
                assert "Shop A" not in await theirs.text() or url.endswith((".mp4", ".jpg"))
        async with other.get(f"{site.base}/incidents") as listing, other.get(f"{site.base}/cameras") as cameras:
            assert "front-door" not in await listing.text() and "front-door" not in await cameras.text()
        async with other.get(f"{site.base}/account") as account:
            assert f"Invoice {invoice.number}<" not in await account.text()
        async with owner.get(f"{site.base}/incidents") as listing:
            text = await listing.text()
            assert f'href="/incidents/{incident}"' in text and f"/incidents/{incident}/stills/0.jpg" in text


async def test_the_clip_answers_ranges_and_plays_from_its_start(site):
    client_id, key_id, _ = await add_client(site.store)
    incident = await recorded_incident(site, client_id, key_id)
    async with await signed_in(site, client_id) as browser:
        url = f"{site.base}/incidents/{incident}/clip.mp4"
        async with browser.get(url, headers={"Range": "bytes=0-1"}) as first:
            assert first.status == 206 and first.headers["Accept-Ranges"] == "bytes"
            assert len(await first.read()) == 2 and first.headers["Content-Range"].startswith("bytes 0-1/")
        async with browser.get(url) as whole:
            body, etag = await whole.read(), whole.headers["ETag"]
            assert whole.headers["Content-Type"] == "video/mp4"
        assert body.index(b"moov") < body.index(b"mdat")  # faststart: a phone plays it while it downloads
        async with browser.get(url, headers={"If-None-Match": etag}) as cached:
            assert cached.status == 304
        async with browser.get(url + "?download=1") as download:
            assert download.headers["Content-Disposition"] == f'attachment; filename="vigint-incident-{incident}.mp4"'


async def test_revoking_the_client_ends_its_session_at_once(site, tmp_path):
    client_id, _, _ = await add_client(site.store)
    async with await signed_in(site, client_id) as browser:
        async with browser.get(f"{site.base}/incidents", allow_redirects=False) as page:
            assert page.status == 200
        database = str(site.settings.database.path)
        revoked = await asyncio.to_thread(run_vigint, "client", "revoke", "--client-id", str(client_id),
                                          "--db", database, cwd=tmp_path)
        assert revoked.returncode == 0, revoked.stderr
        async with browser.get(f"{site.base}/incidents", allow_redirects=False) as page:
            assert page.status == 303 and page.headers["Location"].startswith("/sign-in")
        # Reactivating the client restores its keys, not a session its revocation ended.
        reactivated = await asyncio.to_thread(run_vigint, "client", "reactivate", "--client-id", str(client_id),
                                              "--db", database, cwd=tmp_path)
        assert reactivated.returncode == 0, reactivated.stderr
        async with browser.get(f"{site.base}/incidents", allow_redirects=False) as page:
            assert page.status == 303


async def test_signing_out_ends_the_session(site):
    client_id, _, _ = await add_client(site.store)
    async with await signed_in(site, client_id) as browser:
        cookie = browser.cookie_jar.filter_cookies(URL(site.base))[SESSION_COOKIE].value
        async with browser.post(f"{site.base}/sign-out", allow_redirects=False) as forged:  # no form token
            assert forged.status == 403 and "not acted on" in await forged.text()
        token = await form_token(browser, f"{site.base}/incidents")  # still signed in: the page's own button
        async with browser.post(f"{site.base}/sign-out", data={"csrf": token}, allow_redirects=False) as out:
            assert out.status == 303
    async with aiohttp.ClientSession(cookies={SESSION_COOKIE: cookie}) as replay:  # the old cookie, kept
        async with replay.get(f"{site.base}/incidents", allow_redirects=False) as page:
            assert page.status == 303


async def test_an_emailed_link_goes_only_to_a_known_address_and_the_answer_is_the_same(site, mailbox):
    await add_client(site.store, "owner@shop.test")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        answers = []
        for address in ("nobody@shop.test", "OWNER@shop.test"):
            async with browser.post(f"{site.base}/sign-in", data={"email": address, "next": "/cameras"}) as answer:
                answers.append(re.sub(r"\s+", " ", await answer.text()))
        assert answers[0] == answers[1] and "a sign-in link is on its way" in answers[0]
        await eventually(lambda: mailbox.messages)  # sent after the answer
        assert [message["To"] for message in mailbox.messages] == ["owner@shop.test"]
        message = mailbox.messages[0]
        assert message["Date"] and message["Message-ID"]
        link = re.search(r"http://\S+/sign-in/\S+", message.get_content())[0]
        assert link.startswith(site.base)  # the page's own address, not the request's Host header
        async with browser.get(link) as confirm:
            form_next = re.search(r'name="next" value="([^"]*)"', await confirm.text())[1]
        async with browser.post(link, data={"next": form_next}, allow_redirects=False) as signed:
            assert signed.status == 303 and signed.headers["Location"] == "/cameras"


async def test_hostile_values_are_escaped_and_bad_filters_explained(site):
    client_id, key_id, _ = await add_client(site.store)
    await site.store.create_incident(client_id, key_id, "<script>alert(1)</script>", time.time())
    async with await signed_in(site, client_id) as browser:
        async with browser.get(f"{site.base}/incidents?day=2026-13-45&page=-3&camera=%3Cb%3E") as page:
            text = await page.text()
            assert page.status == 200 and "That day is not a date" in text
            assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
        async with browser.get(f"{site.base}/incidents") as page:
            text = await page.text()
            assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_secure_cookies_behind_an_https_address(start, tmp_path):
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                        web=WebSettings(public_url="https://vigint.example.test"))
    server = await start(settings)
    server.base = f"http://127.0.0.1:{server.page.port}"
    client_id, _, _ = await add_client(server.store)
    link = await new_sign_in_link(server.store, server.settings.web, server.base, client_id)
    async with aiohttp.ClientSession() as browser, browser.post(link, allow_redirects=False) as signed:
        assert signed.cookies[SESSION_COOKIE]["secure"]


def ask(connection: socket.socket, path: str, **headers: str) -> http.client.HTTPResponse:
    """Send one GET on an open connection and read its whole answer, leaving the connection open."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{name}: {value}" for name, value in headers.items())]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    answer = http.client.HTTPResponse(connection)
    answer.begin()
    answer.body = answer.read()
    return answer


async def test_a_players_range_requests_share_one_connection_and_log_no_error(site, caplog):
    client_id, key_id, _ = await add_client(site.store)
    incident = await recorded_incident(site, client_id, key_id)
    clip = (site.settings.storage.data_dir / "clips" / str(client_id) / f"{incident}.mp4").read_bytes()
    async with await signed_in(site, client_id) as browser:
        cookie = browser.cookie_jar.filter_cookies(URL(site.base))[SESSION_COOKIE].value

    def play() -> list[http.client.HTTPResponse]:
        with socket.create_connection(("127.0.0.1", site.page.port), timeout=10) as connection:
            return [ask(connection, f"/incidents/{incident}/clip.mp4", Cookie=f"{SESSION_COOKIE}={cookie}",
                        Range=wanted) for wanted in ("bytes=0-1", "bytes=100-199", "bytes=-10")]

    first, second, last = await asyncio.to_thread(play)  # one keep-alive connection, as a phone's player keeps
    assert (first.status, first.body) == (206, clip[:2]) and (second.status, second.body) == (206, clip[100:200])
    assert (last.status, last.body) == (206, clip[-10:])
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text


def assert_guarded(headers, cache: str = "private, no-store") -> None:
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == cache


async def test_clips_stills_redirects_and_errors_carry_the_pages_security_and_cache_headers(site):
    client_id, key_id, _ = await add_client(site.store)
    incident = await recorded_incident(site, client_id, key_id)
    async with await signed_in(site, client_id) as browser:
        for path in (f"/incidents/{incident}/clip.mp4", f"/incidents/{incident}/stills/0.jpg"):
            async with browser.get(site.base + path) as answer:
                assert answer.status == 200, path
                assert_guarded(answer.headers, "private, no-cache")  # kept by the browser, checked by ETag
            async with browser.get(site.base + path, headers={"Range": "bytes=0-1"}) as part:
                assert part.status == 206, path
                assert_guarded(part.headers, "private, no-cache")
        for path in (f"/incidents/{incident + 1}", f"/incidents/{incident}/stills/7.jpg", "/no-such-page"):
            async with browser.get(site.base + path) as missing:
                assert missing.status == 404, path
                assert_guarded(missing.headers)
        async with browser.get(site.base + "/", allow_redirects=False) as home:
            assert home.status == 303
            assert_guarded(home.headers)
    async with aiohttp.ClientSession() as stranger:
        async with stranger.get(f"{site.base}/incidents/{incident}", allow_redirects=False) as sign_in:
            assert sign_in.status == 303 and sign_in.headers["Location"].startswith("/sign-in")
            assert_guarded(sign_in.headers)
        # An alert email's clip link, on the stream port: redirected to the page, with the same headers.
        path = f"/clips/{incident}?exp=1&sig={'0' * 64}"
        link = f"http://127.0.0.1:{site.port}{path}"
        async with stranger.get(link, allow_redirects=False) as moved:
            assert moved.status == 307 and moved.headers["Location"] == site.base + path
            assert_guarded(moved.headers)
        async with stranger.get(link) as refused:  # followed: the forged signature is refused, with the headers
            assert refused.status == 403
            assert_guarded(refused.headers)
