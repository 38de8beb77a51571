"""The agent's supervisor: one camera's failure leaves the others streaming."""

import socket

from agents import frames_of, read_log_until, write_env
from footage import write_video_file
from helpers import add_client, eventually, start_agent, stop


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
    assert "good" in server.streams.of_client(client_id) and "dead" not in server.streams.of_client(client_id)
    assert "doomed" not in server.streams.of_client(client_id)
    code, err = await stop(agent)
    assert code == 0
    assert "camera dead: cannot open rtsp://127.0.0.1" in logged + err and "camera doomed: cannot open" in logged

