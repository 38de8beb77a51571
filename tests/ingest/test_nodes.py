"""Several nodes, one service: two real servers on one real PostgreSQL database, as behind a load balancer."""

import asyncio
import dataclasses
import json
import sys
import time
import urllib.request
from contextlib import asynccontextmanager

import pytest
from footage import make_h264, make_scene, open_stream, send_video
from helpers import REALTIME, add_client, eventually, hello, link_in, refused, run_vigint, url
from websockets.exceptions import ConnectionClosed

from vigint.config import AlertSettings, EmailSettings, MotionSettings, Settings, StorageSettings
from vigint.errors import ConfigError

SECRET = "a" * 64  # [alerts] link_secret: the same on every node


@asynccontextmanager
async def registry_locked(database: str):
    """Hold the stream registry's table locked from another connection for the block."""
    import asyncpg

    locker = await asyncpg.connect(database)
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE live_streams IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await locker.close()


@pytest.fixture
async def nodes(start, postgres_url, tmp_path):
    """Two servers (nodes) sharing one PostgreSQL database."""
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                        alerts=AlertSettings(link_secret=SECRET))
    return [await start(settings, database=postgres_url, max_streams_per_client=3) for _ in range(2)]


async def test_camera_names_and_the_stream_limit_hold_across_nodes(nodes, postgres_url, tmp_path):
    a, b = nodes
    _, _, api_key = await add_client(a.store)
    door, _ = await open_stream(url(a), api_key, "door")
    assert await refused(b, hello(api_key, "door")) == (4403, "camera 'door' is already streaming")
    yard, _ = await open_stream(url(b), api_key, "yard")
    till, _ = await open_stream(url(a), api_key, "till")
    assert await refused(b, hello(api_key, "back")) == (4403, "over the limit of 3 streams for this client")
    await a.flush_usage(), await b.flush_usage()
    status = run_vigint("status", "--json", "--db", postgres_url, cwd=tmp_path)
    document = json.loads(status.stdout)
    assert document["server_running"] and len(document["nodes"]) == 2
    assert sorted(node["streams"] for node in document["nodes"]) == [1, 2]
    assert {(s["camera"], s["node"]) for s in document["streams"]} == {
        ("door", a.node_id), ("till", a.node_id), ("yard", b.node_id)}
    table = run_vigint("status", "--db", postgres_url, cwd=tmp_path, env={"COLUMNS": "200"}).stdout
    assert "Server running on 2 nodes: 3 streams from 1 client" in table
    assert a.node_id in table and b.node_id in table  # the Nodes table, and each stream's node
    await door.close()
    await eventually(lambda: not any(s.camera == "door" for s in a.streams.open()))
    moved, welcome = await open_stream(url(b), api_key, "door")  # its name is free for any node at once
    assert welcome["type"] == "welcome"
    for connection in (yard, till, moved):
        await connection.close()


@REALTIME
async def test_a_revocation_closes_the_streams_of_every_node_within_a_second(nodes, postgres_url, tmp_path):
    a, b = nodes
    client_id, _, api_key = await add_client(a.store)
    door = (await open_stream(url(a), api_key, "door"))[0]
    yard = (await open_stream(url(b), api_key, "yard"))[0]
    streams = [door, yard]
    revoke = await asyncio.create_subprocess_exec(sys.executable, "-m", "vigint", "client", "revoke",
                                                  "--client-id", str(client_id), "--db", postgres_url,
                                                  cwd=tmp_path)
    assert await revoke.wait() == 0
    revoked_at = time.monotonic()

    async def closed_after(connection) -> tuple[float, int]:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), 5)
        return time.monotonic() - revoked_at, closed.value.rcvd.code

    results = await asyncio.gather(*(closed_after(connection) for connection in streams))
    assert [code for _, code in results] == [4401, 4401]
    assert max(seconds for seconds, _ in results) < 1.0, results


@REALTIME
async def test_usage_from_both_nodes_adds_up_exactly(nodes):
    a, b = nodes
    client_id, key_id, api_key = await add_client(a.store)
    sent = 0
    for server, camera in ((a, "door"), (b, "yard"), (a, "till")):
        connection, _ = await open_stream(url(server), api_key, camera)
        sent += await send_video(connection, make_h264(1))
        await connection.close()
    # all decoded
    await eventually(lambda: not a.streams.of_client(client_id) and not b.streams.of_client(client_id))
    await a.flush_usage(), await b.flush_usage()
    [row] = await b.store.usage_report(client_id, None, None)
    assert row.key_id == key_id and row.bytes_received == sent
    assert row.frames_decoded == 3 * make_h264(1).frames


@REALTIME
async def test_an_incident_on_one_node_is_one_row_one_clip_in_the_bucket_and_one_alert(
        start, postgres_url, tmp_path, mailbox, bucket):
    settings = Settings(motion=MotionSettings(cooldown_seconds=5),
                        email=EmailSettings(smtp_host="127.0.0.1", smtp_port=mailbox.port, security="none",
                                            sender="alerts@vigint.test"),
                        alerts=AlertSettings(retry_seconds=0.3, max_retry_seconds=0.5, link_secret=SECRET))
    # Each node its own data folder, as on separate machines: the shared link secret opens links on both.
    a, b = [await start(dataclasses.replace(settings, storage=bucket.settings(data_dir=tmp_path / name)),
                        database=postgres_url) for name in ("a", "b")]
    client_id, _, api_key = await add_client(a.store)
    connection, _ = await open_stream(url(b), api_key, "shop")
    await send_video(connection, make_scene(25, moving=(8, 11)), speed=20)
    await connection.close()
    await eventually(lambda: mailbox.messages, timeout=30)
    await asyncio.sleep(1.5)  # both nodes' senders have looked at the outbox again meanwhile
    await eventually(lambda: not b.streams.of_client(client_id))
    await b.desk.drain()  # the clip is finished
    [incident] = await a.store.list_incidents(client_id)
    assert len(mailbox.messages) == 1 and incident.alert_state == "delivered"
    objects = bucket.objects()
    clip = objects.pop(f"site-a/{client_id}/{incident.id}.mp4")
    assert clip[4:8] == b"ftyp" and sorted(objects) == [f"site-a/{client_id}/{incident.id}-{index}.jpg"
                                                        for index in range(incident.stills)]
    link = link_in(mailbox.messages[0])  # the alert links to the node that sent it; the other serves it too
    if f":{b.port}/" in link:
        other = link.replace(f":{b.port}/", f":{a.port}/")
    else:
        other = link.replace(f":{a.port}/", f":{b.port}/")
    for address in (link, other):
        assert await asyncio.to_thread(lambda: urllib.request.urlopen(address, timeout=10).read()) == clip


async def test_a_node_on_a_shared_database_needs_the_shared_link_secret(start, postgres_url, tmp_path):
    with pytest.raises(ConfigError, match=r"set \[alerts\] link_secret .* to the same value on every node"):
        await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data")), database=postgres_url)
    assert not (tmp_path / "data" / "link-secret").exists()  # no node-local secret that other nodes lack


async def test_a_hello_while_the_registry_is_locked_gets_try_again_and_other_streams_go_on(
        start, postgres_url, tmp_path):
    node = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                                alerts=AlertSettings(link_secret=SECRET)), database=postgres_url,
                       auth_timeout_seconds=0.5)
    _, _, api_key = await add_client(node.store)
    door, _ = await open_stream(url(node), api_key, "door")
    # another program holds the registry table, as a hung migration would
    async with registry_locked(postgres_url):
        began = time.monotonic()
        answer = await refused(node, hello(api_key, "yard"))
        assert answer == (1013, "the service cannot take this stream now; try again")
        assert time.monotonic() - began < 2
        await send_video(door, make_h264(1))  # the open stream goes on meanwhile
    yard, welcome = await open_stream(url(node), api_key, "yard")
    assert welcome["type"] == "welcome"
    await door.close(), await yard.close()


async def test_a_node_that_cannot_renew_for_a_whole_lease_closes_its_streams(start, postgres_url, tmp_path):
    node = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                                alerts=AlertSettings(link_secret=SECRET)),
                       database=postgres_url, lease_seconds=1.5)
    _, _, api_key = await add_client(node.store)
    door, _ = await open_stream(url(node), api_key, "door")
    async with registry_locked(postgres_url):  # the registry out of reach, as in a network partition
        began = time.monotonic()
        # Another node may take the camera once the lease has run out: this one must have let it go by then.
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(door.recv(), 10)
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "stream registration lapsed")
        # Before its lease (1.5 s from the last renewal, at most `began`) ran out, give or take scheduling.
        assert time.monotonic() - began < 1.5 + 0.3
