"""The page's port under a flood of idle sockets: agents, incidents and evidence never pay for it.

A real `vigint serve` under `ulimit -n 1024`; 1,100 sockets to the page's port that never send a byte, opened
while another client's camera streams, then a new agent and an incident's clip and stills.
"""

import asyncio
import json
import re
import resource
import socket
import time

import pytest
from attacks import HealthyStream, ServeProcess, connect_from, open_idle_sockets
from footage import make_h264
from helpers import REALTIME, eventually, hello

from vigint.config import Settings, StorageSettings, WebSettings
from vigint.incidents.storage import still_name

pytestmark = REALTIME

FLOOD_ENV = {
    "VIGINT_SERVER_USAGE_FLUSH_SECONDS": "0.2",
    # The moving square makes an incident with a clip within seconds.
    "VIGINT_MOTION_MIN_MOTION_SECONDS": "0.5",
    "VIGINT_MOTION_PRE_ROLL_SECONDS": "1",
    "VIGINT_MOTION_POST_ROLL_SECONDS": "1",
    "VIGINT_BUFFERS_LONG_BUFFER_SECONDS": "3",
    "VIGINT_WEB_HEADER_TIMEOUT_SECONDS": "60",  # the flood lasts the whole test: only the caps can help
}
# Caps far above what 1024 descriptors hold: only the reserve of descriptors stands between the flood and evidence.
NO_CAPS = {"VIGINT_WEB_MAX_IDLE_CONNECTIONS": "100000", "VIGINT_WEB_MAX_IDLE_CONNECTIONS_PER_ADDRESS": "100000"}
PAGE = re.compile(r"page\s+http://127\.0\.0\.1:(\d+)/")


def raise_own_open_file_limit() -> None:
    """This test process holds the 1,100 sockets' other ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def welcomed_within(url: str, api_key: str, camera: str) -> tuple[dict, float]:
    began = time.monotonic()
    connection = await connect_from(url, "127.0.2.1")
    try:
        await connection.send(hello(api_key, camera))
        return json.loads(await asyncio.wait_for(connection.recv(), 10)), time.monotonic() - began
    finally:
        await connection.close()


async def recorded_incident(serve: ServeProcess, client_id: int) -> dict | None:
    """Return the client's first incident once its clip and first still are on disk (it goes on while the camera
    sees motion)."""
    for incident in await serve.cli.json("incidents", "list", "--client-id", str(client_id)):
        clips = serve.folder / "data"
        still = clips / still_name(client_id, incident["id"], 0)
        if incident["clip"] and still.is_file() and still.stat().st_size:
            clip = clips / incident["clip"]
            return incident if clip.is_file() and clip.stat().st_size else None
    return None


@pytest.mark.slow  # 6 s of a flood on the serial realtime worker (CI runs pytest -m slow)
@pytest.mark.parametrize("env", [{}, NO_CAPS], ids=["caps", "reserve"])
async def test_1100_idle_page_sockets_cost_no_agent_and_no_evidence(tmp_path, env):
    raise_own_open_file_limit()
    serve = await ServeProcess(tmp_path, {**FLOOD_ENV, **env}, nofile=1024).start()
    try:
        page_port = int(PAGE.search(serve.log())[1])
        watched_id, _, watched_key = await serve.cli.create_client("Watched")
        _, _, newcomer_key = await serve.cli.create_client("Newcomer")
        sources = ["127.0.0.1"] * 20 + ["127.0.0.2"] * 100 + [f"127.0.0.{3 + i % 198}" for i in range(980)]
        sockets = await open_idle_sockets(page_port, sources)
        try:
            camera = await asyncio.to_thread(HealthyStream(serve.url, watched_key, "yard", make_h264(4)).start)
            try:
                welcome, took = await welcomed_within(serve.url, newcomer_key, "door")
                incident = await eventually(lambda: recorded_incident(serve, watched_id), timeout=30,
                                            interval=0.5)
            except AssertionError:
                listed = await serve.cli.json("incidents", "list")
                files = sorted(str(path) for path in (serve.folder / "data").rglob("*") if path.is_file())
                raise AssertionError(f"no clip and still: {listed} {files}\n{serve.log()[-3000:]}") from None
            finally:
                await asyncio.to_thread(camera.stop)
        finally:
            for sock in sockets:
                sock.close()
        assert welcome["type"] == "welcome" and took < 1.0, f"welcomed after {took:.2f} s"
        assert camera.error is None, f"the streaming camera broke during the flood: {camera.error!r}"
        assert incident["clip"]
    finally:
        assert await serve.stop() == 0
    log = serve.log()
    assert "Too many open files" not in log and "Traceback" not in log, log[-3000:]


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


async def test_idle_and_dripping_page_sockets_are_closed_within_the_header_timeout(start, tmp_path):
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"), web=WebSettings(header_timeout_seconds=1))
    server = await start(settings)
    raise_own_open_file_limit()
    began = time.monotonic()
    idle = await open_idle_sockets(server.page.port, ["127.0.3.1"] * 10)
    dripping = await open_idle_sockets(server.page.port, ["127.0.3.2"] * 5)
    try:
        for sock in dripping:  # a request line and one header, never finished
            sock.send(b"GET /sign-in HTTP/1.1\r\nHost: x\r\n")
        await eventually(lambda: all(closed_by_peer(sock) for sock in idle + dripping), timeout=5,
                         interval=0.05)
        took = time.monotonic() - began
    finally:
        for sock in idle + dripping:
            sock.close()
    assert took < 1.0 + 1.0, f"idle sockets were closed after {took:.1f} s"


async def test_one_address_holds_at_most_its_share_and_a_browser_elsewhere_still_gets_the_page(start, tmp_path):
    web = WebSettings(max_idle_connections_per_address=8, max_idle_connections=20)
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"), web=web))
    raise_own_open_file_limit()
    crowd = await open_idle_sockets(server.page.port, ["127.0.4.1"] * 50)
    others = await open_idle_sockets(server.page.port, [f"127.0.5.{i}" for i in range(1, 40)])
    try:
        await asyncio.sleep(0.2)  # let the refusals arrive
        assert sum(not closed_by_peer(sock) for sock in crowd) <= 8
        assert sum(not closed_by_peer(sock) for sock in crowd + others) <= 20
        reader, writer = await asyncio.open_connection("127.0.0.1", server.page.port, local_addr=("127.0.6.1", 0))
        writer.write(b"GET /sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
    finally:
        for sock in crowd + others:
            sock.close()
    assert status.startswith(b"HTTP/1.1 200"), status
