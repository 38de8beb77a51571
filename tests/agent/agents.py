"""Running the real `vigint agent` against a real server in tests: its .env, its process, its log."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import vigint

TESTS = Path(__file__).parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"


def server_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}"


def write_env(directory: Path, api_key: str, server) -> None:
    env = directory / ".env"
    env.write_text(f"# from the operator\nVIGINT_API_KEY={api_key}\nVIGINT_SERVER_URL={server_url(server)}\n")
    env.chmod(0o600)


async def start_agent(cwd: Path, *args: str) -> asyncio.subprocess.Process:
    """Start `vigint agent ARGS` in `cwd`, with no VIGINT_ variable inherited from the test's environment.

    It runs the vigint these tests import: a relative PYTHONPATH (`PYTHONPATH=src`) would not hold in `cwd`,
    and the agent would be whatever vigint the interpreter has installed.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("VIGINT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(vigint.__file__).parent.parent), env.get("PYTHONPATH", "")])
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
    session = server.streams.of_client(client_id).get(camera)
    return session.analysis.frames_decoded if session else 0


async def stop_when_done(agent, timeout: float = 60) -> tuple[int, str]:
    _, err = await asyncio.wait_for(agent.communicate(), timeout)
    return agent.returncode, err.decode()

