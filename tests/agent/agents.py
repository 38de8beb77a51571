"""Running the real `vigint agent` against a real server in tests: its .env, its log, what it delivered
(helpers.py starts and stops its process)."""

import asyncio
from pathlib import Path

TESTS = Path(__file__).parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"


def server_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}"


def write_env(directory: Path, api_key: str, server) -> None:
    env = directory / ".env"
    env.write_text(f"# from the operator\nVIGINT_API_KEY={api_key}\nVIGINT_SERVER_URL={server_url(server)}\n")
    env.chmod(0o600)


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
    session = server.streams.of_client(client_id).get(camera)
    return session.analysis.frames_decoded if session else 0


async def stop_when_done(agent, timeout: float = 60) -> tuple[int, str]:
    _, err = await asyncio.wait_for(agent.communicate(), timeout)
    return agent.returncode, err.decode()

