"""The systemd units in scripts/: valid for systemd, and working when installed as their headers say.

The install steps are followed one by one under a temporary root (every absolute path moves under it, and
the executable is this checkout's vigint); `systemctl enable --now` runs the unit's ExecStart as systemd
would (its working directory, environment files and variables), on ports of the test's own.
"""

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import vigint
from vigint import keys

SCRIPTS = Path(__file__).parent.parent / "scripts"
UNITS = sorted(SCRIPTS.glob("*.service"))
STEP = re.compile(r"^#   (sudo .*?)(?:\s+\(.*\))?$")  # an install step, less a note in brackets after it


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Return each `Key=value` of a unit file's [Service] section (a key may repeat)."""
    settings, section = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def install_steps(path: Path) -> list[list[str]]:
    """Return the install steps in a unit's header, each as its arguments after `sudo [-u USER]`."""
    steps = [shlex.split(match[1]) for line in path.read_text().splitlines() if (match := STEP.match(line))]
    return [step[3:] if step[1] == "-u" else step[1:] for step in steps]


class Host:
    """A machine's root under a temporary folder, where the install steps are followed."""

    def __init__(self, root: Path, files: dict[str, Path], names: dict[str, str]):
        self.root, self.files, self.names = root, files, names  # files: the steps' sources; names: site names

    def path(self, path: str) -> Path:
        return self.root / path.lstrip("/") if path.startswith("/") else self.files[path]

    def argument(self, word: str) -> str:
        word = self.names.get(word, word)
        return str(self.root / word.lstrip("/")) if word.startswith("/") else word

    async def follow(self, step: list[str], edit=None) -> asyncio.subprocess.Process | None:
        """Do one install step as root would; `edit` changes the unit on `systemctl edit`. Returns the service
        that `systemctl enable --now` started."""
        if step[0] == "useradd":
            self.path(step[step.index("--home") + 1]).mkdir(parents=True)
        elif step[0] == "install":
            mode, source, target = int(step[step.index("-m") + 1], 8), self.path(step[-2]), self.path(step[-1])
            target = target / source.name if step[-1].endswith("/") else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            target.chmod(mode)
        elif step[0] == "vigint":
            result = await run(self.root, str(self.root / "usr/local/bin/vigint"), *map(self.argument, step[1:]))
            assert result.returncode == 0, result.stderr.decode()
        elif step[:3] == ["systemctl", "edit", "--full"]:
            unit = self.root / "etc/systemd/system" / f"{step[3]}.service"
            unit.write_text(edit(unit.read_text()))
        elif step[:3] == ["systemctl", "enable", "--now"]:
            return await self.start(unit_settings(self.root / "etc/systemd/system" / f"{step[3]}.service"))
        else:
            pytest.fail(f"this test does not know the install step {shlex.join(step)}: teach it")
        return None

    async def start(self, unit: dict[str, list[str]]) -> asyncio.subprocess.Process:
        environment = {"PATH": os.environ["PATH"]}
        for file in unit.get("EnvironmentFile", []):
            path = self.path(file.removeprefix("-"))
            if file.startswith("-") and not path.exists():
                continue  # "-": optional
            environment.update(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        environment.update(value.split("=", 1) for value in unit.get("Environment", []))
        command = [*map(self.argument, shlex.split(unit["ExecStart"][0]))]
        if command[1] == "serve":
            command += ["--port", "0", "--web-port", "0"]  # the test's own ports: 5002 and 5003 may be in use
        return await asyncio.create_subprocess_exec(*command, cwd=self.path(unit["WorkingDirectory"][0]),
                                                    env=environment, stderr=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE)


async def run(cwd: Path, *command: str) -> subprocess.CompletedProcess:
    process = await asyncio.create_subprocess_exec(*command, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def vigint_executable(folder: Path) -> Path:
    """This checkout's vigint as one executable file, like dist/vigint."""
    executable = folder / "vigint"
    source = Path(vigint.__file__).parent.parent
    executable.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(source))} exec {shlex.quote(sys.executable)} "
                          "-m vigint \"$@\"\n")
    executable.chmod(0o755)
    return executable


async def read_until(stream: asyncio.StreamReader, pattern: str, timeout: float = 30) -> re.Match:
    """Read lines from `stream` until one matches `pattern`; return the match."""
    seen = []
    async with asyncio.timeout(timeout):
        while not (match := re.search(pattern, seen[-1] if seen else "")):
            line = (await stream.readline()).decode()
            assert line, f"exited before {pattern!r}:\n{''.join(seen)}"
            seen.append(line)
    return match


def https_status(url: str, cert: Path) -> int:
    with urllib.request.urlopen(url, timeout=10, context=ssl.create_default_context(cafile=cert)) as response:
        return response.status


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian package systemd)")
def test_systemd_finds_nothing_to_say_about_the_units(tmp_path):
    executable = vigint_executable(tmp_path)  # verify wants ExecStart's program to exist
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace("/usr/local/bin/vigint", str(executable)))
    verified = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / unit.name) for unit in UNITS)],
                              capture_output=True, text=True, timeout=60)
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")


@pytest.mark.slow  # installs and runs both units' commands
async def test_installed_as_written_the_server_serves_and_a_refused_agent_stays_stopped(tmp_path):
    executable, site = vigint_executable(tmp_path), tmp_path / "download"
    site.mkdir()
    host = Host(tmp_path / "root", {"dist/vigint": executable, "vigint": executable, ".env": site / ".env",
                                    "vigint-cert.pem": site / "vigint-cert.pem",
                                    "scripts/vigint-serve.service": SCRIPTS / "vigint-serve.service",
                                    "vigint-agent.service": SCRIPTS / "vigint-agent.service"},
                {"vigint.example.com": "127.0.0.1"})
    steps = install_steps(SCRIPTS / "vigint-serve.service")
    (server,) = [service for step in steps if (service := await host.follow(step))]
    home = host.path("/var/lib/vigint")
    try:
        port = int((await read_until(server.stdout, r"listening +wss://0\.0\.0\.0:(\d+)"))[1])
        web_port = int((await read_until(server.stdout, r"page +https://\S+?:(\d+)/"))[1])
        assert "embedded defaults" in (await read_until(server.stdout, r"settings +(.*)"))[1]  # no config.ini needed
        cert = home / "vigint-cert.pem"
        assert await asyncio.to_thread(https_status, f"https://127.0.0.1:{port}/healthz", cert) == 200
        assert await asyncio.to_thread(https_status, f"https://127.0.0.1:{web_port}/", cert) == 200
        created = await run(home, str(executable), "client", "create", "--name", "Shop", "--email", "s@shop.test",
                            "--json")
        assert created.returncode == 0, created.stderr.decode()
        client = json.loads(created.stdout)
        (site / ".env").write_text(f"VIGINT_API_KEY={client['api_key']}\nVIGINT_SERVER_URL=wss://127.0.0.1:{port}\n")
        shutil.copyfile(cert, site / "vigint-cert.pem")
        await follow_agent_steps(host, home, executable, client["client_id"])
    finally:
        server.send_signal(signal.SIGTERM)
        stop_seconds = float(unit_settings(SCRIPTS / "vigint-serve.service")["TimeoutStopSec"][0])
        await asyncio.wait_for(server.communicate(), stop_seconds)
    assert server.returncode == 0


async def follow_agent_steps(host: Host, server_home: Path, executable: Path, client_id: int) -> None:
    """Install the agent as its unit says, see it stream; revoke its client: it waits, and streams again once the
    client is reactivated, untouched. Started with a key the server never accepted (a typo), it exits 3, which its
    unit does not restart."""
    def cameras(unit: str) -> str:  # and a refused key tried each second instead of every 30 s: a short test
        return re.sub(r"--source \S+", "--source test --refused-retry-seconds 1", unit)

    steps = install_steps(SCRIPTS / "vigint-agent.service")
    (agent,) = [service for step in steps if (service := await host.follow(step, edit=cameras))]
    streaming = r"camera front-door: streaming to wss://127\.0\.0\.1"
    try:
        await read_until(agent.stderr, streaming)
        for command in ("revoke", "reactivate"):
            done = await run(server_home, str(executable), "client", command, "--client-id", str(client_id))
            assert done.returncode == 0, done.stderr.decode()
            await read_until(agent.stderr, "key refused by the server" if command == "revoke" else streaming)
        agent.send_signal(signal.SIGTERM)
        assert (await asyncio.wait_for(agent.wait(), 30)) == 0
        env = host.path("/var/lib/vigint-agent/.env")
        env.write_text(re.sub(r"vig_\w+", keys.generate(), env.read_text()))
        agent = await host.start(unit_settings(host.path("/etc/systemd/system/vigint-agent.service")))
        _, err = await asyncio.wait_for(agent.communicate(), 30)
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
    unit = unit_settings(SCRIPTS / "vigint-agent.service")
    assert agent.returncode == 3 and "contact your Vigint operator" in err.decode()
    assert unit["Restart"] == ["on-failure"] and "3" in unit["RestartPreventExitStatus"][0].split()
    assert "spool" in os.listdir(host.path("/var/lib/vigint-agent"))  # its files stay in its home, the writable path
