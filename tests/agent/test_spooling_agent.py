"""The real `vigint agent` with no server to reach: its video goes to the spool, survives a crash, and reaches the
server once it is back, even under a camera name no longer configured."""

import stat

from agents import read_log_until, write_env
from footage import write_video_file
from helpers import add_client, eventually, free_port, start_agent, stop

from vigint import keys


def gop_files(directory) -> set[str]:
    return {path.name for path in directory.glob("*.gop")}


async def test_an_agent_that_cannot_reach_the_server_spools_its_video_and_keeps_it_across_a_crash(tmp_path):
    write_video_file(tmp_path / "door.mp4", 2, fps=15, gop=5)  # a GOP every third of a second
    env = tmp_path / ".env"
    env.write_text(f"VIGINT_API_KEY={keys.generate()}\nVIGINT_SERVER_URL=ws://127.0.0.1:{free_port()}\n")
    env.chmod(0o600)
    spooled = tmp_path / "spool" / "door"  # beside the .env
    args = ("--source", "door.mp4", "--loop", "--camera", "door")
    agent = await start_agent(tmp_path, *args)
    await eventually(lambda: len(gop_files(spooled)) >= 4, timeout=20)
    agent.kill()  # no chance to tidy up
    await agent.wait()
    before_crash = gop_files(spooled)
    (spooled / f"{2**62:020d}-{2**62 + 1:020d}.tmp").write_bytes(b"VIGINT-GOP 1\n\0\0")  # a write cut short

    agent = await start_agent(tmp_path, *args)
    log = await read_log_until(agent, "MB, ")
    assert "GOPs of recorded video waiting" in log and "did not stop cleanly" in log and "behind" in log
    assert before_crash <= gop_files(spooled) and not list(spooled.glob("*.tmp"))
    await eventually(lambda: len(gop_files(spooled)) > len(before_crash), timeout=20)  # and spools on
    assert (await stop(agent))[0] == 0
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700  # footage is private


async def test_the_spool_of_a_camera_no_longer_configured_is_sent_under_its_own_name(start, tmp_path):
    write_video_file(tmp_path / "door.mp4", 2, fps=15, gop=5)
    env = tmp_path / ".env"
    env.write_text(f"VIGINT_API_KEY={keys.generate()}\nVIGINT_SERVER_URL=ws://127.0.0.1:{free_port()}\n")
    env.chmod(0o600)
    renamed = tmp_path / "spool" / "old-door"
    agent = await start_agent(tmp_path, "--source", "door.mp4", "--loop", "--camera", "old-door")
    await eventually(lambda: len(gop_files(renamed)) >= 3, timeout=20)  # recorded while the server was away
    agent.kill()
    await agent.wait()

    server = await start()  # the server is back; the camera is now called "door"
    client_id, _, api_key = await add_client(server.store)
    write_env(tmp_path, api_key, server)
    agent = await start_agent(tmp_path, "--source", "door.mp4", "--loop", "--camera", "door")
    await eventually(lambda: not gop_files(renamed), timeout=30)
    assert server.metrics.backfill_frames_decoded > 0
    code, err = await stop(agent)
    assert code == 0 and "camera old-door is no longer configured: its recorded footage is sent" in err
    assert "old-door: backfill complete" in err
    agent = await start_agent(tmp_path, "--source", "door.mp4", "--loop", "--camera", "door")
    await read_log_until(agent, "camera door: streaming to")
    code, err = await stop(agent)
    assert code == 0 and "old-door" not in err  # sent: not announced again
