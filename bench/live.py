"""Live-view benchmark: what a camera's live viewers cost the server.

One paced 720p15 2 Mbit/s camera (the test pattern of bench/ingest.py) streams into a real `vigint serve`;
its CPU is measured over `--seconds` with no viewer, then with `--viewers` viewers reading the camera's live
socket (signed in as its client, as the page's player does), in the same run: the difference is what the
viewers cost (one remux for all of them, and a socket write each). Then a viewer whose socket stops reading
is opened: the run reports how long until the server drops it, and its RSS before and after.

    python bench/live.py [--seconds 20] [--viewers 50]
"""

import argparse
import asyncio
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # bench/ingest.py: the paced stream, the camera's video, CPU and RSS readers

from vigint import protocol
from vigint.config import WebSettings
from vigint.store import Store
from vigint.web.access import new_sign_in_link

WARM_UP_SECONDS = 3.0  # the stream open, the viewers started, before the CPU is counted


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(workdir: Path, db: Path, page_port: int) -> subprocess.Popen:
    """Start `vigint serve` with its page on `page_port`; return it once it listens."""
    command = [sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", str(page_port),
               "--db", str(db)]
    server = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env={**os.environ, "VIGINT_WEB_MAX_LIVE_VIEWERS_PER_CLIENT": "1000",
                                              "VIGINT_ALERTS_LINK_SECRET": secrets.token_hex(32)})
    banner = server.stdout.readline() + server.stdout.readline()
    if (listening := re.search(r"127\.0\.0\.1:(\d+)", banner)) is None:
        raise SystemExit(f"vigint serve did not start (run it by hand with --db {db} to see why)")
    server.port = int(listening[1])
    return server


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
    before = ingest.process_cpu(pid)
    began = time.monotonic()
    await asyncio.sleep(seconds)
    return (ingest.process_cpu(pid) - before) / (time.monotonic() - began)


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


async def slow_reader(server, page_port: int, session: aiohttp.ClientSession) -> dict:
    """Open a viewer that stops reading; return how long until it is dropped and the RSS around it."""
    rss_before = ingest.process_rss(server.pid)
    cookie = "; ".join(f"{c.key}={c.value}" for c in session.cookie_jar)
    raw = stalled(page_port, cookie)
    began = time.monotonic()
    await asyncio.sleep(1)
    while ingest.scrape(server.port).get("vigint_live_viewers", 0) > 0 and time.monotonic() - began < 60:
        await asyncio.sleep(0.2)
    dropped = time.monotonic() - began
    raw.close()
    await asyncio.sleep(2)
    return {"dropped_after_s": dropped, "rss_before_mib": rss_before / 2**20,
            "rss_after_mib": ingest.process_rss(server.pid) / 2**20}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--viewers", type=int, default=50)
    args = parser.parse_args()
    video = ingest.camera_video()
    workdir = Path(tempfile.mkdtemp(prefix="vigint-bench-live-"))
    db = workdir / "bench.db"
    [api_key] = await ingest.make_keys(db, 1)
    page_port = free_port()
    base = f"http://127.0.0.1:{page_port}"
    server = serve(workdir, db, page_port)
    try:
        late: list[float] = []
        length = 2 * WARM_UP_SECONDS + 2 * args.seconds + 70
        streaming = asyncio.ensure_future(ingest.paced_stream(f"ws://127.0.0.1:{server.port}{protocol.PATH}",
                                                              api_key, "cam", video, length, late))
        await asyncio.sleep(WARM_UP_SECONDS)
        alone = await cpu_over(server.pid, args.seconds)
        session = await signed_in(db, base)
        received = [0]
        viewers = [asyncio.ensure_future(view(session, base, received)) for _ in range(args.viewers)]
        await asyncio.sleep(WARM_UP_SECONDS)
        counted = ingest.scrape(server.port).get("vigint_live_viewers", 0)
        got = received[0]
        watched = await cpu_over(server.pid, args.seconds)
        rate = (received[0] - got) * 8 / args.seconds / 1e6 / args.viewers
        for task in viewers:
            task.cancel()
        await asyncio.gather(*viewers, return_exceptions=True)
        await asyncio.sleep(1)
        slow = await slow_reader(server, page_port, session)
        await session.close()
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"server CPU, one 720p15 2 Mbit/s camera, no viewer: {alone:.1%} of a core")
    print(f"the same with {int(counted)} live viewers (each received {rate:.2f} Mbit/s): "
          f"{watched:.1%} of a core")
    print(f"{args.viewers} viewers cost: {watched - alone:.1%} of a core "
          f"({(watched - alone) / args.viewers:.2%} each)")
    print(f"a viewer that stopped reading was dropped after {slow['dropped_after_s']:.1f} s; server RSS "
          f"{slow['rss_before_mib']:.1f} MiB before it, {slow['rss_after_mib']:.1f} MiB after")


if __name__ == "__main__":
    asyncio.run(main())
