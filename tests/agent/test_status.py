from vigint.agent.spool import SpoolStats
from vigint.agent.status import CameraStatus

NOW = 1_760_000_000.0


def test_the_status_line_says_how_much_is_spooled_how_far_behind_and_what_is_lost():
    status = CameraStatus("door", "rtsp://***@cam/1")
    assert "spool empty, 0 GOPs dropped" in status.line()
    status.spool = SpoolStats(bytes=38_200_000, gops=120, seconds=230, oldest_us=int((NOW - 240) * 1e6), dropped_gops=3)
    status.backfill = "recovering 4 min of footage"
    assert status.spooled(now=NOW) == "spool 38 MB, 4 min behind, recovering 4 min of footage"
    assert "3 GOPs dropped" in status.line()
