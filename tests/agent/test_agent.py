import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import av
import pytest
from conftest import add_client, eventually
from media import vcl_payloads_annexb, vcl_payloads_avcc, write_video_file

from vigint.admin.cert import write_self_signed
from vigint.agent.settings import AgentSettings, Camera
from vigint.agent.status import CameraStatus
from vigint.agent.supervisor import run_camera

TESTS = Path(__file__).parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"


def server_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}"


def write_env(directory: Path, api_key: str, server) -> None:
    env = directory / ".env"
    env.write_text(f"# from the operator\nVIGINT_API_KEY={api_key}\nVIGINT_SERVER_URL={server_url(server)}\n")
    env.chmod(0o600)


async def start_agent(cwd: Path, *args: str) -> asyncio.subprocess.Process:
    """Start `vigint agent ARGS` in `cwd`, with no VIGINT_ variable inherited from the test's environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("VIGINT_")}
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "vigint", "agent", *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def stop(agent: asyncio.subprocess.Process) -> tuple[int, str]:
    if agent.returncode is None:
        agent.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(agent.communicate(), 30)
    return agent.returncode, err.decode()


async def read_log_until(agent: asyncio.subprocess.Process, text: str, timeout: float = 20) -> str:
    """Read the agent's stderr up to and including the first line holding `text`; return what was read."""
    lines = []
    async with asyncio.timeout(timeout):
        while text not in (lines or [""])[-1]:
            line = (await agent.stderr.readline()).decode()
            assert line, f"the agent exited without logging {text!r}:\n{''.join(lines)}"
            lines.append(line)
    return "".join(lines)


def frames_of(server, client_id: int, camera: str) -> int:
    session = server.sessions(client_id).get(camera)
    return session.analysis.frames_decoded if session else 0


async def test_an_agent_configured_by_env_streams_every_frame_of_a_file(start, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    frames = write_video_file(tmp_path / "shop.mp4", 3)
    write_env(tmp_path, api_key, server)
    agent = await start_agent(tmp_path, "--source", "shop.mp4")
    code, err = await stop_when_done(agent)
    assert code == 0, err
    await eventually(lambda: not server.sessions(client_id))
    assert server.metrics.frames_decoded == frames
    assert server.metrics.decode_errors == 0


async def stop_when_done(agent, timeout: float = 60) -> tuple[int, str]:
    _, err = await asyncio.wait_for(agent.communicate(), timeout)
    return agent.returncode, err.decode()


async def test_h264_passes_through_byte_identical(start, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    path = tmp_path / "shop.mp4"
    frames = write_video_file(path, 2)
    with av.open(str(path)) as container:
        expected = [vcl_payloads_avcc(bytes(p)) for p in container.demux(video=0) if p.size]
    agent = await start_agent(tmp_path, "--source", str(path), "--camera", "till", "--loop",
                              "--api-key", api_key, "--api-url", server_url(server))
    await eventually(lambda: len(server.sessions(client_id).get("till").analysis.packets) >= frames
                     if server.sessions(client_id).get("till") else False, timeout=20)
    received = [vcl_payloads_annexb(p.data) for p in server.sessions(client_id)["till"].analysis.packets.packets()]
    assert received[:frames] == expected
    assert (await stop(agent))[0] == 0


@pytest.mark.parametrize("codec, suffix", [("mpeg4", "mp4"), ("mjpeg", "mkv")])
async def test_other_codecs_are_transcoded_and_decode(start, tmp_path, codec, suffix):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    frames = write_video_file(tmp_path / f"cam.{suffix}", 2, codec)
    write_env(tmp_path, api_key, server)
    code, err = await stop_when_done(await start_agent(tmp_path, "--source", f"cam.{suffix}"))
    assert code == 0, err
    await eventually(lambda: server.metrics.frames_decoded == frames)
    assert server.metrics.decode_errors == 0


async def test_b_frames_decode_in_presentation_order(start, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    write_video_file(tmp_path / "b.mp4", 4, bframes=2)
    write_env(tmp_path, api_key, server)
    agent = await start_agent(tmp_path, "--source", "b.mp4", "--loop")
    await eventually(lambda: frames_of(server, client_id, "b") >= 30, timeout=20)
    packets = server.sessions(client_id)["b"].analysis.packets.packets()
    shown = sorted(packet.pts for packet in packets)[:-3]  # the newest P-frame's B-frames may be on their way
    steps = [later - earlier for earlier, later in zip(shown, shown[1:])]
    assert all(63_000 <= step <= 70_000 for step in steps), steps  # 15 fps in presentation order, none missing
    assert all(earlier.dts < later.dts for earlier, later in zip(packets, packets[1:]))
    assert any(packet.pts > packet.dts for packet in packets)  # B-frames: shown later than decoded
    assert server.metrics.decode_errors == 0
    assert (await stop(agent))[0] == 0


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


async def test_revoked_key_stops_the_agent_with_a_clear_message(start, tmp_path, db_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    write_env(tmp_path, api_key, server)
    agent = await start_agent(tmp_path, "--source", "test", "--camera", "a", "--source", "test", "--camera", "b")
    await eventually(lambda: frames_of(server, client_id, "a") > 3 and frames_of(server, client_id, "b") > 3,
                     timeout=20)
    revoke = await asyncio.create_subprocess_exec(sys.executable, "-m", "vigint", "client", "revoke",
                                                  "--client-id", str(client_id), "--db", str(db_path))
    assert await revoke.wait() == 0
    code, err = await stop_when_done(agent, timeout=30)
    assert code == 1
    assert err.strip().endswith(f"vigint: error: the server refused the API key {api_key[:10]}… (invalid, revoked "
                                "or expired): contact your Vigint operator")
    assert server.metrics.auth_failures["invalid_key"] <= 1  # at most one further attempt, for both cameras
    assert api_key not in err


async def test_rtsp_camera_streams_through_the_agent(start, tmp_path):
    if not shutil.which(SYSTEM_PYTHON) or subprocess.run(
            [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
            capture_output=True).returncode:
        pytest.skip("needs GStreamer's RTSP server: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad")
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    write_video_file(tmp_path / "camera.mp4", 20)
    rtsp = subprocess.Popen([SYSTEM_PYTHON, str(TESTS / "rtsp_server.py"), str(tmp_path / "camera.mp4")],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(rtsp.stdout.readline())
        write_env(tmp_path, api_key, server)
        agent = await start_agent(tmp_path, "--source", f"rtsp://viewer:secret@127.0.0.1:{port}/camera",
                                  "--camera", "door")
        await eventually(lambda: frames_of(server, client_id, "door") >= 10, timeout=30)
        assert server.metrics.decode_errors == 0
        code, err = await stop(agent)
        assert code == 0 and "secret" not in err
    finally:
        rtsp.terminate()
        rtsp.wait(timeout=10)


async def test_a_failing_source_leaves_the_other_cameras_streaming(start, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    write_video_file(tmp_path / "doomed.mp4", 1)  # short: the pass under way when it is deleted ends soon
    write_env(tmp_path, api_key, server)
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        dead = f"rtsp://127.0.0.1:{closed_port.getsockname()[1]}/nothing"
    agent = await start_agent(tmp_path, "--source", "test", "--camera", "good", "--source", dead, "--camera", "dead",
                              "--source", "doomed.mp4", "--camera", "doomed", "--loop")
    await eventually(lambda: frames_of(server, client_id, "doomed") > 3, timeout=20)
    (tmp_path / "doomed.mp4").unlink()
    logged = await read_log_until(agent, "camera doomed: cannot open")  # its pass ended; reopening it failed
    before = server.metrics.frames_decoded
    await eventually(lambda: server.metrics.frames_decoded > before + 20, timeout=20)
    assert "good" in server.sessions(client_id) and "dead" not in server.sessions(client_id)
    assert "doomed" not in server.sessions(client_id)
    code, err = await stop(agent)
    assert code == 0
    assert "camera dead: cannot open rtsp://127.0.0.1" in logged + err and "camera doomed: cannot open" in logged


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


async def test_a_slow_link_drops_whole_gops_and_never_breaks_decoding(start, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    # A 10 Mbit/s camera with a keyframe every 8 frames fills the agent's 512 KiB of socket buffers in under
    # a second, so whole GOPs are dropped within seconds, not after 12 s of queueing.
    write_video_file(tmp_path / "busy.mp4", 4, width=640, height=360, gop=8, bitrate=8_000_000, busy=True)
    proxy = await slow_proxy(server.port, 200_000)  # 1.6 Mbit/s
    proxy_port = proxy.sockets[0].getsockname()[1]
    settings = AgentSettings(api_key=api_key, server_url=f"ws://127.0.0.1:{proxy_port}/v1/stream",
                             cameras=(Camera(str(tmp_path / "busy.mp4"), "slow"),), loop=True,
                             max_backlog_seconds=1.0)
    status, stopping = CameraStatus("slow", "busy.mp4"), asyncio.Event()
    camera = asyncio.create_task(run_camera(settings.cameras[0], settings, status, stopping))
    try:
        await eventually(lambda: status.dropped_gops >= 2, timeout=40)
        await eventually(lambda: frames_of(server, client_id, "slow") > 0, timeout=20)
        assert server.metrics.decode_errors == 0
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
    assert code == 1 and "TLS certificate is not trusted" in err and "--ca-cert" in err
    agent = await start_agent(tmp_path, "--source", "test", "--api-key", api_key, "--api-url", url,
                              "--ca-cert", str(cert))
    await eventually(lambda: frames_of(server, client_id, "test-pattern") > 3, timeout=20)
    assert (await stop(agent))[0] == 0
