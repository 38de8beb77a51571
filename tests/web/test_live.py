"""A camera's live view over the page's socket, read as a player would (aiohttp's client): what it sends, who
may open it, and when it ends."""

import asyncio
import gc
import json
import socket
import time
from contextlib import asynccontextmanager
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web_ws as web_responses
from footage import make_footage, open_stream, send_video
from helpers import REALTIME, add_client, eventually, top_level_boxes, url
from test_pages import signed_in

from vigint.analysis.modes import Mode
from vigint.billing.invoices import Usage, price
from vigint.config import BillingSettings, Settings, StorageSettings, WebSettings
from vigint.store import Editor
from vigint.web.live import SNAPSHOTS
from vigint.web.livefeed import Viewer


async def stream(server, key: str, camera: str = "shop", seconds: float = 4, **options):
    """Open a stream of real H.264 as `camera` and send `seconds` of it at once; return the connection, left
    open."""
    connection, _ = await open_stream(url(server), key, camera=camera)
    await send_video(connection, make_footage(seconds, gop_seconds=1, width=320, height=180, **options))
    return connection


def socket_url(server, camera: str = "shop") -> str:
    return f"ws://127.0.0.1:{server.page.port}/cameras/{camera}/live"


async def read_start(viewer: aiohttp.ClientWebSocketResponse) -> tuple[dict, bytes]:
    """Return the start message and what follows it (init segment and fragments) until none comes for a
    moment."""
    start = json.loads((await viewer.receive(timeout=5)).data)
    media = b""
    try:
        while True:
            message = await viewer.receive(timeout=0.5)
            if message.type is not aiohttp.WSMsgType.BINARY:
                break
            media += message.data
    except TimeoutError:
        pass
    return start, media


async def test_a_viewer_gets_the_cameras_fragments_from_its_newest_keyframe_as_fragmented_mp4(site):
    client_id, _, key = await add_client(site.store)
    connection = await stream(site, key)
    async with await signed_in(site, client_id) as browser:
        async with browser.get(f"{site.base}/cameras/shop") as page:
            assert page.status == 200
            text = await page.text()
            policy = page.headers["Content-Security-Policy"]
        assert 'id="video"' in text and "/cameras/shop/snapshot.jpg" in text
        assert "connect-src 'self'" in policy and "script-src 'self'" in policy and "'unsafe-inline'" not in \
            policy.split("style-src")[0]
        async with browser.ws_connect(socket_url(site), origin=site.base) as viewer:
            start, media = await read_start(viewer)
            assert start["codec"].startswith("avc1.64") and start["offset"] == pytest.approx(3.0, abs=0.01)
            boxes = top_level_boxes(media)
            # the newest keyframe's GOP (1 s of 15 frame/s, the last one held until the next packet): a frame
            # a fragment
            assert boxes[:2] == ["ftyp", "moov"] and boxes.count("moof") == 14 and boxes.count("mdat") == 14
            assert site.page.live_views.viewers == 1
            await connection.send(b"")  # nothing: the next real packet completes one more fragment
            await send_video(connection, make_footage(1, gop_seconds=1, width=320, height=180),
                             int((time.time() + 10) * 1e6))
            more = await viewer.receive(timeout=5)
            assert more.type is aiohttp.WSMsgType.BINARY and top_level_boxes(more.data) == ["moof", "mdat"]
        await eventually(lambda: site.page.live_views.viewers == 0)
    await connection.close()


async def test_a_disarmed_cameras_live_view_plays_and_costs_no_decode(site):
    client_id, _, key = await add_client(site.store)
    await site.store.set_camera(client_id, "shop", Editor.OPERATOR, schedule="never")
    connection = await stream(site, key)
    await eventually(lambda: site.streams.of_client(client_id)["shop"].analysis.mode is Mode.DISARMED)
    decoded = site.metrics.frames_decoded
    async with await signed_in(site, client_id) as browser:
        async with browser.ws_connect(socket_url(site), origin=site.base) as viewer:
            _, media = await read_start(viewer)
            await send_video(connection, make_footage(1, gop_seconds=1, width=320, height=180),
                             int((time.time() + 10) * 1e6))
            more = await viewer.receive(timeout=5)
    boxes = top_level_boxes(media)
    assert boxes[:2] == ["ftyp", "moov"] and boxes.count("moof") == 14  # its newest GOP, a frame a fragment
    assert more.type is aiohttp.WSMsgType.BINARY and top_level_boxes(more.data) == ["moof", "mdat"]
    assert site.metrics.frames_decoded == decoded  # the view is a remux: the disarmed camera decodes nothing
    await connection.close()


async def test_another_client_gets_404_for_the_live_page_snapshot_and_socket_and_no_byte_of_video(site):
    owner_id, _, key = await add_client(site.store)
    other_id, _, _ = await add_client(site.store, "b@b.test", "Beta")
    connection = await stream(site, key)
    async with await signed_in(site, owner_id) as owner, await signed_in(site, other_id) as other:
        async with owner.get(f"{site.base}/cameras/shop/snapshot.jpg") as snapshot:
            assert snapshot.status == 200 and (await snapshot.read())[:2] == b"\xff\xd8"
        for path in ("/cameras/shop", "/cameras/shop/snapshot.jpg"):
            async with other.get(f"{site.base}{path}") as answer:
                assert answer.status == 404 and b"\x00\x00\x00\x01" not in await answer.read()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await other.ws_connect(socket_url(site), origin=site.base)
        assert refused.value.status == 404
        # another site's page, in the owner's browser
        with pytest.raises(aiohttp.WSServerHandshakeError) as elsewhere:
            await owner.ws_connect(socket_url(site), origin="http://attacker.test")
        assert elsewhere.value.status == 403
    assert site.page.live_views.viewers == 0 and site.page._app[SNAPSHOTS].decodes == 1
    await connection.close()


@REALTIME  # a latency: within a second
async def test_revoking_the_client_closes_its_live_views_within_a_second(site):
    client_id, _, key = await add_client(site.store)
    connection = await stream(site, key)
    async with await signed_in(site, client_id) as browser:
        async with browser.ws_connect(socket_url(site), origin=site.base) as viewer:
            await read_start(viewer)
            await site.store.revoke_client(client_id)
            revoked = time.monotonic()
            while (message := await viewer.receive(timeout=5)).type is aiohttp.WSMsgType.BINARY:
                pass
            closed = time.monotonic() - revoked
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
            assert closed < 1.0 and viewer.close_code in (4401, 4404), (closed, viewer.close_code)
    assert site.page.live_views.viewers == 0
    await connection.close()


@REALTIME  # streams at 4× real time for seconds
async def test_a_viewer_that_stops_reading_is_dropped_and_the_others_go_on(start, tmp_path):
    async with a_stalled_viewer(start, tmp_path) as (server, connection, browser):
        views = server.page.live_views
        async with browser.ws_connect(socket_url(server), origin=server.base) as reader:
            await read_start(reader)
            assert views.viewers == 2
            footage = make_footage(20, gop_seconds=1, width=320, height=180, noise=12)  # the same SPS
            began = time.monotonic()
            sending = asyncio.create_task(send_video(connection, footage, int((time.time() + 5) * 1e6), 4))
            await eventually(lambda: views.viewers == 1, timeout=8)
            dropped = time.monotonic() - began
            message = await reader.receive(timeout=5)  # the reader that reads goes on
            assert message.type is aiohttp.WSMsgType.BINARY
            sending.cancel()
    assert dropped < 5, dropped


async def test_a_dropped_viewer_leaves_nothing_queued_or_buffered_behind(start, tmp_path):
    """Its queue, its socket's response and the bytes its transport still had to send all go within a couple
    of seconds, while its reader keeps the connection open without reading: what RSS keeps afterwards is
    the allocator's, not the server's."""
    async with a_stalled_viewer(start, tmp_path) as (server, connection, _):
        views = server.page.live_views
        assert views.viewers == 1 and len(alive(Viewer)) == 1
        footage = make_footage(20, gop_seconds=1, width=480, height=270, noise=12)
        sending = asyncio.create_task(send_video(connection, footage, int((time.time() + 5) * 1e6), 4))
        await eventually(lambda: views.viewers == 0, timeout=8)
        await eventually(lambda: not alive(Viewer) and not alive(web_responses.WebSocketResponse), timeout=3)
        assert sum(transport.get_write_buffer_size() for transport in alive(asyncio.WriteTransport)) == 0
        sending.cancel()


@asynccontextmanager
async def a_stalled_viewer(start, tmp_path):
    """Yield a server with a client's camera streaming, the camera's connection and the client's signed-in
    browser, while another live socket of the client's stopped reading (a queue held 1 s at most)."""
    web = WebSettings(max_live_queue_bytes=1024 * 1024, max_live_queue_seconds=1)
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"), web=web))
    server.base = f"http://127.0.0.1:{server.page.port}"
    client_id, _, key = await add_client(server.store)
    connection = await stream(server, key, seconds=1)
    async with await signed_in(server, client_id) as browser:
        cookie = "; ".join(f"{c.key}={c.value}" for c in browser.cookie_jar)
        stalled = await asyncio.to_thread(stalled_viewer, server.page.port, cookie)
        try:
            yield server, connection, browser
        finally:
            stalled.close()
    await connection.close()


def alive(kind: type) -> list:
    """The objects of `kind` this process still holds, once what no one refers to is collected."""
    gc.collect()
    return [thing for thing in gc.get_objects() if isinstance(thing, kind)]


def stalled_viewer(port: int, cookie: str) -> socket.socket:
    """Open the live socket with a tiny receive buffer, then never read from it."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    raw.sendall(f"GET /cameras/shop/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                f"Cookie: {cookie}\r\n\r\n".encode())
    assert raw.recv(12) == b"HTTP/1.1 101"
    return raw


async def test_viewers_past_the_clients_cap_are_told_so_and_metrics_count_the_nodes_viewers(start, tmp_path):
    web = WebSettings(max_live_viewers_per_client=1, max_live_viewers=2)
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"), web=web))
    server.base = f"http://127.0.0.1:{server.page.port}"
    first_id, _, first_key = await add_client(server.store)
    second_id, _, second_key = await add_client(server.store, "b@b.test", "Beta")
    third_id, _, third_key = await add_client(server.store, "c@c.test", "Gamma")
    connections = [await stream(server, key) for key in (first_key, second_key, third_key)]
    metrics = f"http://127.0.0.1:{server.port}/metrics"
    async with await signed_in(server, first_id) as first, await signed_in(server, second_id) as second, \
            await signed_in(server, third_id) as third:
        async with first.ws_connect(socket_url(server), origin=server.base) as viewer:
            await read_start(viewer)
            async with first.get(f"{server.base}/cameras/shop") as page:  # a second tab of the same client
                assert page.status == 429 and "Too many live views of your cameras" in await page.text()
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await first.ws_connect(socket_url(server), origin=server.base)
            assert refused.value.status == 429
            async with second.ws_connect(socket_url(server), origin=server.base) as other:
                await read_start(other)
                async with first.get(metrics) as answer:
                    assert "vigint_live_viewers 2.0" in await answer.text()
                async with third.get(f"{server.base}/cameras/shop") as page:  # the node is full
                    assert page.status == 429 and "as many live views as it can" in await page.text()
    for connection in connections:
        await connection.close()


async def test_live_view_minutes_are_counted_in_usage_per_key_and_not_priced_by_default(site):
    client_id, key_id, key = await add_client(site.store)
    connection = await stream(site, key)
    await asyncio.sleep(1)  # the stream's time before anyone watches is no one's live view
    async with await signed_in(site, client_id) as browser:
        began = time.monotonic()
        async with browser.ws_connect(socket_url(site), origin=site.base) as first, \
                browser.ws_connect(socket_url(site), origin=site.base) as second:
            await read_start(first)
            await read_start(second)
        watched = time.monotonic() - began
    await eventually(lambda: site.page.live_views.viewers == 0)
    await site.flush_usage()
    [row] = await site.store.usage_report(client_id, None, None)
    assert row.key_id == key_id and abs(row.live_view_seconds - 2 * watched) < 0.3, (row, watched)
    await connection.close()
    hours = Usage(Decimal(0), 0, 0, 0, 0, live_view_seconds=Decimal(7200))
    assert price(hours, BillingSettings()) == ()  # not priced unless the operator says so
    [line] = price(hours, BillingSettings(price_per_live_hour=Decimal("0.5")))
    assert (line.description, line.quantity, line.amount) == ("Live view", Decimal("2.00"), Decimal("1.00"))
