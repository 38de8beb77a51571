"""Footage recorded while the server cannot be reached is not lost.

The real `vigint agent` plays footage made at test time (a still room, a person walking through) at real time,
as a camera would, to a real `vigint serve` that is killed and restarted on the same port and database. The
agent spools what it cannot send and backfills it once the server is back: the person becomes one incident,
marked as recorded while the camera was offline, with its clip and its alert email.
"""

import asyncio
import os
import signal
import sys
import time
from contextlib import AsyncExitStack
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av
import pytest
from attacks import ServeProcess
from footage import make_footage
from helpers import add_client, eventually, free_port

from vigint.alerts import emails
from vigint.store import Store

CAMERA = "front-door"
FPS = 10


def write_footage(path: Path, seconds: float, people: tuple[tuple[float, float], ...] = (),
                  gop_seconds: float = 1) -> None:
    """A camera's recording as a file (H.264 in MPEG-TS): a still room, and a person crossing it during each of
    `people` (seconds from the start)."""
    video = make_footage(seconds, gop_seconds=gop_seconds, people=people, fps=FPS, width=320, height=180)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("h264", rate=FPS)
        stream.width, stream.height = video.width, video.height
        for pts, dts, _, data in video.units:
            packet = av.Packet(data)
            packet.pts, packet.dts, packet.time_base, packet.stream = pts, dts, Fraction(1, 1_000_000), stream
            container.mux(packet)


class Site:
    """One customer's site: a server on a fixed port that can be killed and restarted, and its agents."""

    @classmethod
    async def open(cls, folder: Path, mailbox, cleanup: AsyncExitStack) -> "Site":
        """A site with its client added and its server started."""
        site = cls(folder, mailbox, cleanup)
        async with await Store.open(site.db) as store:
            _, _, site.api_key = await add_client(store)
        await site.start_server()
        return site

    def __init__(self, folder: Path, mailbox, cleanup: AsyncExitStack):
        self.folder, self.cleanup = folder, cleanup
        self.db, self.port, self.spool = folder / "vigint.db", free_port(), folder / "spool"
        self.env = {"VIGINT_EMAIL_SMTP_HOST": "127.0.0.1", "VIGINT_EMAIL_SMTP_PORT": str(mailbox.port),
                    "VIGINT_EMAIL_SECURITY": "none", "VIGINT_SERVER_DRAIN_SECONDS": "0",
                    "VIGINT_ALERTS_LINK_SECRET": "c" * 64}
        self.server: ServeProcess | None = None
        self.api_key = ""
        self.runs = 0

    async def start_server(self) -> ServeProcess:
        self.runs += 1
        self.server = ServeProcess(self.folder / f"server{self.runs}", self.env, db=self.db, port=self.port)
        self.server.env["VIGINT_STORAGE_DATA_DIR"] = str(self.folder / "data")  # one clips folder for all runs
        self.cleanup.push_async_callback(self.server.stop)
        return await self.server.start()

    async def kill_server(self) -> None:
        """Cut the server off as a crash or a cut line would: no drain, no goodbye."""
        self.server.process.kill()
        await self.server.process.wait()

    async def start_agent(self, footage: Path, name: str, *flags: str) -> asyncio.subprocess.Process:
        env = {name: value for name, value in os.environ.items() if not name.startswith("VIGINT_")}
        log = (self.folder / f"{name}.log").open("wb")
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "vigint", "agent", "--api-key", self.api_key,
            "--api-url", f"ws://127.0.0.1:{self.port}", "--source", str(footage), "--camera", CAMERA,
            "--spool-dir", str(self.spool), *flags, cwd=self.folder, env=env, stdout=log, stderr=log)
        log.close()
        self.cleanup.callback(lambda: agent.returncode is None and agent.kill())
        return agent

    def agent_log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def spooled(self) -> list[Path]:
        return sorted(self.spool.rglob("*.gop"))

    async def incidents(self) -> list[dict]:
        return [incident for incident in await self.server.cli.json("incidents", "list")
                if incident["type"] not in ("camera_down", "camera_back")]


async def streaming(site: Site, name: str, times: int = 1, timeout: float = 40) -> None:
    """Wait until the agent `name` has logged its live stream's welcome `times` times."""
    await eventually(lambda: site.agent_log(name).count("streaming to") >= times, timeout=timeout, interval=0.1)


@pytest.mark.slow  # a full minute of outage
@pytest.mark.parametrize("outage", [60])
async def test_footage_recorded_during_a_server_outage_becomes_one_offline_incident(tmp_path, mailbox, outage):
    person_at = 4 + outage / 2  # seconds into the footage: in the middle of the outage
    write_footage(tmp_path / "camera.ts", 4 + outage + 40, people=((person_at, person_at + 3),))
    async with AsyncExitStack() as cleanup:
        site = await Site.open(tmp_path, mailbox, cleanup)
        agent = await site.start_agent(tmp_path / "camera.ts", "agent")
        await streaming(site, "agent")
        recording_from = time.time()  # the footage's capture times start about now
        await asyncio.sleep(4)
        await site.kill_server()
        down_at = time.time()
        await asyncio.sleep(outage)
        await site.start_server()
        up_at = time.monotonic()
        await streaming(site, "agent", times=2)
        live_again = time.monotonic() - up_at
        assert live_again < 31, site.agent_log("agent")  # within the agent's backoff (30 s at most)

        await eventually(lambda: mailbox.messages, timeout=60, interval=0.2)
        assert await eventually(lambda: not site.spooled(), timeout=30, interval=0.2)
        incidents = await site.incidents()
        assert len(incidents) == 1, incidents
        incident = incidents[0]
        assert incident["offline"], incident
        started_at = datetime.fromisoformat(incident["started_at"]).timestamp()  # whole seconds
        assert down_at - 1 < started_at < down_at + outage and abs(started_at - (recording_from + person_at)) < 3
        assert incident["clip"] and (tmp_path / "data" / incident["clip"]).stat().st_size > 10_000
        body = emails.text_of(mailbox.messages[0])
        assert "while the camera could not reach Vigint" in body, body
        assert agent.returncode is None  # still streaming live


@pytest.mark.slow  # 15 s of real time: the spooling agent's own tests (tests/agent) cover it in the default run
async def test_footage_spooled_by_an_agent_killed_during_the_outage_arrives_from_its_restart(tmp_path, mailbox):
    write_footage(tmp_path / "camera.ts", 10, people=((4, 6.5),))
    write_footage(tmp_path / "still.ts", 30)  # what the camera shows after the agent's restart: nobody
    async with AsyncExitStack() as cleanup:
        site = await Site.open(tmp_path, mailbox, cleanup)
        first = await site.start_agent(tmp_path / "camera.ts", "first")
        await streaming(site, "first")
        await asyncio.sleep(1)
        await site.kill_server()
        await asyncio.sleep(7)  # the person walks through while the server is down
        first.kill()  # SIGKILL: no goodbye, no flush; what is spooled must survive it
        await first.wait()
        assert site.spooled()
        second = await site.start_agent(tmp_path / "still.ts", "second")
        await site.start_server()
        await streaming(site, "second")

        await eventually(lambda: mailbox.messages, timeout=40, interval=0.2)
        await eventually(lambda: not site.spooled(), timeout=30, interval=0.2)
        incidents = await site.incidents()
        assert len(incidents) == 1 and incidents[0]["offline"], incidents
        assert second.returncode is None


@pytest.mark.slow  # the agent's backoff after two server deaths makes it a minute long
async def test_a_server_killed_in_the_middle_of_a_backfill_completes_it_after_its_restart_without_duplicates(
        tmp_path, mailbox):
    write_footage(tmp_path / "camera.ts", 120, people=((10, 14),))  # on past the agent's longest backoff
    async with AsyncExitStack() as cleanup:
        site = await Site.open(tmp_path, mailbox, cleanup)
        await site.start_agent(tmp_path / "camera.ts", "agent")
        await streaming(site, "agent")
        await asyncio.sleep(2)
        await site.kill_server()
        await asyncio.sleep(16)  # the person walks through while the server is down
        oldest, *rest = site.spooled()
        assert len(rest) >= 12
        await site.start_server()
        # Killed again as soon as the backfill has been acknowledged in part: its oldest GOP deleted, not the rest.
        await eventually(lambda: not oldest.exists() and site.spooled(), timeout=40, interval=0.01)
        await site.kill_server()
        await site.start_server()

        await eventually(lambda: not site.spooled(), timeout=40, interval=0.2)
        await eventually(lambda: mailbox.messages, timeout=30, interval=0.2)
        incidents = await site.incidents()
        assert len(incidents) == 1 and incidents[0]["offline"], incidents
        await asyncio.sleep(1)
        assert len(mailbox.messages) == 1  # one alert: the incident was not recorded twice


@pytest.mark.slow  # three runs of an agent in real time
async def test_an_agent_stopped_and_started_again_sends_nothing_as_recorded_offline(tmp_path, mailbox):
    """A stop (systemctl stop, Ctrl-C, a reboot) leaves nothing the server saw live in the spool: the next start
    has no backfill, so no incident or email says "recorded while the camera was offline"."""
    write_footage(tmp_path / "camera.ts", 12, people=((1, 11),))  # someone in view all along
    async with AsyncExitStack() as cleanup:
        site = await Site.open(tmp_path, mailbox, cleanup)
        for run in range(3):
            agent = await site.start_agent(tmp_path / "camera.ts", f"run{run}", "--loop")
            await streaming(site, f"run{run}")
            await asyncio.sleep(2.5)  # into the middle of a GOP (1 s each)
            agent.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(agent.wait(), 20) == 0, site.agent_log(f"run{run}")
            assert not site.spooled(), site.agent_log(f"run{run}")
        await eventually(lambda: mailbox.messages, timeout=30, interval=0.2)  # the live incident's alert
        incidents = await site.incidents()
        assert incidents and not [incident for incident in incidents if incident["offline"]], incidents
        assert not [message for message in mailbox.messages if "offline" in emails.text_of(message)]
        assert "backfill" not in site.server.log()
