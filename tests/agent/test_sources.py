"""The agent's sources: files, RTSP cameras and other codecs become H.264 the server decodes."""

import shutil
import subprocess

import av
import pytest
from agents import SYSTEM_PYTHON, TESTS, frames_of, server_url, stop_when_done, write_env
from footage import vcl_payloads_annexb, vcl_payloads_avcc, write_video_file
from helpers import add_client, eventually, start_agent, stop


async def test_an_agent_configured_by_env_streams_every_frame_of_a_file(start, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    frames = write_video_file(tmp_path / "shop.mp4", 3)
    write_env(tmp_path, api_key, server)
    agent = await start_agent(tmp_path, "--source", "shop.mp4")
    code, err = await stop_when_done(agent)
    assert code == 0, err
    await eventually(lambda: not server.streams.of_client(client_id))
    assert server.metrics.frames_decoded == frames
    assert server.metrics.decode_errors == 0
    assert not list((tmp_path / "spool").rglob("*.gop"))  # all of it went live: nothing left to send twice


async def test_h264_passes_through_byte_identical(start, tmp_path):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    path = tmp_path / "shop.mp4"
    frames = write_video_file(path, 2)
    with av.open(str(path)) as container:
        expected = [vcl_payloads_avcc(bytes(p)) for p in container.demux(video=0) if p.size]
    agent = await start_agent(tmp_path, "--source", str(path), "--camera", "till", "--loop",
                              "--api-key", api_key, "--api-url", server_url(server))
    await eventually(lambda: len(server.streams.of_client(client_id).get("till").analysis.packets) >= frames
                     if server.streams.of_client(client_id).get("till") else False, timeout=20)
    packets = server.streams.of_client(client_id)["till"].analysis.packets.packets()
    received = [vcl_payloads_annexb(p.data) for p in packets]
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
    packets = server.streams.of_client(client_id)["b"].analysis.packets.packets()
    shown = sorted(packet.pts for packet in packets)[:-3]  # the newest P-frame's B-frames may be on their way
    steps = [later - earlier for earlier, later in zip(shown, shown[1:])]
    assert all(63_000 <= step <= 70_000 for step in steps), steps  # 15 fps in presentation order, none missing
    assert all(earlier.dts < later.dts for earlier, later in zip(packets, packets[1:]))
    assert any(packet.pts > packet.dts for packet in packets)  # B-frames: shown later than decoded
    assert server.metrics.decode_errors == 0
    assert (await stop(agent))[0] == 0


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

