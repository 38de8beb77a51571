"""One customer opening and closing its own live socket in a loop, on a camera whose GOP is long, while
another customer watches: the watcher's view goes on at real time (the live view review's churn); and a GOP
too long to remux at open."""

import asyncio
import sys
import time

import aiohttp
import pytest
from footage import make_footage, send_video
from helpers import REALTIME, add_client, eventually, top_level_boxes
from test_live import read_start, socket_url, stream
from test_pages import signed_in

from vigint.web.livefeed import MAX_OPEN_PACKETS

# The attacker's browser, in its own process (as it would be): plain GETs of the socket's address (answered
# 400) and WebSocket handshakes closed at once, two of each at a time, for `seconds`.
CHURN = """
import asyncio, sys, time, aiohttp

async def main(base, cookie, path, seconds):
    end = time.monotonic() + seconds
    async with aiohttp.ClientSession(headers={"Cookie": cookie}) as browser:
        async def plain():
            while time.monotonic() < end:
                async with browser.get(base + path) as answer:
                    await answer.read()

        async def sockets():
            while time.monotonic() < end:
                socket = await browser.ws_connect(base.replace("http", "ws") + path, origin=base)
                await socket.close()

        await asyncio.gather(plain(), plain(), sockets(), sockets())

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
"""
CHURN_SECONDS = 4.0


@pytest.mark.slow  # 7 s of real time on the serial realtime worker (CI runs pytest -m slow)
@REALTIME  # frames received at real time, against a churn in another process
async def test_a_client_churning_its_own_live_socket_leaves_another_clients_view_at_real_time(site):
    attacker_id, _, attacker_key = await add_client(site.store, "a@a.test", "Attacker")
    victim_id, _, victim_key = await add_client(site.store)
    # the attacker's camera: one GOP of nearly MAX_OPEN_PACKETS frames at 60 frame/s, all in its ring (as
    # long as a feed remuxes at open)
    attacker = await stream(site, attacker_key, camera="cam", seconds=0.1)
    long_gop = make_footage((MAX_OPEN_PACKETS - 30) / 60, gop_seconds=100, width=320, height=180, fps=60)
    await send_video(attacker, long_gop, int((time.time() - 10) * 1e6))
    ring = site.page.live_views._sources
    await eventually(lambda: len(ring.find(attacker_id, "cam").newest_gop()) >= MAX_OPEN_PACKETS - 30,
                     timeout=20)
    victim = await stream(site, victim_key, seconds=1)
    frames = make_footage(CHURN_SECONDS + 3, gop_seconds=1, width=320, height=180)
    async with await signed_in(site, victim_id) as watcher, await signed_in(site, attacker_id) as browser:
        cookie = "; ".join(f"{c.key}={c.value}" for c in browser.cookie_jar)
        async with watcher.ws_connect(socket_url(site), origin=site.base) as view:
            await read_start(view)
            sending = asyncio.create_task(send_video(victim, frames, int((time.time() + 5) * 1e6), 1))
            churn = await asyncio.create_subprocess_exec(sys.executable, "-c", CHURN, site.base, cookie,
                                                         "/cameras/cam/live", str(CHURN_SECONDS))
            began = time.monotonic()
            arrivals = [began]
            while arrivals[-1] - began < CHURN_SECONDS:
                message = await view.receive(timeout=5)
                assert message.type is aiohttp.WSMsgType.BINARY, message
                arrivals.append(time.monotonic())
            assert await churn.wait() == 0
            sending.cancel()
    frozen = max(later - earlier for earlier, later in zip(arrivals, arrivals[1:]))
    expected = CHURN_SECONDS * 15
    assert len(arrivals) - 1 >= 0.9 * expected and frozen < 1.0, (len(arrivals) - 1, expected, frozen)
    await attacker.close()
    await victim.close()


async def test_a_gop_too_long_to_remux_at_open_is_watched_from_the_next_keyframe(site):
    client_id, _, key = await add_client(site.store)
    connection = await stream(site, key, seconds=0.1)
    too_long = make_footage((MAX_OPEN_PACKETS + 30) / 60, gop_seconds=100, width=320, height=180, fps=60)
    at = int((time.time() - 20) * 1e6)
    await send_video(connection, too_long, at)
    ring = site.page.live_views._sources
    await eventually(lambda: len(ring.find(client_id, "shop").newest_gop()) > MAX_OPEN_PACKETS, timeout=20)
    async with await signed_in(site, client_id) as browser:
        async with browser.ws_connect(socket_url(site), origin=site.base) as viewer:
            with pytest.raises(TimeoutError):  # nothing yet: no remux of the long GOP
                await viewer.receive(timeout=0.5)
            await send_video(connection, make_footage(1, gop_seconds=1, width=320, height=180, fps=60),
                             at + 20_000_000)
            start, media = await read_start(viewer)
    assert start["codec"].startswith("avc1.") and top_level_boxes(media)[:2] == ["ftyp", "moov"]
    assert 50 < top_level_boxes(media).count("moof") < 60  # the new GOP's frames, not the long one's
    await connection.close()
