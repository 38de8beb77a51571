import asyncio
import dataclasses
import gc
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import weakref
from datetime import datetime

import pytest
from footage import make_footage, make_h264, open_stream, send_video
from helpers import REALTIME, add_client, eventually, hello, refused, run_vigint, url
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from vigint import keys, protocol
from vigint.cli.cert import write_self_signed
from vigint.config import ServerSettings
from vigint.store import Store

WRONG_KEY = keys.generate()


async def test_valid_key_is_welcomed_and_its_video_decoded(start):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    video = make_h264(4)
    connection, welcome = await open_stream(url(server), api_key, agent="test")
    assert welcome["type"] == "welcome" and welcome["client_id"] == client_id
    assert welcome["camera"] == "front-door" and welcome["session"]
    await send_video(connection, video)
    session = server.streams.of_client(client_id)["front-door"]
    await eventually(lambda: server.metrics.frames_decoded == video.frames)
    assert len(session.analysis.packets) == video.frames
    await connection.close()
    await eventually(lambda: not server.streams.of_client(client_id))


async def test_every_kind_of_invalid_key_gets_the_same_4401(start):
    server = await start()
    client_id, key_id, api_key = await add_client(server.store)
    expired_key = keys.generate()
    await server.store.create_key(client_id, keys.hash_key(expired_key), keys.display_prefix(expired_key),
                                  expires_at=time.time() - 1)
    revoked_client, _, revoked_key = await add_client(server.store, "gone@b.test")
    await server.store.revoke_client(revoked_client)
    mistyped = api_key[:-1] + ("0" if api_key[-1] != "0" else "1")
    wrong = (WRONG_KEY, expired_key, revoked_key, mistyped, "vig_x")
    answers = {await refused(server, hello(key)) for key in wrong}
    assert answers == {(4401, protocol.INVALID_KEY_REASON)}


async def test_malformed_hellos_get_4400(start):
    server = await start()
    for first in ("not json", json.dumps(["hello"]), json.dumps({"type": "hi", "version": 1}),
                  json.dumps({"type": "hello", "version": 2, "key": WRONG_KEY, "camera": "a"}),
                  json.dumps({"type": "hello", "version": 1, "camera": "a"}),
                  json.dumps({"type": "hello", "version": 1, "key": WRONG_KEY, "camera": "../x"}),
                  b"\x00\x01binary"):
        code, reason = await refused(server, first)
        assert code == 4400 and reason, first
    assert server.metrics.auth_failures["bad_hello"] == 7


async def test_no_hello_is_closed_with_4408_after_the_timeout(start):
    server = await start(auth_timeout_seconds=0.3)
    began = time.monotonic()
    async with connect(url(server)) as connection:
        with pytest.raises(ConnectionClosed) as closed:
            await connection.recv()
    assert closed.value.rcvd.code == 4408
    assert 0.3 <= time.monotonic() - began < 2


async def test_oversized_hello_is_closed(start):
    server = await start()
    padded = {"type": "hello", "version": 1, "key": WRONG_KEY, "camera": "a", "padding": "x" * 5000}
    code, _ = await refused(server, json.dumps(padded))
    assert code == 1009
    await eventually(lambda: server.metrics.auth_failures["too_large"] == 1)


async def test_the_eleventh_failure_in_a_minute_gets_4429_but_a_valid_key_is_still_welcomed(start):
    server = await start()
    _, _, api_key = await add_client(server.store)
    for _ in range(10):
        assert (await refused(server, hello(WRONG_KEY)))[0] == 4401
    code, reason = await refused(server, hello(WRONG_KEY))
    assert code == 4429 and re.fullmatch(r"too many failed attempts; retry in \d+ s", reason)
    # A neighbour behind the same address with the right key is not locked out.
    connection, welcome = await open_stream(url(server), api_key)
    assert welcome["type"] == "welcome"
    await connection.close()


async def test_two_clients_each_see_only_their_own_frames(start):
    server = await start()
    first_id, _, first_key = await add_client(server.store)
    second_id, _, second_key = await add_client(server.store, "b@b.test", "Beta")
    first_video = make_h264(3)
    second_video = make_h264(3, width=256, height=144)
    first, _ = await open_stream(url(server), first_key, "door")
    second, _ = await open_stream(url(server), second_key, "door")  # same camera name, other client: fine
    await asyncio.gather(send_video(first, first_video, start_us=10**15),
                         send_video(second, second_video, start_us=2 * 10**15))
    await eventually(lambda: server.metrics.frames_decoded == first_video.frames + second_video.frames)
    mine = server.streams.of_client(first_id)["door"]
    theirs = server.streams.of_client(second_id)["door"]
    assert {p.data for p in mine.analysis.packets.packets()} <= {u[3] for u in first_video.units}
    assert {p.data for p in theirs.analysis.packets.packets()} <= {u[3] for u in second_video.units}
    assert mine.analysis.frames_decoded == first_video.frames
    assert theirs.analysis.frames_decoded == second_video.frames
    assert (mine.analysis.video_size, theirs.analysis.video_size) == ((320, 180), (256, 144))
    await first.close()
    await second.close()


async def test_stream_cap_and_duplicate_camera_get_4403(start):
    server = await start(max_streams_per_client=2)
    _, _, api_key = await add_client(server.store)
    first, _ = await open_stream(url(server), api_key, "one")
    second, _ = await open_stream(url(server), api_key, "two")
    over = (4403, "over the limit of 2 streams for this client")
    assert await refused(server, hello(api_key, "three")) == over
    assert await refused(server, hello(api_key, "one")) == (4403, "camera 'one' is already streaming")
    await first.close()
    await eventually(lambda: len(server.streams.of_client(1)) == 1)
    third, welcome = await open_stream(url(server), api_key, "one")  # the freed slot and name work again
    assert welcome["type"] == "welcome"
    await second.close()
    await third.close()


def admin(db_path, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "vigint", *args, "--db", str(db_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@REALTIME
async def test_revocation_by_the_admin_cli_closes_the_stream_within_a_second(start, db_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key)
    await send_video(connection, make_h264(1))
    revoke = await asyncio.create_subprocess_exec(sys.executable, "-m", "vigint", "client", "revoke",
                                                  "--client-id", str(client_id), "--db", str(db_path))
    assert await revoke.wait() == 0
    revoked_at = time.monotonic()  # the commit happened before the process exited
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(connection.recv(), 5)
    assert time.monotonic() - revoked_at < 1.0
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, protocol.INVALID_KEY_REASON)
    assert await refused(server, hello(api_key)) == (4401, protocol.INVALID_KEY_REASON)
    await asyncio.to_thread(admin, db_path, "client", "reactivate", "--client-id", str(client_id))
    again, welcome = await open_stream(url(server), api_key)
    assert welcome["client_id"] == client_id
    await again.close()


async def test_key_expiring_while_streaming_closes_the_stream(start):
    server = await start()
    client_id, _, _ = await add_client(server.store)
    short_key = keys.generate()
    await server.store.create_key(client_id, keys.hash_key(short_key), keys.display_prefix(short_key),
                                  expires_at=time.time() + 1.0)
    connection, _ = await open_stream(url(server), short_key)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(connection.recv(), 5)
    assert closed.value.rcvd.code == 4401


@REALTIME
async def test_rings_of_a_20_second_720p_stream(start):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    video = make_h264(20, width=1280, height=720, bitrate=2_000_000)
    connection, _ = await open_stream(url(server), api_key)
    await send_video(connection, video, start_us=0)
    await eventually(lambda: server.metrics.frames_decoded == video.frames, timeout=30)
    session = server.streams.of_client(client_id)["front-door"]
    packets = session.analysis.packets.packets()
    gop_us = video.gop * 1_000_000 // video.fps
    assert packets[0].keyframe
    span = packets[-1].dts - packets[0].dts
    assert 10_000_000 - gop_us <= span <= 10_000_000 + gop_us
    assert session.analysis.video_size == (1280, 720)
    await connection.close()


async def test_a_10_s_burst_on_a_server_with_threads_to_spare_is_analysed_in_full(start):
    defaults = ServerSettings()
    server = await start(max_decode_backlog_seconds=defaults.max_decode_backlog_seconds,
                         max_decode_catchup_seconds=defaults.max_decode_catchup_seconds,
                         max_decode_backlog_bytes=defaults.max_decode_backlog_bytes)
    client_id, _, api_key = await add_client(server.store)
    video = make_h264(10, width=1280, height=720, bitrate=2_000_000)  # what a camera queued through a stall
    connection, _ = await open_stream(url(server), api_key)
    await send_video(connection, video)  # at once, as an agent sends its queue when the link comes back
    session = server.streams.of_client(client_id)["front-door"]
    await connection.close()
    await eventually(lambda: not server.streams.of_client(client_id), timeout=30)
    # not one frame shed
    assert session.analysis.frames_decoded == server.metrics.frames_decoded == video.frames
    assert server.metrics.decode_errors == 0


async def test_a_server_whose_decode_threads_are_saturated_sheds_a_burst(start):
    server = await start(decode_threads=1, max_decode_backlog_seconds=1)
    client_id, _, api_key = await add_client(server.store)
    video = make_h264(6, width=640, height=360)
    connection, _ = await open_stream(url(server), api_key)
    session = server.streams.of_client(client_id)["front-door"]
    busy = threading.Event()
    server._pool.submit(busy.wait)  # the one decode thread is taken: the stream's batches wait for it
    try:
        start_us = int(time.time() * 1e6)
        await send_video(connection, dataclasses.replace(video, units=video.units[:video.fps]), start_us)
        await eventually(lambda: server.decode_load.overloaded)
        await send_video(connection, dataclasses.replace(video, units=video.units[video.fps:]), start_us)
        # all of it read while overloaded
        await eventually(lambda: len(session.analysis.packets) == video.frames)
    finally:
        busy.set()
    await connection.close()
    await eventually(lambda: not server.streams.of_client(client_id), timeout=30)
    assert len(session.analysis.packets) == video.frames  # clips still have every packet
    assert 0 < server.metrics.frames_decoded < video.frames  # analysis skipped whole GOPs to keep up
    assert server.metrics.decode_errors == 0
    assert "vigint_decode_saturation" in server.metrics.render({}, {}, 0)


async def test_a_stream_too_far_behind_skips_ahead_to_a_keyframe_even_on_an_idle_server(start):
    server = await start(max_decode_catchup_seconds=1)
    client_id, _, api_key = await add_client(server.store)
    video = make_h264(6, width=640, height=360)
    connection, _ = await open_stream(url(server), api_key)
    await send_video(connection, video)
    session = server.streams.of_client(client_id)["front-door"]
    await connection.close()
    # its end waits for its last decode and the flush
    await eventually(lambda: not server.streams.of_client(client_id))
    assert len(session.analysis.packets) == video.frames  # clips still have every packet
    assert 0 < server.metrics.frames_decoded < video.frames  # analysis skipped whole GOPs to keep up
    assert server.metrics.decode_errors == 0


async def test_bad_media_on_one_stream_does_not_disturb_another(start):
    server = await start(max_bad_packets=20)
    healthy_id, _, healthy_key = await add_client(server.store)
    _, _, broken_key = await add_client(server.store, "b@b.test")
    video = make_h264(4)
    healthy, _ = await open_stream(url(server), healthy_key, "good")
    broken, _ = await open_stream(url(server), broken_key, "bad")

    async def misbehave():
        await send_video(broken, make_h264(1))
        for unit in video.units[:20]:  # truncated access units
            await broken.send(protocol.media(0, 0, unit[3][: len(unit[3]) // 3]))
        for _ in range(30):
            await broken.send(os.urandom(3000))
        await broken.send(b"short")

    await asyncio.gather(send_video(healthy, video), misbehave())
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(broken.recv(), 10)
    answer = (closed.value.rcvd.code, closed.value.rcvd.reason)
    assert answer == (4415, "the stream cannot be decoded as H.264")
    good = server.streams.of_client(healthy_id)["good"]
    await eventually(lambda: len(good.analysis.packets) == video.frames)
    await eventually(lambda: good.analysis.frames_decoded == video.frames)
    assert server.metrics.decode_errors >= 20
    # The healthy stream still works after all that.
    await send_video(healthy, make_h264(1), start_us=int(time.time() * 1e6) + 10_000_000)
    await healthy.close()


async def test_usage_rows_match_the_bytes_sent(start, db_path):
    server = await start()
    client_id, key_id, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key)
    sent = await send_video(connection, make_h264(2))
    await connection.close()
    await eventually(lambda: not server.streams.of_client(client_id))
    await server.flush_usage()
    [row] = await server.store.usage_report(client_id, None, None)
    assert row.key_id == key_id and row.bytes_received == sent
    assert row.frames_decoded == make_h264(2).frames and row.stream_seconds > 0
    last_used = (await server.store.get_key(key_id)).last_used_at
    assert last_used is not None and time.time() - last_used < 10


def http_get(address: str, context: ssl.SSLContext | None = None) -> tuple[int, str, str]:
    with urllib.request.urlopen(address, timeout=5, context=context) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def metric(base: str, name: str) -> float:
    """Return the value of the unlabelled sample `name` on the server's /metrics page."""
    text = http_get(base + "/metrics")[2]
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    return next(s.value for s in samples if s.name == name)


async def test_healthz_and_metrics(start):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    await refused(server, hello(WRONG_KEY))
    connection, _ = await open_stream(url(server), api_key)
    video = make_h264(1)
    await send_video(connection, video)
    await eventually(lambda: server.metrics.frames_decoded == video.frames)
    base = f"http://127.0.0.1:{server.port}"
    assert (await asyncio.to_thread(http_get, base + "/healthz"))[0] == 200
    status, content_type, text = await asyncio.to_thread(http_get, base + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("vigint_streams_connected", (("client_id", str(client_id)),))] == 1
    assert samples[("vigint_frames_decoded_total", ())] == video.frames
    assert samples[("vigint_auth_failures_total", (("reason", "invalid_key"),))] == 1
    assert samples[("vigint_bytes_received_total", ())] > 0
    assert samples[("vigint_decode_lag_seconds_count", ())] == video.frames
    with pytest.raises(urllib.error.HTTPError) as missing:
        await asyncio.to_thread(http_get, base + "/nothing")
    assert missing.value.code == 404
    missing.value.close()  # an HTTP client holding its socket would make shutdown wait its full timeout
    await connection.close()


async def test_wss_with_a_vigint_cert_pair(start, tmp_path):
    cert_path, key_path = write_self_signed("127.0.0.1", tmp_path / "tls")
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    server = await start(tls_cert=cert_path, tls_key=key_path)
    _, _, api_key = await add_client(server.store)
    trust = ssl.create_default_context(cafile=cert_path)
    async with connect(url(server), ssl=trust) as connection:
        await connection.send(hello(api_key))
        assert json.loads(await connection.recv())["type"] == "welcome"
    assert (await asyncio.to_thread(http_get, f"https://127.0.0.1:{server.port}/healthz", trust))[0] == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(url(server))  # untrusted without the certificate


def health(base: str) -> tuple[int, str]:
    """Return the status and body of the server's /healthz."""
    try:
        status, _, body = http_get(base + "/healthz")
        return status, body
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


async def test_a_draining_server_answers_503_refuses_new_streams_with_1013_and_keeps_open_ones(start):
    server = await start(drain_seconds=30)
    _, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key, "door")
    base = f"http://127.0.0.1:{server.port}"
    assert await asyncio.to_thread(health, base) == (200, "ok\n")
    draining = asyncio.create_task(server.drain())
    await asyncio.sleep(0)
    assert await asyncio.to_thread(health, base) == (503, "draining\n")
    assert await refused(server, hello(api_key, "yard")) == (1013, "this server is draining; try again")
    video = make_h264(1)
    await send_video(connection, video)  # the open stream goes on until stop()
    await eventually(lambda: server.metrics.frames_decoded == video.frames)
    assert not draining.done()
    await connection.close()
    await asyncio.wait_for(draining, 2)  # its last stream gone, the drain ends without waiting its 30 s


async def test_sigterm_drains_then_closes_streams_with_1001_flushes_usage_and_exits_0(tmp_path, db_path):
    async with await Store.open(db_path) as store:
        client_id, _, api_key = await add_client(store)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", "0", "--db", str(db_path),
        cwd=tmp_path,
        env={**os.environ, "VIGINT_SERVER_DRAIN_SECONDS": "2"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    banner = b""
    while b"listening" not in banner:
        banner += await asyncio.wait_for(process.stdout.readline(), 30)
    port = int(re.search(rb"127\.0\.0\.1:(\d+)", banner)[1])
    connection, _ = await open_stream(f"ws://127.0.0.1:{port}{protocol.PATH}", api_key)
    sent = await send_video(connection, make_h264(1))

    async def all_received() -> bool:
        received = await asyncio.to_thread(metric, f"http://127.0.0.1:{port}", "vigint_bytes_received_total")
        return received == sent

    await eventually(all_received)
    process.send_signal(signal.SIGTERM)

    async def unhealthy() -> bool:
        return (await asyncio.to_thread(health, f"http://127.0.0.1:{port}"))[0] == 503

    await eventually(unhealthy, timeout=2)
    assert connection.state is State.OPEN  # a balancer sees the node go down before its streams are closed
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(connection.recv(), 10)
    assert closed.value.rcvd.code == 1001
    assert await asyncio.wait_for(process.wait(), 10) == 0
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT sum(bytes_received) FROM usage").fetchone()[0] == sent


async def test_a_port_in_use_is_a_clear_error(start, tmp_path):
    server = await start()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vigint", "serve", "--port", str(server.port), "--web-port", "0",
        "--db", str(tmp_path / "other.db"),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    in_use = f"vigint: error: cannot listen on 127.0.0.1:{server.port}: Address already in use\n"
    assert err.decode() == in_use


async def test_an_ended_stream_frees_its_decoder_without_waiting_for_the_garbage_collector(start):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key)
    await send_video(connection, make_h264(1))
    await eventually(lambda: server.metrics.frames_decoded == make_h264(1).frames)
    session = weakref.ref(server.streams.of_client(client_id)["front-door"])
    gc.disable()  # a reference cycle would keep every ended stream's decoder (megabytes) until a full pass
    try:
        await connection.close()
        await eventually(lambda: not server.streams.of_client(client_id))
        await eventually(lambda: session() is None, timeout=0.5)  # not at the camera settings' next look
    finally:
        gc.enable()


def silent_agent(port: int, api_key: str, camera: str) -> tuple[socket.socket, ClientProtocol]:
    """Say hello and wait for the welcome; then never read again (no close handshake)."""
    client = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{protocol.PATH}"))
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def exchange(kind: type) -> None:
        sock.sendall(b"".join(client.data_to_send()))
        while not any(isinstance(event, kind) for event in client.events_received()):
            client.receive_data(sock.recv(65536))

    client.send_request(client.connect())
    exchange(Response)
    client.send_text(hello(api_key, camera).encode())
    exchange(Frame)  # the welcome
    return sock, client


def send_binary(sock: socket.socket, client: ClientProtocol, message: bytes) -> None:
    client.send_binary(message)
    sock.sendall(b"".join(client.data_to_send()))


async def test_a_refused_stream_that_stops_reading_frees_its_camera_and_its_memory_at_once(start):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    bomb = protocol.media(0, 0, b"\x00\x00\x01\x09" * 100_000)
    sock, agent = await asyncio.to_thread(silent_agent, server.port, api_key, "door")
    try:
        session = weakref.ref(server.streams.of_client(client_id)["door"])
        await asyncio.to_thread(send_binary, sock, agent, bomb)
        # not close_timeout (10 s)
        await eventually(lambda: not server.streams.of_client(client_id), timeout=2)
        await eventually(lambda: session() is None, timeout=0.5)  # its decoder and ring freed too
        connection, welcome = await open_stream(url(server), api_key, "door")
        assert welcome["type"] == "welcome"
        await connection.close()
    finally:
        sock.close()


async def test_streams_still_closing_count_against_the_client_until_their_decoder_is_done(start):
    # Twenty seconds of 720p sent at once: a stream closed right after keeps its decoder busy for a while.
    server = await start(max_streams_per_client=1, decode_threads=1)
    client_id, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key, "one")
    await send_video(connection, make_h264(20, width=1280, height=720, bitrate=2_000_000))
    await connection.close()
    await eventually(lambda: getattr(server.streams.of_client(client_id).get("one"), "ended", False))
    closing = (4403, "too many of this client's streams are still closing")
    assert await refused(server, hello(api_key, "two")) == closing
    await eventually(lambda: not server.streams.of_client(client_id), timeout=3)
    again, welcome = await open_stream(url(server), api_key, "two")
    assert welcome["type"] == "welcome"
    await again.close()


async def test_a_still_camera_goes_idle_and_status_and_metrics_say_so(start, db_path, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    video = make_footage(16, 2)  # sixteen still seconds, sent faster than real time: idle after ten
    connection, _ = await open_stream(url(server), api_key, "till")
    await send_video(connection, video)
    analysis = server.streams.of_client(client_id)["till"].analysis
    await eventually(lambda: analysis.mode == "idle")
    base = f"http://127.0.0.1:{server.port}"
    text = (await asyncio.to_thread(http_get, base + "/metrics"))[2]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("vigint_streams", (("mode", "idle"),))] == 1
    assert samples[("vigint_streams", (("mode", "active"),))] == 0
    assert samples[("vigint_decode_cpu_seconds_total", (("mode", "active"),))] > 0
    await server.flush_usage()
    result = await asyncio.to_thread(run_vigint, "status", "--json", "--db", str(db_path), cwd=tmp_path)
    status = json.loads(result.stdout)
    assert [(s["camera"], s["mode"]) for s in status["streams"]] == [("till", "idle")]
    # ISO 8601, not epoch
    assert datetime.fromisoformat(status["streams"][0]["connected_at"]).tzinfo is not None
    await connection.close()


@pytest.mark.slow  # waits out one busy_timeout (5 s)
async def test_usage_met_by_a_long_database_lock_is_kept_and_warned_of_in_one_line(start, db_path, caplog):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key)
    # Another process's writer (a backup, an admin command). Taken from a thread: the server shares this
    # event loop, and its write in progress must be able to end for the lock to be had.
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
    try:
        sent = await send_video(connection, make_h264(1))
        await connection.close()
        # The flush waits its turn on the one writer behind the background tasks' writes, each waiting out
        # a busy timeout (5 s) while the lock is held: several of those on a loaded machine.
        failures = await eventually(lambda: [record for record in caplog.records
                                             if "could not write usage" in record.getMessage()], timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [(record.levelname, record.exc_info) for record in failures] == [("WARNING", None)] * len(failures)
    assert "database busy" in failures[0].getMessage() and "\n" not in failures[0].getMessage()
    rows = await eventually(lambda: server.store.usage_report(client_id, None, None))
    assert rows[0].bytes_received == sent
