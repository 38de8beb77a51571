"""One authenticated customer cannot hurt the others.

One real `vigint serve` subprocess serves the whole module, with a healthy camera of another client
streaming at real time beside every attack (`healthy`). Each attack is its own test and comes from its
own loopback address, so that one test's failed hellos never block another's. The last two tests check
what the attacks left behind: the healthy stream lost no frame, its pings stayed fast, the server's
memory did not grow and its log holds no traceback; then SIGTERM still ends the server cleanly.
The exhaustion and link-secret tests start servers of their own.
"""

import asyncio
import json
import resource
import ssl
import sys
import time
import urllib.error
import urllib.request
from itertools import count
from pathlib import Path

import pytest
import pytest_asyncio
from attacks import (
    MAX_REASON_BYTES,
    SPS_TYPE,
    HealthyStream,
    MiB,
    ServeProcess,
    close_code,
    connect_from,
    first_answer,
    hostile_hellos,
    nal_bomb,
    open_idle_sockets,
    resolution_bomb,
    split_nals,
    sps_picture_size,
    welcomed,
)
from footage import make_h264
from helpers import REALTIME, eventually, hello

from vigint import keys, protocol
from vigint.cli.cert import write_self_signed

# One server and one healthy stream see every attack of this module: its tests share a worker, in order.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), REALTIME]

SHUTDOWN_TIMEOUT = 3.0
DRAIN_SECONDS = 1.0  # SIGTERM drains first (503, 1013) while attack streams may still be open
SERVER_ENV = {
    "VIGINT_SERVER_USAGE_FLUSH_SECONDS": "0.2",
    "VIGINT_SERVER_AUTH_TIMEOUT_SECONDS": "0.5",
    "VIGINT_SERVER_SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_TIMEOUT),
    "VIGINT_SERVER_DRAIN_SECONDS": str(DRAIN_SECONDS),
    # The healthy camera's moving square makes an incident with a clip within seconds (the clip-link
    # test needs one).
    "VIGINT_MOTION_MIN_MOTION_SECONDS": "0.5",
    "VIGINT_MOTION_PRE_ROLL_SECONDS": "1",
    "VIGINT_MOTION_POST_ROLL_SECONDS": "1",
    "VIGINT_BUFFERS_LONG_BUFFER_SECONDS": "3",
    # Every frame of the healthy camera decoded, its incident's too: "it lost no frame" is then its frames
    # decoded, which a confirmed incident followed on keyframes would not say.
    "VIGINT_ANALYSIS_IDLE_MODE": "full",
}
MAX_PING_SECONDS = 0.1
MAX_RSS_GROWTH = 100 * MiB
_addresses = count(1)


def fresh_address() -> str:
    """A loopback source address no other test of this module uses."""
    return f"127.0.1.{next(_addresses)}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory):
    serve = await ServeProcess(tmp_path_factory.mktemp("attacks"), SERVER_ENV).start()
    yield serve
    await serve.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def healthy(server):
    """Another client's camera, streaming at real time from the first attack to the last check."""
    client_id, _, api_key = await server.cli.create_client("Healthy")
    stream = await asyncio.to_thread(HealthyStream(server.url, api_key, "lobby", make_h264(4)).start)
    stream.client_id = client_id
    await eventually(lambda: stream.frames_sent >= 15, interval=0.05)  # decoder, scaler and rings warmed up
    stream.rss_after_warmup = server.rss()
    yield stream
    await asyncio.to_thread(stream.stop)


async def attacker(server: ServeProcess, name: str) -> tuple[int, str]:
    """Create the attacking client with the real CLI; return its id and API key."""
    client_id, _, api_key = await server.cli.create_client(name)
    return client_id, api_key


async def streaming(server: ServeProcess, api_key: str, camera: str, source: str):
    """Open a stream and return the connection once welcomed."""
    connection = await connect_from(server.url, source)
    await connection.send(hello(api_key, camera))
    assert json.loads(await asyncio.wait_for(connection.recv(), 5))["type"] == "welcome"
    return connection


async def assert_no_ghost(server: ServeProcess, healthy: HealthyStream, client_id: int, api_key: str,
                          camera: str, source: str) -> None:
    """What a customer sees after an attack: the camera name streams again at once, `client list` does not
    show it live, and its key stops accruing stream time."""
    took, answer = await welcomed(server.url, api_key, camera, source)
    assert answer == (None, "welcome"), \
        f"camera {camera!r} still refused {took:.2f} s after the attack: {answer}"

    # The healthy camera being listed proves the snapshot is fresh, so "not listed" means something.
    await eventually(server.cli.live_cameras, lambda live: camera not in live.get(client_id, [])
                     and "lobby" in live.get(healthy.client_id, []), timeout=5, interval=0.05)
    first = (await server.cli.usage(client_id))["stream_seconds"]
    await asyncio.sleep(1.0)  # the window over which a ghost would keep being billed
    second = (await server.cli.usage(client_id))["stream_seconds"]
    assert second - first < 0.3, \
        f"client {client_id} is still billed: {first} s then {second} s a second later"


async def test_a_nal_bomb_closes_only_that_stream_with_4415(server):
    _, api_key = await attacker(server, "NalBomb")
    source = fresh_address()
    connection = await streaming(server, api_key, "bomb", source)
    await connection.send(nal_bomb(int(time.time() * 1e6)))
    code, reason = await close_code(connection)
    assert code == 4415 and "NAL units" in reason, (code, reason)
    took, answer = await welcomed(server.url, api_key, "bomb", source)
    assert answer == (None, "welcome"), f"camera still refused {took:.2f} s after the bomb: {answer}"


@pytest.mark.parametrize("width, height", [(8192, 8192), (16, 16384), (16, 65536)])
async def test_a_resolution_bomb_is_refused_and_leaves_no_ghost(server, healthy, width, height):
    client_id, api_key = await attacker(server, f"Res{width}x{height}")
    source = fresh_address()
    connection = await streaming(server, api_key, "huge", source)
    bomb = resolution_bomb(make_h264(1), width, height, int(time.time() * 1e6))[:5]
    [sps] = [nal for nal in split_nals(bomb[0][protocol.HEADER.size:]) if nal[0] & 0x1F == SPS_TYPE]
    assert sps_picture_size(sps) == (width, height)  # what the server must read from it
    for message in bomb:
        try:
            await connection.send(message)
        except Exception:  # noqa: BLE001 - closed by the server already: what the code below checks
            break
    code, reason = await close_code(connection)
    assert code == 4415 and "over the limit" in reason, (code, reason)
    await assert_no_ghost(server, healthy, client_id, api_key, "huge", source)


async def test_an_agent_vanishing_right_after_its_hello_leaves_no_ghost(server, healthy):
    client_id, api_key = await attacker(server, "Vanisher")
    source = fresh_address()
    for _ in range(10):  # the race is lost on some tries only
        connection = await connect_from(server.url, source)
        await connection.send(hello(api_key, "gone"))
        connection.transport.abort()
        took, answer = await welcomed(server.url, api_key, "gone", source)
        assert answer == (None, "welcome"), f"camera still refused {took:.2f} s after an abort: {answer}"
    await assert_no_ghost(server, healthy, client_id, api_key, "gone", source)


async def test_media_sent_before_the_welcome_leaves_no_ghost(server, healthy):
    client_id, api_key = await attacker(server, "Hasty")
    source = fresh_address()
    for _ in range(3):
        connection = await connect_from(server.url, source)
        await connection.send(hello(api_key, "hasty"))
        # no wait for the welcome
        await connection.send(b"\x00" * 16 + b"\x00\x00\x00\x01\x65" + b"\xab" * 5000)
        # The media races the welcome: it meets the 4 KiB limit of an unauthenticated connection (1009), or
        # the limit has already risen and it is taken as (undecodable) media. Either is fine; a ghost is not.
        code, _ = await close_code(connection, timeout=1)
        assert code in (1009, None)
        await connection.close()
        took, answer = await welcomed(server.url, api_key, "hasty", source)
        assert answer == (None, "welcome"), f"camera still refused {took:.2f} s after it left: {answer}"
    await assert_no_ghost(server, healthy, client_id, api_key, "hasty", source)


async def test_hostile_hellos_get_4400_with_a_short_reason_and_count_as_failures(server):
    source = fresh_address()
    wrong_key = keys.generate()
    for name, message in hostile_hellos(wrong_key).items():
        code, reason = await first_answer(server.url, message, source)
        assert code == 4400, (name, code, reason)
        assert 0 < len(reason.encode()) <= MAX_REASON_BYTES, (name, reason)
    # Four failures counted: six wrong keys make the ten that max_auth_failures allows, the next is refused.
    for _ in range(6):
        assert (await first_answer(server.url, hello(wrong_key), source))[0] == 4401
    code, reason = await first_answer(server.url, hello(wrong_key), source)
    assert code == 4429 and "retry in" in reason, (code, reason)


async def test_a_4_mib_control_message_is_refused_with_1009(server):
    _, api_key = await attacker(server, "Chatty")
    connection = await streaming(server, api_key, "chatty", fresh_address())
    padding = protocol.MAX_MEDIA_BYTES - 100
    await connection.send(json.dumps({"type": "note", "padding": "x" * padding}))
    code, _ = await close_code(connection)
    assert code == 1009


def http_status(address: str) -> int:
    try:
        with urllib.request.urlopen(address, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_a_clip_link_with_a_5000_digit_expiry_is_403_without_a_traceback(server):
    async def incident_with_clip() -> int | None:
        return next((i["id"] for i in await server.cli.json("incidents", "list") if i["clip"]), None)

    # The healthy camera's motion gives an incident with a clip: the signature check then runs on `exp`.
    incident_id = await eventually(incident_with_clip, timeout=20, interval=0.3)
    status = await asyncio.to_thread(http_status, f"{server.http}/clips/{incident_id}?exp={'9' * 5000}&sig=x")
    assert status == 403
    assert (await asyncio.to_thread(http_status, f"{server.http}/healthz")) == 200
    assert "Traceback" not in server.log()


async def test_a_valid_key_is_welcomed_from_an_address_that_sent_20_wrong_keys(server):
    _, api_key = await attacker(server, "Neighbour")
    source = fresh_address()
    answers = [(await first_answer(server.url, hello(keys.generate()), source))[0] for _ in range(20)]
    assert answers[:10] == [4401] * 10 and set(answers[10:]) == {4429}, answers
    assert (await first_answer(server.url, hello(keys.generate()), source))[0] == 4429
    assert await first_answer(server.url, hello(api_key, "till"), source) == (None, "welcome")


async def test_hellos_that_time_out_do_not_count_as_failures(server):
    source = fresh_address()
    silent = [await connect_from(server.url, source) for _ in range(15)]
    codes = await asyncio.gather(*(close_code(connection) for connection in silent))
    assert {code for code, _ in codes} == {4408}, codes
    assert (await first_answer(server.url, hello(keys.generate()), source))[0] == 4401


def _raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
async def test_1100_idle_sockets_do_not_keep_a_legitimate_agent_out(tmp_path, tls):
    _raise_open_file_limit()
    pair = write_self_signed("127.0.0.1", tmp_path / "tls") if tls else None
    # A long hello timeout (the TLS handshake gets as long): idle sockets do not go away by themselves.
    env = {"VIGINT_SERVER_AUTH_TIMEOUT_SECONDS": "30"}
    serve = await ServeProcess(tmp_path, env, nofile=1024, tls=pair).start()
    try:
        _, _, api_key = await serve.cli.create_client("Legit")
        # Over TLS the idle sockets all come from one host: each would hold a descriptor through its TLS
        # handshake timeout if they were counted only once encrypted.
        sources = (["127.0.0.9"] * 1100 if tls else
                   ["127.0.0.1"] * 20 + ["127.0.0.2"] * 100 + [f"127.0.0.{3 + i % 198}" for i in range(980)])
        sockets = await open_idle_sockets(serve.port, sources)
        try:
            began = time.monotonic()
            trust = {"ssl": ssl.create_default_context(cafile=pair[0])} if tls else {}
            connection = await connect_from(serve.url, **trust)
            await connection.send(hello(api_key, "door"))
            welcome = json.loads(await asyncio.wait_for(connection.recv(), 10))
            took = time.monotonic() - began
            await connection.close()
        finally:
            for sock in sockets:
                sock.close()
        assert welcome["type"] == "welcome" and took < 1.0, f"welcomed after {took:.2f} s"
    finally:
        assert await serve.stop() == 0
    log = serve.log()
    assert "Traceback" not in log and len(log.splitlines()) < 50, log[-3000:]


async def serve_once(folder: Path, env: dict[str, str], timeout: float = 10) -> tuple[int | None, str]:
    """Run `vigint serve` expecting it to refuse to start; return its exit code (None if it served) and
    stderr."""
    serve = ServeProcess(folder, env)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", "0", "--db", str(serve.db),
        cwd=folder, env=serve.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None, "it kept serving"
    return process.returncode, err.decode()


@pytest.mark.parametrize("secret_file, env", [("", {}), ("0123456789", {}),
                                              (None, {"VIGINT_ALERTS_LINK_SECRET": "short"})],
                         ids=["empty file", "10-character file", "short setting"])
async def test_an_empty_or_short_link_secret_stops_serve_with_one_line(tmp_path, secret_file, env):
    if secret_file is not None:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "link-secret").write_text(secret_file)
    code, err = await serve_once(tmp_path, env)
    assert code == 1, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vigint: error:"), err
    assert "link-secret" in lines[0].lower().replace("_", "-"), err


async def test_the_healthy_stream_kept_real_time_through_every_attack(server, healthy):
    rss_growth = server.rss() - healthy.rss_after_warmup
    await asyncio.to_thread(healthy.stop)
    assert healthy.error is None, f"the healthy stream broke: {healthy.error!r}"
    sent = healthy.frames_sent
    assert sent > 0

    async def decoded() -> int:
        return (await server.cli.usage(healthy.client_id))["frames_decoded"]

    await eventually(decoded, lambda frames: frames == sent, timeout=5, interval=0.2)
    assert healthy.max_ping < MAX_PING_SECONDS, f"slowest ping {healthy.max_ping * 1000:.0f} ms"
    assert rss_growth < MAX_RSS_GROWTH, f"server RSS grew {rss_growth / MiB:.0f} MiB"
    assert "Traceback" not in server.log(), server.log()[-5000:]


async def test_sigterm_after_the_attacks_exits_0_within_the_drain_and_shutdown_timeouts(server):
    began = time.monotonic()
    code = await server.stop(timeout=DRAIN_SECONDS + SHUTDOWN_TIMEOUT + 1)
    assert code == 0, f"exit code {code} after {time.monotonic() - began:.1f} s"
