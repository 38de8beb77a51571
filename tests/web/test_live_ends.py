"""When a live view ends (its browser signed out, its session's time up, its stream ended or changed its
picture), and what is left of it: the time watched, counted; nothing of its session in a log."""

import asyncio
import time

import aiohttp
import pytest
from footage import make_footage, send_video
from helpers import REALTIME, add_client, eventually
from test_live import read_start, socket_url, stream
from test_pages import form_token, signed_in

from vigint.config import AlertSettings, Settings, StorageSettings, WebSettings
from vigint.web.base import SESSIONS
from vigint.web.live import SNAPSHOTS
from vigint.web.stills import MAX_STILLS

SESSION_SECONDS = 4.5  # a session's lifetime here: it ends during the test


async def closed_after(viewer: aiohttp.ClientWebSocketResponse, began: float, timeout: float = 10) -> float:
    """Read the viewer's fragments until its socket closes; return the seconds from `began` (monotonic)."""
    while (message := await viewer.receive(timeout=timeout)).type is aiohttp.WSMsgType.BINARY:
        pass
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
    return time.monotonic() - began


@pytest.mark.slow  # a session's whole lifetime, on SQLite and on PostgreSQL: CI runs it (pytest -m slow)
@REALTIME  # latencies: within a second
async def test_signing_out_and_a_sessions_end_close_its_live_view_within_a_second(start, tmp_path, database):
    web = WebSettings(session_days=SESSION_SECONDS / 86_400)
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"), web=web,
                        alerts=AlertSettings(link_secret="b" * 64))  # a shared database asks for one
    site = await start(settings, database=database)
    site.base = f"http://127.0.0.1:{site.page.port}"
    lifetime = site.page._app[SESSIONS].lifetime
    client_id, _, key = await add_client(site.store)
    connection = await stream(site, key)
    footage = make_footage(12, gop_seconds=1, width=320, height=180)
    leaving = await signed_in(site, client_id)
    staying = await signed_in(site, client_id)
    signed_in_at = time.monotonic()  # its session ends at most `lifetime` after this
    async with leaving, staying, leaving.ws_connect(socket_url(site), origin=site.base) as left, \
            staying.ws_connect(socket_url(site), origin=site.base) as stayed:
        await read_start(left)
        await read_start(stayed)
        sending = asyncio.create_task(send_video(connection, footage, int((time.time() + 5) * 1e6), 1))
        token = await form_token(leaving, f"{site.base}/incidents")
        async with leaving.post(f"{site.base}/sign-out", data={"csrf": token}, allow_redirects=False) as out:
            assert out.status == 303
        assert await closed_after(left, time.monotonic()) < 1.0 and left.close_code == 4401
        # the other browser's session goes on until its time is up (no database change tells of that)
        assert (await stayed.receive(timeout=5)).type is aiohttp.WSMsgType.BINARY
        ended = await closed_after(stayed, signed_in_at)
        assert lifetime - 1 < ended < lifetime + 1.0 and stayed.close_code == 4401, (ended, lifetime)
    sending.cancel()
    await connection.close()


async def test_the_time_watched_is_counted_when_the_stream_ends_and_no_log_holds_the_session(start, tmp_path):
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"))
    server = await start(settings, usage_flush_seconds=3600)  # counted only when the test flushes
    server.base = f"http://127.0.0.1:{server.page.port}"
    client_id, key_id, key = await add_client(server.store)
    connection = await stream(server, key)
    async with await signed_in(server, client_id) as browser:
        began = time.monotonic()
        async with browser.ws_connect(socket_url(server), origin=server.base) as viewer:
            await read_start(viewer)
            [feed] = server.page.live_views._feeds.values()
            [watching] = feed.viewers
            cookie = next(iter(browser.cookie_jar)).value
            assert cookie and cookie not in repr(watching) and cookie.split(".")[0] not in repr(watching)
            await asyncio.sleep(1)
            await connection.close()  # the camera goes away: its viewer is told so
            watched = await closed_after(viewer, began)
            assert viewer.close_code == 4404
    await server.flush_usage()
    [row] = await server.store.usage_report(client_id, None, None)
    assert row.key_id == key_id and abs(row.live_view_seconds - watched) < 0.5, (row, watched)


async def test_snapshots_of_cameras_that_do_not_exist_push_out_no_real_cameras_snapshot(site):
    client_id, _, key = await add_client(site.store)
    connection = await stream(site, key)
    stills = site.page._app[SNAPSHOTS]
    async with await signed_in(site, client_id) as browser:
        async with browser.get(f"{site.base}/cameras/shop/snapshot.jpg") as snapshot:
            assert snapshot.status == 200

        async def junk(number: int) -> int:
            async with browser.get(f"{site.base}/cameras/junk{number}/snapshot.jpg") as answer:
                return answer.status

        for first in range(0, MAX_STILLS + 8, 8):
            assert set(await asyncio.gather(*(junk(n) for n in range(first, first + 8)))) == {404}
        async with browser.get(f"{site.base}/cameras/shop/snapshot.jpg") as snapshot:
            assert snapshot.status == 200 and (await snapshot.read())[:2] == b"\xff\xd8"
    assert stills.decodes == 1  # the real camera's was still kept
    await connection.close()


async def test_a_camera_changing_its_resolution_ends_its_live_view_and_the_next_gets_its_new_picture(site):
    client_id, _, key = await add_client(site.store)
    connection = await stream(site, key)
    async with await signed_in(site, client_id) as browser:
        async with browser.ws_connect(socket_url(site), origin=site.base) as viewer:
            _, before = await read_start(viewer)
            began = time.monotonic()
            larger = make_footage(2, gop_seconds=1, width=480, height=270)
            await send_video(connection, larger, int((time.time() + 10) * 1e6))
            assert await closed_after(viewer, began) < 2.0 and viewer.close_code == 4404
        await eventually(lambda: site.page.live_views.viewers == 0)
        async with browser.ws_connect(socket_url(site), origin=site.base) as again:
            _, after = await read_start(again)
    # the new init segment declares the new size (tkhd's width and height, 16.16 fixed point)
    assert (480 << 16).to_bytes(4, "big") + (270 << 16).to_bytes(4, "big") in after
    assert (480 << 16).to_bytes(4, "big") + (270 << 16).to_bytes(4, "big") not in before
    await connection.close()
