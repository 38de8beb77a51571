import time

from rich.console import Console

from vigint.agent.spool import SpoolStats
from vigint.agent.status import CameraStatus, table

NOW = 1_760_000_000.0


def test_the_status_line_says_how_much_is_spooled_how_far_behind_and_what_is_lost():
    status = CameraStatus("door", "rtsp://***@cam/1")
    assert "spool empty, 0 GOPs dropped" in status.line()
    status.spool = SpoolStats(bytes=38_200_000, gops=120, seconds=230, oldest_us=int((NOW - 240) * 1e6), dropped_gops=3)
    status.backfill = "recovering 4 min of footage"
    assert status.spooled(now=NOW) == "spool 38 MB, 4 min behind, recovering 4 min of footage"
    assert "3 GOPs dropped" in status.line()


def test_a_key_expiring_within_two_weeks_is_shown_under_the_live_view_and_in_the_log_line():
    status = CameraStatus("door", "test")
    assert status.key_expiry(now=NOW) == "" and "API key" not in status.line()  # a key without expiry
    status.key_expires_at = NOW + 30 * 86_400
    assert status.key_expiry(now=NOW) == ""  # a month away: nobody's concern yet
    status.key_expires_at = NOW + 3.5 * 86_400
    assert status.key_expiry(now=NOW) == "API key expires in 3 days: ask your Vigint operator for its successor"
    status.key_expires_at = time.time() + 5 * 3600
    assert "; API key expires in 4 h: ask your Vigint operator" in status.line()
    console = Console(width=160, record=True)
    console.print(table([status, CameraStatus("till", "test")], "ws://127.0.0.1:5002"))
    assert console.export_text().count("API key expires in 4 h") == 1  # once for the agent, not per camera
