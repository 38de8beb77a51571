"""docs/deploy/haproxy.cfg, run as it ships by Debian's HAProxy in front of two real `vigint serve` nodes
sharing one database, with real agents streaming through it: streams spread over both nodes, and a node
sent SIGTERM drains (503 on /healthz, HAProxy takes it out) before its agents move to the other node."""

import asyncio
import csv
import http.client
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from attacks import ServeProcess, first_answer
from footage import write_video_file
from helpers import REALTIME, add_client, eventually, free_port, hello, start_agent, stop
from prometheus_client.parser import text_string_to_metric_families

from vigint import keys
from vigint.store import Store

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "haproxy.cfg"
CAMERAS = ("door", "till", "yard", "cellar")  # two agents, two cameras each: four streams
BEHIND_HAPROXY = {"VIGINT_SERVER_TRUSTED_PROXIES": "127.0.0.1"}  # HAProxy connects to the nodes from there

NO_HAPROXY = "haproxy is not installed (apt-get install haproxy; .ci/run does)"
pytestmark = [REALTIME, pytest.mark.skipif(shutil.which("haproxy") is None, reason=NO_HAPROXY)]


async def stop_all(agents: list[asyncio.subprocess.Process]) -> str:
    """Stop the agents; check each exits 0; return their logs."""
    logs = ""
    for agent in agents:
        code, err = await stop(agent)
        assert code == 0, err
        logs += err
    return logs


def node_get(node: ServeProcess, path: str) -> tuple[int, str]:
    """GET `path` from the node itself, as Prometheus does: from an address other than the balancer's, whose
    connections the node expects to start with a PROXY header. Return the status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5,
                                            source_address=("127.0.0.2", 0))
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def healthz(node: ServeProcess) -> int:
    return node_get(node, "/healthz")[0]


def streams_on(node: ServeProcess) -> int:
    """Return how many streams the node's /metrics says it holds."""
    text = node_get(node, "/metrics")[1]
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    return int(sum(sample.value for sample in samples if sample.name == "vigint_streams_connected"))


async def node_states(stats_socket: Path) -> dict[str, str]:
    """Return each vigint node's state as HAProxy sees it (UP, DOWN, …), from its stats socket."""
    reader, writer = await asyncio.open_unix_connection(str(stats_socket))
    writer.write(b"show stat\n")
    text = (await reader.read()).decode()
    writer.close()
    rows = csv.DictReader(text.removeprefix("# ").splitlines())
    return {row["svname"]: row["status"] for row in rows if row["pxname"] == "vigint_nodes"
            and row["svname"] not in ("FRONTEND", "BACKEND")}


async def node_down(stats_socket: Path, name: str) -> bool:
    return (await node_states(stats_socket))[name].startswith("DOWN")


async def start_haproxy(folder: Path, nodes: list[ServeProcess],
                        cleanup: AsyncExitStack) -> tuple[subprocess.Popen, int, Path]:
    """Start HAProxy from the shipped file, its addresses given through the environment, to be killed by
    `cleanup`; wait until it sees every node up. Return the process, its port and its stats socket."""
    port = free_port()
    stats = folder / "haproxy.sock"
    env = {**os.environ, "VIGINT_LB_BIND": f"127.0.0.1:{port}", "VIGINT_LB_STATS_SOCKET": str(stats),
           **{f"VIGINT_NODE{number}": f"127.0.0.1:{node.port}" for number, node in enumerate(nodes, 1)}}
    env.setdefault("VIGINT_NODE2", env["VIGINT_NODE1"])  # one node: both server lines name it
    with (folder / "haproxy.log").open("wb") as log:
        haproxy = subprocess.Popen(["haproxy", "-f", str(CONFIG)], env=env, stdout=log, stderr=log)
    cleanup.callback(haproxy.wait)
    cleanup.callback(haproxy.kill)

    async def all_up() -> bool:
        assert haproxy.poll() is None, (folder / "haproxy.log").read_text()
        return stats.exists() and set((await node_states(stats)).values()) == {"UP"}

    await eventually(all_up, timeout=10)
    return haproxy, port, stats


async def balanced(folder: Path, db: Path | str, env: dict[str, str], cleanup: AsyncExitStack
                   ) -> tuple[list[ServeProcess], int, Path, list[asyncio.subprocess.Process]]:
    """A client on `db`; two nodes on it behind HAProxy, and two of the client's agents streaming two cameras
    each through it, all stopped by `cleanup`. Return the nodes, HAProxy's port and stats socket, and the
    agents."""
    async with await Store.open(db) as store:
        _, _, api_key = await add_client(store)
    write_video_file(folder / "camera.mp4", 4)
    nodes = []
    for number in (1, 2):
        nodes.append(node := ServeProcess(folder / f"node{number}", {**env, **BEHIND_HAPROXY}, db=db))
        cleanup.push_async_callback(node.stop)
        await node.start()
    _, port, stats = await start_haproxy(folder, nodes, cleanup)
    agents = []
    for pair in (CAMERAS[:2], CAMERAS[2:]):
        sources = [argument for camera in pair for argument in ("--source", "camera.mp4", "--camera", camera)]
        agents.append(agent := await start_agent(folder, "--api-key", api_key, "--api-url",
                                                 f"ws://127.0.0.1:{port}", "--loop", *sources))
        cleanup.callback(lambda agent=agent: agent.returncode is None and agent.kill())
    return nodes, port, stats, agents


async def spread(nodes: list[ServeProcess]) -> list[int]:
    """Return each node's stream count once all cameras stream, else an empty list."""
    counts = [await asyncio.to_thread(streams_on, node) for node in nodes]
    return counts if sum(counts) == len(CAMERAS) else []


@pytest.mark.slow  # two nodes and HAProxy for 10 s: CI runs it (pytest -m slow)
async def test_haproxy_spreads_streams_and_a_draining_node_hands_its_agents_to_the_other(tmp_path):
    db = tmp_path / "vigint.db"
    # Usage is written only when a node stops (not every 5 s): the rows found after node 1 stopped are
    # its own.
    env = {"VIGINT_SERVER_USAGE_FLUSH_SECONDS": "3600", "VIGINT_STORAGE_DATA_DIR": str(tmp_path / "data")}
    async with AsyncExitStack() as cleanup:
        nodes, port, stats, agents = await balanced(tmp_path, db, env, cleanup)
        first, second = await eventually(lambda: spread(nodes), timeout=20)
        assert first and second  # least connections: both nodes took streams
        with pytest.raises(urllib.error.HTTPError) as private:  # one node's page, not the public's
            await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert private.value.code == 404
        private.value.close()
        with sqlite3.connect(db) as raw:
            assert raw.execute("SELECT count(*) FROM usage").fetchone()[0] == 0

        draining, other = nodes
        signalled = time.monotonic()
        draining.process.send_signal(signal.SIGTERM)
        await eventually(lambda: asyncio.to_thread(lambda: healthz(draining) == 503), timeout=1)
        await eventually(lambda: node_down(stats, "node1"), timeout=5)
        marked_down = time.monotonic() - signalled
        # HAProxy took the node out while it still held its streams: none of them was closed before.
        assert await asyncio.to_thread(streams_on, draining) == first, draining.log()

        await eventually(lambda: asyncio.to_thread(lambda: streams_on(other) == len(CAMERAS)), timeout=10)
        landed = time.monotonic() - signalled
        assert await asyncio.wait_for(draining.process.wait(), 15) == 0, draining.log()
        print(f"\nnode 1 marked down {marked_down:.2f} s after SIGTERM; its {first} streams on node 2 "
              f"{landed:.2f} s after it (drain_seconds 3)")
        assert "Stopped." in draining.log() and "Traceback" not in draining.log()
        with sqlite3.connect(db) as raw:  # written by the drained node as it stopped
            totals = raw.execute("SELECT sum(stream_seconds), sum(bytes_received) FROM usage")
            seconds, received = totals.fetchone()
        assert seconds > 0 and received > 0
        logs = await stop_all(agents)
        # Each of the drained node's streams reconnected once, within a second: none bounced off it (1013).
        delays = [float(delay) for delay in re.findall(r"reconnecting in ([\d.]+) s", logs)]
        assert len(delays) == first and max(delays) <= 1, logs
        assert await other.stop() == 0, other.log()


@pytest.mark.slow  # waits out a node's leases (6 s)
async def test_a_killed_node_s_agents_land_on_the_other_once_its_leases_run_out(tmp_path, postgres_url):
    env = {"VIGINT_SERVER_LEASE_SECONDS": "2", "VIGINT_ALERTS_LINK_SECRET": "b" * 64}
    async with AsyncExitStack() as cleanup:
        nodes, port, stats, agents = await balanced(tmp_path, postgres_url, env, cleanup)
        first, _ = await eventually(lambda: spread(nodes), timeout=20)
        killed, other = nodes
        killed.process.kill()  # no drain, no goodbye: its registry entries stay until their leases run out
        killed_at = time.monotonic()
        await eventually(lambda: asyncio.to_thread(lambda: streams_on(other) == len(CAMERAS)), timeout=20)
        landed = time.monotonic() - killed_at
        print(f"\nnode 1 killed with {first} streams; all {len(CAMERAS)} on node 2 {landed:.2f} s later "
              "(lease_seconds 2)")
        assert await node_down(stats, "node1")
        logs = await stop_all(agents)
        # The moved cameras were refused while the dead node's leases held their names, then welcomed.
        assert "already streaming" in logs, logs


async def test_the_agents_addresses_reach_the_node_through_haproxy_so_a_stranger_s_ban_is_his_alone(tmp_path):
    # Through the balancer every connection comes from 127.0.0.1: without its PROXY header, one stranger's
    # wrong keys would have every agent behind it refused with 4429.
    node = ServeProcess(tmp_path / "node", {**BEHIND_HAPROXY, "VIGINT_SERVER_MAX_AUTH_FAILURES": "3"})
    async with AsyncExitStack() as cleanup:
        cleanup.push_async_callback(node.stop)
        await node.start()
        _, _, api_key = await node.cli.create_client("Acme")
        _, port, _ = await start_haproxy(tmp_path, [node], cleanup)
        through = f"ws://127.0.0.1:{port}/v1/stream"
        stranger = [(await first_answer(through, hello(keys.generate()), "127.0.0.66"))[0] for _ in range(4)]
        assert stranger == [4401, 4401, 4401, 4429]
        assert (await first_answer(through, hello(keys.generate()), "127.0.0.5"))[0] == 4401  # not banned
        assert await first_answer(through, hello(api_key, "door"), "127.0.0.5") == (None, "welcome")
        await eventually(lambda: "camera 'door' connected from 127.0.0.5" in node.log())
