"""A live view on two nodes sharing one PostgreSQL database, whose pages have different host names: the page's
node sends the viewer, with a signed ticket, to the node that receives the camera."""

import time

import aiohttp
from yarl import URL
from footage import make_footage, open_stream, send_video
from helpers import add_client, url
from test_live import read_start, socket_url
from test_pages import signed_in

from vigint.config import AlertSettings, Settings, StorageSettings
from vigint.web.livetickets import ticket

SECRET = "b" * 64  # [alerts] link_secret: the same on every node (it signs the page's cookies and tickets)


async def two_nodes(start, postgres_url, tmp_path):
    """Two nodes: the first at 127.0.0.1, the second's page at `localhost` (a browser keeps their cookies
    apart)."""
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                        alerts=AlertSettings(link_secret=SECRET))
    first, second = [await start(settings, database=postgres_url) for _ in range(2)]
    first.base = f"http://127.0.0.1:{first.page.port}"
    second.base = f"http://localhost:{second.page.port}"
    return first, second


async def test_a_viewer_on_node_2s_page_sees_a_camera_streaming_into_node_1(start, postgres_url, tmp_path):
    first, second = await two_nodes(start, postgres_url, tmp_path)
    client_id, _, key = await add_client(first.store)
    connection, _ = await open_stream(url(first), key, camera="shop")
    await send_video(connection, make_footage(2, gop_seconds=1, width=320, height=180))
    await first.flush_usage()  # its snapshot, with its page's address, as every few seconds
    async with await signed_in(second, client_id) as browser:
        assert not browser.cookie_jar.filter_cookies(URL(first.base))  # signed in on the second's host only
        async with browser.get(f"{second.base}/cameras/shop") as page:
            assert str(page.url) == f"{first.base}/cameras/shop" and page.status == 200
            assert 'id="video"' in await page.text()
        async with browser.get(f"{second.base}/cameras/shop/snapshot.jpg") as snapshot:
            assert snapshot.status == 200 and (await snapshot.read())[:2] == b"\xff\xd8"
        for elsewhere in ("/cameras", "/cameras/shop/settings", "/incidents"):  # the pass opens nothing else
            async with browser.get(f"{first.base}{elsewhere}", allow_redirects=False) as other:
                assert other.status == 303 and other.headers["Location"].startswith("/sign-in")
        async with browser.ws_connect(socket_url(first), origin=first.base) as viewer:
            start_message, media = await read_start(viewer)
            assert start_message["type"] == "start" and media[4:8] == b"ftyp"
            await second.store.revoke_client(client_id)  # the pass ends with the session it came from
            while not viewer.closed:
                await viewer.receive(timeout=3)
            assert viewer.close_code == 4401
        async with browser.get(f"{first.base}/cameras/shop", allow_redirects=False) as ended:
            assert ended.status == 303 and ended.headers["Location"].startswith("/sign-in")
    await connection.close()


async def test_a_forged_expired_or_other_cameras_ticket_opens_nothing(start, postgres_url, tmp_path):
    first, second = await two_nodes(start, postgres_url, tmp_path)
    client_id, _, key = await add_client(first.store)
    connections = [(await open_stream(url(first), key, camera=camera))[0] for camera in ("shop", "yard")]
    for connection in connections:
        await send_video(connection, make_footage(1, gop_seconds=1, width=320, height=180))
    await first.flush_usage()
    async with await signed_in(second, client_id) as browser:
        async with browser.get(f"{second.base}/cameras/shop", allow_redirects=False) as sent:
            assert sent.status == 303
            address = sent.headers["Location"]
    path, given = address.split("?ticket=")
    session = given.split(".")[2]
    forged = given[:-1] + ("0" if given[-1] != "0" else "1")
    expired = ticket(SECRET, client_id, "shop", session, time.time() - 120)
    other_client = ticket(SECRET, client_id + 1, "shop", session, time.time())
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as stranger:
        for bad in (f"{path}?ticket={forged}", f"{path}?ticket={expired}", f"{path}?ticket={other_client}",
                    f"{first.base}/cameras/yard?ticket={given}",
                    f"{first.base}/cameras/yard/live?ticket={given}",
                    f"{first.base}/cameras/yard/snapshot.jpg?ticket={given}"):
            async with stranger.get(bad, allow_redirects=False) as refused:
                assert refused.status == 404, bad
        assert not stranger.cookie_jar.filter_cookies(URL(first.base))
        # the control: the real one, within its minute
        async with stranger.get(f"{path}?ticket={given}") as page:
            assert page.status == 200 and str(page.url) == path
    for connection in connections:
        await connection.close()
