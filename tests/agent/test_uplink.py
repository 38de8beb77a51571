"""The agent's uplink: reconnection, refusal, slow links and TLS."""

import asyncio
import random
import signal
import socket
import sys
import time

import pytest
from agents import frames_of, read_log_until, stop_when_done, write_env
from footage import write_video_file
from helpers import add_client, eventually, start_agent, stop

from vigint import keys
from vigint.agent.backoff import Backoff
from vigint.agent.settings import AgentSettings, Camera, stream_url
from vigint.agent.spool import Spool
from vigint.agent.status import CameraStatus
from vigint.agent.supervisor import run_camera
from vigint.agent.uplink import Refused, reconnect_delay, run_connection
from vigint.cli.cert import write_self_signed
from vigint.protocol import CloseCode


async def test_agent_reconnects_after_a_server_restart(start, tmp_path, db_path):
    first = await start()
    client_id, _, api_key = await add_client(first.store)
    write_env(tmp_path, api_key, first)
    agent = await start_agent(tmp_path, "--source", "test")
    await eventually(lambda: frames_of(first, client_id, "test-pattern") > 3, timeout=20)
    port = first.port
    await first.stop()
    second = await start(port=port)
    await eventually(lambda: frames_of(second, client_id, "test-pattern") > 3, timeout=20)
    code, err = await stop(agent)
    assert code == 0 and "reconnecting in" in err


async def vigint_cli(*args: str) -> int:
    command = await asyncio.create_subprocess_exec(sys.executable, "-m", "vigint", *args)
    return await command.wait()


@pytest.mark.slow  # two agents revoked, restarted and reactivated
async def test_a_revoked_agent_waits_and_streams_again_once_its_client_is_reactivated(start, tmp_path, db_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    write_env(tmp_path, api_key, server)
    args = ("--source", "test", "--camera", "a", "--source", "test", "--camera", "b", "--refused-retry-seconds", "1")
    agent = await start_agent(tmp_path, *args)
    both = lambda: frames_of(server, client_id, "a") > 3 and frames_of(server, client_id, "b") > 3  # noqa: E731
    await eventually(both, timeout=20)
    assert await vigint_cli("client", "revoke", "--client-id", str(client_id), "--db", str(db_path)) == 0
    logged = await read_log_until(agent, "key refused by the server")
    assert "retrying every 1 s; ask your Vigint operator" in logged
    await eventually(lambda: server.metrics.auth_failures["invalid_key"] >= 3, timeout=20)  # tried again, refused
    assert not server.streams.of_client(client_id) and agent.returncode is None
    assert not list((tmp_path / "spool").rglob("*.gop"))  # a revoked client's footage is not kept (GOPs of 2 s)

    # A restart while revoked (a reboot): the key worked before, so it waits too, rather than stopping for good.
    assert (await stop(agent))[0] == 0
    agent = await start_agent(tmp_path, *args)
    logged = await read_log_until(agent, "key refused by the server")
    assert await vigint_cli("client", "reactivate", "--client-id", str(client_id), "--db", str(db_path)) == 0
    reactivated = time.monotonic()
    await eventually(both, timeout=60)  # the same .env: the streams closed at the revocation are new ones
    back_after = time.monotonic() - reactivated
    failures = server.metrics.auth_failures["invalid_key"]
    code, err = await stop(agent)
    assert code == 0 and back_after < 5, (back_after, logged + err)
    assert (logged + err).count("key refused by the server") == 1 and "accepts the API key" in err
    assert failures < 12  # one hello a second for the whole agent, not one per camera
    assert api_key not in logged + err and api_key not in (tmp_path / "spool" / ".welcomed-key").read_text()


async def test_a_key_refused_at_the_first_start_stops_the_agent_with_a_clear_message(start, tmp_path):
    server = await start()
    mistyped = keys.generate()  # well formed, unknown to the server
    write_env(tmp_path, mistyped, server)
    agent = await start_agent(tmp_path, "--source", "test", "--camera", "a", "--source", "test", "--camera", "b",
                              "--refused-retry-seconds", "1")
    code, err = await stop_when_done(agent, timeout=30)
    assert code == 3  # its own exit code: systemd does not start it again (RestartPreventExitStatus=3)
    assert err.strip().endswith(f"vigint: error: the server refused the API key {mistyped[:10]}… (invalid, revoked "
                                "or expired): contact your Vigint operator")
    assert server.metrics.auth_failures["invalid_key"] <= 2  # one hello per camera, no retry
    assert mistyped not in err


async def slow_proxy(target_port: int, bytes_per_second: int) -> asyncio.Server:
    """A loopback TCP proxy that forwards agent→server traffic at `bytes_per_second`."""
    async def pipe(reader, writer, rate: int | None):
        try:
            while data := await reader.read(4096 if rate else 65536):
                writer.write(data)
                await writer.drain()
                if rate:
                    await asyncio.sleep(len(data) / rate)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_reader, server_writer, bytes_per_second),
                             pipe(server_reader, client_writer, None))

    listener = socket.socket()
    # A small receive buffer makes the slowness reach the agent at once, not after megabytes of buffering.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    listener.bind(("127.0.0.1", 0))
    return await asyncio.start_server(handle, sock=listener)


@pytest.mark.slow  # 5 s of real time through a throttled link (CI runs pytest -m slow)
async def test_a_slow_link_spools_whole_gops_and_never_breaks_decoding(start, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    # A 10 Mbit/s camera with a keyframe every 8 frames fills the agent's 512 KiB of socket buffers in under
    # a second, so whole GOPs go to the spool within seconds, not after 12 s of queueing.
    write_video_file(tmp_path / "busy.mp4", 4, width=640, height=360, gop=8, bitrate=8_000_000, busy=True)
    proxy = await slow_proxy(server.port, 200_000)  # 1.6 Mbit/s
    proxy_port = proxy.sockets[0].getsockname()[1]
    settings = AgentSettings(api_key=api_key, server_url=f"ws://127.0.0.1:{proxy_port}/v1/stream",
                             cameras=(Camera(str(tmp_path / "busy.mp4"), "slow"),), loop=True,
                             max_backlog_seconds=1.0)
    status, stopping, spool = CameraStatus("slow", "busy.mp4"), asyncio.Event(), Spool(tmp_path / "spool", 100_000_000)
    camera = asyncio.create_task(run_camera(settings.cameras[0], settings, status, stopping, spool))
    try:
        await eventually(lambda: spool.stats("slow").gops >= 2, timeout=40)
        await eventually(lambda: frames_of(server, client_id, "slow") > 0, timeout=20)
        assert server.metrics.decode_errors == 0 and spool.stats("slow").dropped_gops == 0
    finally:
        stopping.set()
        await asyncio.wait_for(camera, 20)
        proxy.close()


async def test_agent_trusts_a_self_signed_server_only_with_ca_cert(start, tmp_path):
    cert, key = write_self_signed("127.0.0.1", tmp_path / "tls")
    server = await start(tls_cert=cert, tls_key=key)
    client_id, _, api_key = await add_client(server.store)
    url = f"wss://127.0.0.1:{server.port}"
    untrusted = await start_agent(tmp_path, "--source", "test", "--api-key", api_key, "--api-url", url)
    code, err = await stop_when_done(untrusted, timeout=30)
    assert code == 3 and "TLS certificate is not trusted" in err and "pass --ca-cert" in err
    agent = await start_agent(tmp_path, "--source", "test", "--api-key", api_key, "--api-url", url,
                              "--ca-cert", str(cert))
    await eventually(lambda: frames_of(server, client_id, "test-pattern") > 3, timeout=20)
    assert (await stop(agent))[0] == 0


def connect_once(server_url: str, ca_cert=None):
    """Connect as the agent's live connection does; a connection that opens fails the test."""
    settings = AgentSettings(api_key=keys.generate(), server_url=stream_url(server_url), cameras=(), ca_cert=ca_cert)

    async def session(connection):
        pytest.fail(f"connected to {server_url}")

    return asyncio.wait_for(run_connection(settings, Backoff(), session), 30)


async def refusal_of(server_url: str, ca_cert=None) -> str:
    """Return the message that stops an agent connecting to `server_url`."""
    with pytest.raises(Refused) as refused:
        await connect_once(server_url, ca_cert)
    return str(refused.value)


async def test_a_scheme_for_the_wrong_side_of_tls_says_which_to_use(start, tmp_path):
    cert, key = write_self_signed("127.0.0.1", tmp_path / "tls")
    plain, secure = await start(), await start(tls_cert=cert, tls_key=key)
    assert await refusal_of(f"wss://127.0.0.1:{plain.port}") == (
        f"the server at 127.0.0.1:{plain.port} speaks plain ws://, not TLS: use ws://127.0.0.1:{plain.port} "
        "or enable TLS on the server (vigint serve --tls-cert … --tls-key …)")
    assert await refusal_of(f"ws://127.0.0.1:{secure.port}") == (
        f"the server at 127.0.0.1:{secure.port} speaks TLS: use wss://127.0.0.1:{secure.port}")


async def test_a_port_that_drops_every_connection_is_retried_with_a_reason():
    async def drop(reader, writer):
        writer.transport.abort()  # a reset, as from a firewall or a server that died mid-handshake

    listener = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        for scheme in ("ws", "wss"):
            delay, detail = await connect_once(f"{scheme}://127.0.0.1:{port}")
            assert delay > 0 and detail.startswith("server unreachable: ") and len(detail) > len("server unreachable: ")
    finally:
        listener.close()


async def test_a_certificate_for_another_name_says_which_names_it_holds(start, tmp_path):
    cert, key = write_self_signed("127.0.0.1", tmp_path / "tls")
    server = await start(tls_cert=cert, tls_key=key)
    mismatch = await refusal_of(f"wss://localhost:{server.port}", ca_cert=cert)
    assert mismatch == (f"the server's TLS certificate is for 127.0.0.1, not localhost (the URL's host): use "
                        f"wss://127.0.0.1:{server.port}, or a certificate made for localhost "
                        "(vigint cert --host localhost)")
    other, _ = write_self_signed("127.0.0.1", tmp_path / "another")  # the operator made a new pair since
    stale = await refusal_of(f"wss://127.0.0.1:{server.port}", ca_cert=other)
    assert "not trusted" in stale and f"not made or signed by --ca-cert {other}" in stale
    assert "pass --ca-cert" not in stale  # it was passed



def test_a_node_going_away_is_reconnected_to_at_once_whatever_failed_before():
    backoff = Backoff(base=1, cap=30, rng=random.Random(3))
    for _ in range(6):
        backoff.next_delay(now=0)  # a camera that has had a bad day: the next backoff is 16-30 s
    after_drain = [reconnect_delay(backoff, CloseCode.GOING_AWAY, "", now=1) for _ in range(20)]
    assert max(after_drain) <= 1 and len(set(after_drain)) > 1  # jittered, so a node's agents spread out
    assert reconnect_delay(backoff, CloseCode.TRY_AGAIN_LATER, "this server is draining; try again", now=1) >= 15
    assert reconnect_delay(backoff, CloseCode.TOO_MANY_FAILURES, "retry in 45 s", now=1) >= 45


@pytest.mark.slow  # three agents started and stopped
async def test_an_agent_stopped_and_started_again_sends_nothing_twice(start, tmp_path):
    """What went out live is not spooled at a stop, so the next start has no backfill to send: the server would
    take it for footage recorded while the camera was offline."""
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    write_env(tmp_path, api_key, server)
    write_video_file(tmp_path / "door.mp4", 4)  # a GOP every 2 s
    for run in range(3):
        agent = await start_agent(tmp_path, "--source", "door.mp4", "--loop", "--camera", "door")
        before = server.metrics.frames_decoded
        await eventually(lambda: server.metrics.frames_decoded > before + 20 + 7 * run, timeout=20)  # mid-GOP
        agent.send_signal(signal.SIGTERM)
        code, err = await stop_when_done(agent, timeout=20)
        assert code == 0, err
        assert not list((tmp_path / "spool").rglob("*.gop")), err
    assert server.metrics.backfill_frames_decoded == 0
    assert not [incident for incident in await server.store.list_incidents(client_id) if incident.offline]
