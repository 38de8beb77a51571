import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest
from helpers import eventually


@pytest.mark.slow  # the whole demo until its first email (7 s); scripts/smoke.sh checks the executable
async def test_demo_shows_an_incident_and_its_alert_email_then_cleans_up(tmp_path):
    demo = await asyncio.create_subprocess_exec(sys.executable, "-m", "vigint", "demo", cwd=tmp_path,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        first_line = (await asyncio.wait_for(demo.stdout.readline(), 30)).decode()
        folder = Path(re.search(r"files in (\S+)", first_line)[1])
        first_line += (await asyncio.wait_for(demo.stdout.readline(), 30)).decode()
        link = (await asyncio.wait_for(demo.stdout.readline(), 30)).decode()
        # The first incident comes after ~1 s of motion, its clip 5 s later, then the email.
        await eventually(lambda: any((folder / "mail").glob("*.eml")), timeout=60)
        demo.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(demo.communicate(), 30)
    finally:
        if demo.returncode is None:  # a failed step must not leave the demo running
            demo.kill()
            await demo.wait()
    text = first_line + out.decode()
    assert demo.returncode == 0, err.decode()
    assert "Alert email captured" in text and "Subject: [Vigint] motion at shop-floor" in text
    assert re.search(r"│ 1 +│ shop-floor │ motion │ saved │ delivered │", text)
    assert re.search(r"open http://127\.0\.0\.1:\d+/sign-in/\S+ in a browser", link)  # the customer's page
    assert "Demo stopped" in text and not folder.exists()
    assert list(tmp_path.iterdir()) == []  # nothing left where it ran
