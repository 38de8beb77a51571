import asyncio
import re
import signal
import sys
from pathlib import Path


async def test_demo_shows_an_incident_and_its_alert_email_then_cleans_up(tmp_path):
    demo = await asyncio.create_subprocess_exec(sys.executable, "-m", "vigint", "demo", cwd=tmp_path,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await asyncio.sleep(15)  # first incident after ~1 s of motion, its clip 5 s later, then the email
    demo.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(demo.communicate(), 30)
    text = out.decode()
    assert demo.returncode == 0, err.decode()
    folder = Path(re.search(r"files in (\S+)", text)[1])
    assert "Alert email captured" in text and "Subject: [Vigint] motion at shop-floor" in text
    assert re.search(r"│ 1 +│ shop-floor │ motion │ saved │ delivered │", text)
    assert "Demo stopped" in text and not folder.exists()
    assert list(tmp_path.iterdir()) == []  # nothing left where it ran
