"""Clips and stills in S3 served by the page (a real S3 endpoint on loopback: moto's server, see tests/s3.py): only the
bytes asked for are read from the bucket, a chunk at a time, within caps per link, per client and in total."""

import asyncio
import io
import os
import re
import socket
import time

import aiohttp
import pytest
from attacks import MiB, ServeProcess
from helpers import add_client, eventually
from s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from test_pages import jpeg, signed_in

from vigint.alerts.links import clip_link
from vigint.config import AlertSettings, Settings, WebSettings
from vigint.incidents.storage import still_name
from vigint.store import Store

LINK_SECRET = "s" * 64
PAGE = re.compile(r"page\s+(http://127\.0\.0\.1:\d+)/")


async def stored_incident(store, bucket, client_id: int, key_id: int, clip: bytes, stills: int = 0):
    """An incident whose clip (and stills) are objects in the bucket, where the server put them (prefix site-a)."""
    incident = await store.create_incident(client_id, key_id, "door", time.time() - 60)
    name = f"clips/{client_id}/{incident.id}.mp4"
    files = {name: clip, **{still_name(client_id, incident.id, index): jpeg() for index in range(stills)}}
    for file, data in files.items():
        await asyncio.to_thread(bucket.client.put_object, bucket.name, "site-a/" + file.removeprefix("clips/"),
                                io.BytesIO(data), len(data))
    await store.update_incident(incident.id, clip_path=name, stills=stills, ended_at=time.time() - 50)
    return await store.get_incident(incident.id)


@pytest.fixture
async def s3_site(start, tmp_path, bucket):
    async def run(**web):
        settings = Settings(storage=bucket.settings(data_dir=tmp_path / "data"), web=WebSettings(**web),
                            alerts=AlertSettings(link_secret=LINK_SECRET))
        server = await start(settings)
        server.base = f"http://127.0.0.1:{server.page.port}"
        return server
    return run


async def test_a_clip_in_s3_answers_ranges_with_the_right_bytes(s3_site, bucket):
    site = await s3_site()
    client_id, key_id, _ = await add_client(site.store)
    clip = os.urandom(3 * MiB + 12345)  # several chunks
    incident = await stored_incident(site.store, bucket, client_id, key_id, clip, stills=1)
    url = f"{site.base}/incidents/{incident.id}/clip.mp4"
    async with await signed_in(site, client_id) as browser:
        async with browser.get(url) as whole:
            assert (whole.status, await whole.read()) == (200, clip)
            etag, headers = whole.headers["ETag"], whole.headers
            assert headers["Content-Type"] == "video/mp4" and headers["Content-Length"] == str(len(clip))
            assert headers["Accept-Ranges"] == "bytes" and headers["Cache-Control"] == "private, no-cache"
            assert headers["X-Content-Type-Options"] == "nosniff"
        for asked, expected in (("bytes=0-1", range(0, 2)), ("bytes=2000000-2300000", range(2_000_000, 2_300_001)),
                                ("bytes=-100", range(len(clip) - 100, len(clip))),
                                (f"bytes={len(clip) - 5}-", range(len(clip) - 5, len(clip)))):
            async with browser.get(url, headers={"Range": asked}) as part:
                assert part.status == 206, asked
                assert await part.read() == clip[expected.start:expected.stop], asked
                assert part.headers["Content-Range"] == f"bytes {expected.start}-{expected.stop - 1}/{len(clip)}"
        async with browser.get(url, headers={"Range": f"bytes={len(clip)}-"}) as past:
            assert (past.status, past.headers["Content-Range"]) == (416, f"bytes */{len(clip)}")
        async with browser.head(url) as head:  # what a player asks first, and nothing read from the bucket
            assert (head.status, head.headers["Content-Length"], await head.read()) == (200, str(len(clip)), b"")
        async with browser.get(url, headers={"If-None-Match": etag}) as cached:
            assert cached.status == 304  # the player has it
        async with browser.get(url, headers={"Range": "bytes=0-1", "If-Range": '"another-version"'}) as changed:
            assert (changed.status, len(await changed.read())) == (200, len(clip))  # all of it again
        async with browser.get(url, headers={"Range": "bytes=0-1", "If-Range": etag}) as same:
            assert (same.status, await same.read()) == (206, clip[:2])
        async with browser.get(f"{site.base}/incidents/{incident.id}/stills/0.jpg") as still:
            assert (still.status, await still.read()) == (200, jpeg())
            assert still.headers["Content-Type"] == "image/jpeg"
    link = clip_link(site.base, LINK_SECRET, incident, int(time.time()) + 3600)
    async with aiohttp.ClientSession() as stranger, stranger.get(link, headers={"Range": "bytes=10-19"}) as part:
        assert (part.status, await part.read()) == (206, clip[10:20])  # the emailed link, no session


def stalled(port: int, path: str, count: int) -> list[socket.socket]:
    """Open `count` connections that each ask for `path` and never read the answer (with a small receive buffer, as
    a slow phone's)."""
    opened = []
    for _ in range(count):
        connection = socket.socket()
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connection.connect(("127.0.0.1", port))
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        opened.append(connection)
    return opened


def status_of(connection: socket.socket) -> int | None:
    """Peek at an answer's status without taking it (the server's side sees nothing read); None before it came."""
    try:
        head = connection.recv(12, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    return int(head[9:12]) if len(head) == 12 else None


def received(connection: socket.socket) -> int:
    """Read an answer to its end (the server closing or resetting the connection); return how many bytes came."""
    count = 0
    connection.settimeout(10)
    try:
        while data := connection.recv(1 << 20):
            count += len(data)
    except ConnectionResetError:
        pass
    return count


async def test_stalled_readers_of_one_link_wait_for_their_places_and_are_cut_after_the_timeout(s3_site, bucket):
    site = await s3_site(max_clip_streams_per_link=2, clip_send_timeout_seconds=1)
    client_id, key_id, _ = await add_client(site.store)
    clip = os.urandom(8 * MiB)  # more than the sockets' buffers hold: the first two readers stall
    incident = await stored_incident(site.store, bucket, client_id, key_id, clip)
    link = clip_link(site.base, LINK_SECRET, incident, int(time.time()) + 3600)
    path = link.removeprefix(site.base)
    connections = await asyncio.to_thread(stalled, site.page.port, path, 5)
    try:
        statuses = await eventually(lambda: all(status_of(each) for each in connections) and
                                    [status_of(each) for each in connections])
        assert sorted(statuses) == [200, 200, 429, 429, 429]
        refused = next(each for each in connections if status_of(each) == 429)
        text = refused.recv(4096).decode()
        assert "Retry-After: 5" in text and "too many downloads of this clip at once" in text
        # The stalled readers are cut after the timeout: what they get is short, their places are free again, and
        # the clip comes whole.
        await asyncio.sleep(1.5)
        cut = [each for each in connections if status_of(each) == 200]
        assert [await asyncio.to_thread(received, each) < len(clip) for each in cut] == [True, True]
        async with aiohttp.ClientSession() as customer, customer.get(link) as whole:
            assert (whole.status, await whole.read()) == (200, clip)
    finally:
        for connection in connections:
            connection.close()


async def test_one_client_cannot_take_every_place(s3_site, bucket):
    site = await s3_site(max_clip_streams=3, max_clip_streams_per_client=2, clip_send_timeout_seconds=30)
    a, a_key, _ = await add_client(site.store, "a@shop.test", "Shop A")
    b, b_key, _ = await add_client(site.store, "b@shop.test", "Shop B")
    clip = os.urandom(8 * MiB)
    incidents = [await stored_incident(site.store, bucket, a, a_key, clip) for _ in range(3)]
    theirs = await stored_incident(site.store, bucket, b, b_key, clip)
    paths = [clip_link(site.base, LINK_SECRET, found, int(time.time()) + 3600).removeprefix(site.base)
             for found in [*incidents, theirs]]
    connections = []
    try:
        for path in paths[:3]:  # one stalled reader of each of A's clips: A has two places
            connections += await asyncio.to_thread(stalled, site.page.port, path, 1)
            await eventually(lambda: status_of(connections[-1]))
        assert [status_of(each) for each in connections] == [200, 200, 429]
        connections += await asyncio.to_thread(stalled, site.page.port, paths[3], 2)  # B takes the last place
        await eventually(lambda: all(status_of(each) for each in connections[3:]))
        assert [status_of(each) for each in connections[3:]] == [200, 503]  # then the server is full
        assert "Retry-After: 5" in connections[4].recv(4096).decode()
    finally:
        for connection in connections:
            connection.close()


@pytest.mark.slow  # a server process, an 8 MiB clip and 150 sockets
@pytest.mark.parametrize("cap", [None, 200], ids=["default-caps", "caps-raised-to-200"])
async def test_150_unread_clip_requests_through_one_link_keep_the_servers_memory(tmp_path, bucket, cap):
    """The real server in its own process, its resident memory read from /proc: a signed link (no session needed)
    asked 150 times for a clip of several MB by sockets that never read. With the caps raised, all 150 stream at
    once: each holds one chunk and a socket buffer, never the clip."""
    env = {"VIGINT_STORAGE_CLIPS": f"s3://{bucket.name}/site-a", "VIGINT_STORAGE_S3_ENDPOINT": bucket.endpoint,
           "VIGINT_STORAGE_S3_REGION": REGION, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
           "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY, "VIGINT_ALERTS_LINK_SECRET": LINK_SECRET,
           # 150 sockets from one address would meet the page port's connection caps first: this is about clips
           "VIGINT_WEB_MAX_IDLE_CONNECTIONS": "1000", "VIGINT_WEB_MAX_IDLE_CONNECTIONS_PER_ADDRESS": "1000"}
    if cap:
        env |= {f"VIGINT_WEB_MAX_CLIP_STREAMS{which}": str(cap) for which in ("", "_PER_CLIENT", "_PER_LINK")}
    server = await ServeProcess(tmp_path / "serve", env).start()
    try:
        base = PAGE.search(server.log())[1]
        async with await Store.open(str(server.db)) as store:
            client_id, key_id, _ = await add_client(store)
            clip = os.urandom(8 * MiB)
            incident = await stored_incident(store, bucket, client_id, key_id, clip)
        link = clip_link(base, LINK_SECRET, incident, int(time.time()) + 3600)
        async with aiohttp.ClientSession() as customer, customer.get(link) as warm:  # the SDK and its pool warmed
            assert (warm.status, await warm.read()) == (200, clip)
        before = server.rss()
        connections = await asyncio.to_thread(stalled, int(base.rsplit(":", 1)[1]), link.removeprefix(base), 150)
        try:
            statuses = await eventually(lambda: all(status_of(each) for each in connections) and
                                        [status_of(each) for each in connections], timeout=60)
            await asyncio.sleep(1)  # the streams that started have filled what the sockets hold
            grown = server.rss() - before
            assert grown < 50 * MiB, f"{grown / MiB:.0f} MiB more"
            if cap is None:  # [web] max_clip_streams_per_link
                assert statuses.count(200) == 4 and statuses.count(429) == 146
            else:
                assert statuses.count(200) == 150
        finally:
            for connection in connections:
                connection.close()
        async with aiohttp.ClientSession() as customer, customer.get(link) as again:  # the places came back
            assert (again.status, await again.read()) == (200, clip)
    finally:
        assert await server.stop() == 0
    assert "Traceback" not in server.log() and "ERROR" not in server.log()
