"""An agent stopped and started again during motion makes no "recorded while offline" incident.

The real `vigint agent` streams footage with people walking through it to a real `vigint serve`, and is stopped
with SIGTERM (Ctrl-C, `systemctl stop`, a reboot) and started again three times. Whatever its spool holds when it
stops (footage the server received live) comes back as backfill: the server must not take it for footage it
never saw, and the camera, back within the cooldown, continues its one incident.
"""

import asyncio
import signal
from contextlib import AsyncExitStack

import pytest
from helpers import eventually
from test_outage import Site, streaming, write_footage

from vigint.alerts import emails


@pytest.mark.slow  # four agent starts at real time
async def test_an_agent_stopped_and_started_three_times_during_motion_makes_one_live_incident(tmp_path, mailbox):
    people = tuple((start, start + 2.5) for start in range(0, 60, 2))  # someone in the picture all along
    write_footage(tmp_path / "camera.ts", 60, people=people, gop_seconds=3)  # 3 s GOPs: the spooled one holds motion
    async with AsyncExitStack() as cleanup:
        site = await Site.open(tmp_path, mailbox, cleanup)
        for run in range(4):
            agent = await site.start_agent(tmp_path / "camera.ts", f"agent{run}")
            await streaming(site, f"agent{run}")
            await asyncio.sleep(5)
            if run < 3:
                agent.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(agent.wait(), 20) == 0
        await eventually(lambda: not site.spooled(), timeout=30, interval=0.2)  # what was spooled came back
        await eventually(lambda: mailbox.messages, timeout=30, interval=0.2)
        await asyncio.sleep(2)  # a second incident or alert would be in by now
        incidents = await site.incidents()
        assert len(incidents) == 1 and not incidents[0]["offline"], incidents
        assert len(mailbox.messages) == 1
        assert "could not reach Vigint" not in emails.text_of(mailbox.messages[0])
