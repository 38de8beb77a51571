"""The guides under docs/ run as written: every shell block of every guide, in order, against a real server.

A guide's fenced blocks are read in order:

- ```sh: run with bash (-euo pipefail) in the guide's own empty folder; it must exit 0;
- ```sh background: started and left running (a server, an agent) until the guide ends; the next block
  waits for its first line of output (a server's banner), so it is ready;
- ```ini FILE (or any language and a file name): written to FILE in that folder, as the guide tells the
  reader to save it;
- any other block (text, sample output) is only read.

So a renamed flag or a changed command breaks this test, not the reader. The guides use the default ports
(5002 and 5003) as a reader would: they run one after another in one worker. A real SMTP server (aiosmtpd)
listens on 127.0.0.1, the mail relay the guides' config.ini names (on a free port put in place of 2525).
"""

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import Mailbox, serving

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDES = ("setup-new-client.md", "authentication.md", "client-management.md", "billing.md", "deployment.md")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
READY_SECONDS = 20
GUIDE_RELAY = "smtp_port = 2525"  # the guides' mail relay on this machine, as their config.ini names it


@pytest.fixture
def relay():
    """The mail relay the guides name: a real SMTP server keeping what it receives, on a free port that the
    guide's files are given instead of theirs (GUIDE_RELAY). A fixed port was shared by the workers of one
    machine: two workers running guides at once could not both take it."""
    with serving(Mailbox()) as box:
        yield box


def blocks(guide: Path) -> list[tuple[str, str]]:
    """Return (info string, body) of each fenced block, in order."""
    return [(info.strip(), body) for info, body in FENCE.findall(guide.read_text())]


def environment(folder: Path) -> dict[str, str]:
    """The reader's shell: `vigint` of this checkout first on PATH, no VIGINT_* settings from outside."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("VIGINT_", "AWS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["HOME"] = str(folder)
    return env


class Background:
    """A long-running block: its output is collected; the first line means it is up."""

    def __init__(self, script: str, folder: Path, env: dict[str, str]):
        self.process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=folder, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.lines: list[str] = []
        self.started = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            self.started.set()
        self.started.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.mark.slow  # 25 s of commands one after another: CI runs it with the other slow tests (pytest -m slow)
@pytest.mark.xdist_group("guides")
@pytest.mark.parametrize("name", GUIDES)
def test_every_command_of_the_guide_runs(name, tmp_path, relay):
    guide = DOCS / name
    assert guide.is_file(), f"{name} is missing"
    env, running = environment(tmp_path), []
    try:
        for index, (info, body) in enumerate(blocks(guide)):
            words = info.split()
            where = f"{name}, block {index + 1} ({info or 'plain'})"
            if words[:1] == ["sh"] and words[1:] == ["background"]:
                running.append(Background(body, tmp_path, env))
                assert running[-1].started.wait(READY_SECONDS), f"{where}: no output within {READY_SECONDS} s"
                assert running[-1].process.poll() is None, f"{where} stopped:\n{''.join(running[-1].lines)}"
            elif words == ["sh"]:
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=tmp_path, env=env,
                                      capture_output=True, text=True, timeout=120)
                assert done.returncode == 0, f"{where} failed ({done.returncode}):\n{body}\n{done.stdout}{done.stderr}"
            elif len(words) == 2 and words[0] != "sh":
                (tmp_path / words[1]).write_text(body.replace(GUIDE_RELAY, f"smtp_port = {relay.port}"))
    finally:
        for process in reversed(running):
            process.stop()
    assert any(info.startswith("sh") for info, _ in blocks(guide)), f"{name} has no command to run"
    if "vigint email test" in guide.read_text():
        assert any(message["Subject"] == "[Vigint] test message" for message in relay.messages)
