"""Live-view benchmark: what a camera's live viewers cost the server.

One paced 720p15 2 Mbit/s camera (bench/harness.py's busy test pattern) streams into a real `vigint serve`
(harness.serving); its CPU is measured over `--seconds` with no viewer, then with `--viewers` viewers
reading the camera's live socket (signed in as its client, as the page's player does), in the same run: the
difference is what the viewers cost (one remux for all of them, and a socket write each). Then `--drops`
viewers, one after the other, open the socket and stop reading while keeping their connection open: the run
reports how long until the server drops each, and the server's RSS before the first, after the first and
after the last (2 s after each drop). The server runs with `MALLOC_ARENA_MAX=2`, as the deployed unit
(scripts/vigint-serve.service); `--arena-max 0` leaves glibc's default (one arena per thread, up to 8 per
core), to compare what the allocator keeps.

    python bench/live.py [--seconds 20] [--viewers 50] [--drops 5] [--arena-max 2]
"""

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # bench/harness.py: the camera's video, the server, paced streams, CPU and RSS readers

from vigint import protocol
from vigint.config import WebSettings
from vigint.store import Store
from vigint.web.access import new_sign_in_link

WARM_UP_SECONDS = 3.0  # the stream open, the viewers started, before the CPU is counted
SETTLE_SECONDS = 2.0  # after a drop: the dropped viewer's last work done before RSS is read
MAX_DROP_SECONDS = 60.0


async def signed_in(db: Path, base: str) -> aiohttp.ClientSession:
    """A browser session signed in as the bench's client."""
    async with await Store.open(db) as store:
        [client] = await store.list_clients()
        link = await new_sign_in_link(store, WebSettings(), base, client.id)
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(link, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    return session


async def view(session: aiohttp.ClientSession, base: str, received: list[int]) -> None:
    """Read the camera's live socket until cancelled, counting its bytes."""
    address = base.replace("http://", "ws://") + "/cameras/cam/live"
    async with session.ws_connect(address, origin=base, max_msg_size=0) as viewer:
        async for message in viewer:
            received[0] += len(message.data)


async def cpu_over(pid: int, seconds: float) -> float:
    """Return the server's CPU seconds per second over `seconds`."""
    before = harness.process_cpu(pid)
    began = time.monotonic()
    await asyncio.sleep(seconds)
    return (harness.process_cpu(pid) - before) / (time.monotonic() - began)


def stalled(port: int, cookie: str) -> socket.socket:
    """Open the live socket with a small receive buffer and never read it."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    raw.sendall(f"GET /cameras/cam/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                f"Cookie: {cookie}\r\n\r\n".encode())
    return raw


async def slow_readers(served: harness.Serving, session: aiohttp.ClientSession, drops: int) -> dict:
    """Open `drops` viewers that stop reading, one after the other, each kept open until the server dropped
    it; return the longest wait for a drop and the RSS before, after the first and after the last."""
    cookie = "; ".join(f"{c.key}={c.value}" for c in session.cookie_jar)
    rss = [harness.process_rss(served.pid)]
    waits = []
    for _ in range(drops):
        raw = stalled(served.page_port, cookie)
        began = time.monotonic()
        await asyncio.sleep(1)
        while (harness.scrape(served.port).get("vigint_live_viewers", 0) > 0
               and time.monotonic() - began < MAX_DROP_SECONDS):
            await asyncio.sleep(0.2)
        waits.append(time.monotonic() - began)
        await asyncio.sleep(SETTLE_SECONDS)  # its reader still holds its end open
        rss.append(harness.process_rss(served.pid))
        raw.close()
    return {"longest_drop_s": max(waits), "rss_mib": [rss[0] / 2**20, rss[1] / 2**20, rss[-1] / 2**20]}


async def measure(args: argparse.Namespace, served: harness.Serving, db: Path, api_key: str, video) -> dict:
    """Run the camera, alone then watched, then the readers that stop; return what was measured."""
    base = f"http://127.0.0.1:{served.page_port}"
    late: list[float] = []
    length = 2 * WARM_UP_SECONDS + 2 * args.seconds + args.drops * (MAX_DROP_SECONDS + SETTLE_SECONDS)
    streaming = asyncio.ensure_future(harness.paced_stream(f"ws://127.0.0.1:{served.port}{protocol.PATH}",
                                                           api_key, "cam", video, length, late))
    try:
        await asyncio.sleep(WARM_UP_SECONDS)
        alone = await cpu_over(served.pid, args.seconds)
        session = await signed_in(db, base)
        received = [0]
        viewers = [asyncio.ensure_future(view(session, base, received)) for _ in range(args.viewers)]
        await asyncio.sleep(WARM_UP_SECONDS)
        counted = harness.scrape(served.port).get("vigint_live_viewers", 0)
        got = received[0]
        watched = await cpu_over(served.pid, args.seconds)
        rate = (received[0] - got) * 8 / args.seconds / 1e6 / args.viewers
        for task in viewers:
            task.cancel()
        await asyncio.gather(*viewers, return_exceptions=True)
        await asyncio.sleep(SETTLE_SECONDS)
        slow = await slow_readers(served, session, args.drops)
        await session.close()
    finally:
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
    return {"alone": alone, "watched": watched, "counted": int(counted), "rate": rate, **slow}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--drops", type=int, default=5)
    parser.add_argument("--arena-max", type=int, default=2, help="MALLOC_ARENA_MAX; 0: glibc's default")
    args = parser.parse_args()
    video = harness.camera_video()
    workdir = Path(tempfile.mkdtemp(prefix="vigint-bench-live-"))
    db = workdir / "bench.db"
    [api_key] = await harness.make_keys(db, 1)
    environment = {"VIGINT_WEB_MAX_LIVE_VIEWERS_PER_CLIENT": "1000",
                   "VIGINT_WEB_MAX_LIVE_VIEWERS": str(max(100, args.viewers + 1))}
    os.environ.pop("MALLOC_ARENA_MAX", None)
    if args.arena_max:
        environment["MALLOC_ARENA_MAX"] = str(args.arena_max)
    with harness.serving(workdir, db, settings=environment) as served:
        result = await measure(args, served, db, api_key, video)
    print(f"server CPU, one 720p15 2 Mbit/s camera, no viewer: {result['alone']:.1%} of a core")
    print(f"the same with {result['counted']} live viewers (each received {result['rate']:.2f} Mbit/s): "
          f"{result['watched']:.1%} of a core")
    cost = result["watched"] - result["alone"]
    print(f"{args.viewers} viewers cost: {cost:.1%} of a core ({cost / args.viewers:.2%} each)")
    before, first, last = result["rss_mib"]
    print(f"{args.drops} viewers that stopped reading (connection kept open), one after the other: each "
          f"dropped within {result['longest_drop_s']:.1f} s; server RSS (MALLOC_ARENA_MAX="
          f"{args.arena_max or 'unset'}) {before:.1f} MiB before, {first:.1f} after the first drop, "
          f"{last:.1f} after the last")


if __name__ == "__main__":
    asyncio.run(main())
