"""The agent's spool: real H.264 GOPs in real files, surviving a crash, acknowledged, capped."""

import logging
import os

import av
from footage import make_h264

from vigint.agent.spool import Spool
from vigint.media import Packet

EPOCH = 1_760_000_000_000_000  # capture times are µs since the Unix epoch
MB = 1_000_000


def gops(seconds: float = 4, start_us: int = EPOCH, busy: bool = True) -> list[list[Packet]]:
    """Real GOPs of the test pattern (one a second), their times moved on to start at `start_us`."""
    video = make_h264(seconds, gop=15, busy=busy)
    result: list[list[Packet]] = []
    for pts, dts, keyframe, data in video.units:
        packet = Packet(start_us + pts, start_us + dts, keyframe, data)
        if keyframe:
            result.append([packet])
        else:
            result[-1].append(packet)
    return result


def decoded_frames(gop: list[Packet]) -> int:
    codec = av.CodecContext.create("h264", "r")
    frames = sum(len(codec.decode(av.Packet(packet.data))) for packet in gop)
    return frames + len(codec.decode(None))


def files(directory, pattern: str = "*") -> list[str]:
    return sorted(path.name for path in directory.rglob(pattern) if path.is_file())


def test_a_spooled_gop_reads_back_as_the_same_decodable_video(tmp_path):
    spool = Spool(tmp_path / "spool", 100 * MB)
    written = gops()
    for gop in written:
        assert spool.write("front door", gop)
    assert files(tmp_path / "spool") == [f"{g[0].dts:020d}-{g[-1].dts:020d}.gop" for g in written]
    read = [spool.read("front door", spooled) for spooled in spool.gops("front door")]
    assert read == written and decoded_frames(read[0]) == 15
    stats = spool.stats("front door")
    assert stats.gops == 4 and stats.oldest_us == EPOCH and stats.dropped_gops == 0
    assert stats.bytes == sum(path.stat().st_size for path in (tmp_path / "spool").rglob("*.gop"))
    assert 3.5 < stats.seconds <= 4  # each GOP counts from its first frame to its last
    assert os.stat(tmp_path / "spool").st_mode & 0o777 == 0o700  # footage is private


def test_after_a_crash_half_written_and_damaged_files_are_removed_and_counted(tmp_path, caplog):
    spool = Spool(tmp_path, 100 * MB)
    for gop in gops():
        spool.write("till", gop)
    first, second, *_ = spool.gops("till")
    (tmp_path / "till" / "00000000000000000001-00000000000000000002.tmp").write_bytes(b"VIGINT-GOP 1\n\0\0")
    second.path.write_bytes(second.path.read_bytes()[:-100])  # cut short (a disk that lied about fsync)
    caplog.set_level(logging.INFO)
    restarted = Spool(tmp_path, 100 * MB)
    assert not files(tmp_path, "*.tmp") and restarted.stats("till").gops == 4
    assert restarted.stats("till").dropped_gops == 1 and "did not stop cleanly" in caplog.text
    assert restarted.read("till", restarted.gops("till")[0])[0].keyframe
    assert restarted.read("till", restarted.gops("till")[1]) is None  # the damaged one: deleted, counted
    assert "damaged" in caplog.text and not second.path.exists()
    assert restarted.stats("till").gops == 3 and restarted.stats("till").dropped_gops == 2
    assert first.path.exists()


def test_an_ack_deletes_every_gop_up_to_its_time(tmp_path):
    spool = Spool(tmp_path, 100 * MB)
    for gop in gops():
        spool.write("yard", gop)
    spooled = spool.gops("yard")
    assert spool.acknowledge("yard", spooled[1].last_dts - 1) == 1  # the second is not whole yet
    assert spool.acknowledge("yard", spooled[1].last_dts) == 1
    assert [gop.path.exists() for gop in spooled] == [False, False, True, True]
    assert spool.next_gop("yard", None) == spooled[2] and spool.next_gop("yard", spooled[2].first_dts) == spooled[3]
    assert spool.stats("yard").gops == 2 and spool.stats("yard").oldest_us == spooled[2].first_dts


def test_a_ten_minute_outage_under_a_20_mb_cap_keeps_the_newest_footage(tmp_path):
    cap = 20 * MB
    spool = Spool(tmp_path, cap)
    pattern = gops(4)
    largest = max(sum(len(p.data) for p in gop) for gop in pattern) + 16 * 1024  # + headers and lengths
    written = 0
    for second in range(0, 600, 4):  # 10 minutes of the same 4 s of real video, timestamps moved on
        for gop in gops(4, EPOCH + second * 1_000_000):
            spool.write("door", gop)
            written += 1
            on_disk = sum(entry.stat().st_size for entry in os.scandir(tmp_path / "door"))
            assert on_disk <= cap + largest
    stats = spool.stats("door")
    assert 0.8 * cap < stats.bytes <= cap and stats.gops + stats.dropped_gops == written == 600
    assert stats.dropped_gops > 100  # 10 minutes of this camera is about twice the cap
    newest = spool.gops("door")[-1]
    assert newest.last_dts > EPOCH + 599 * 1_000_000 and stats.oldest_us == EPOCH + stats.dropped_gops * 1_000_000
    assert spool.read("door", spool.gops("door")[0])[0].keyframe  # the oldest kept is a whole GOP


def test_the_cap_evicts_the_oldest_footage_of_any_camera(tmp_path):
    first = gops(4)
    spool = Spool(tmp_path, 10 * MB)
    for gop in first:
        spool.write("old", gop)
    one_gop = spool.stats("old").bytes // 4
    spool.max_bytes = spool.stats("old").bytes + one_gop  # room for one more GOP
    for gop in gops(4, EPOCH + 60_000_000)[:3]:
        spool.write("new", gop)
    assert spool.stats("old").dropped_gops == 2 and spool.stats("new").dropped_gops == 0
    assert spool.stats("old").gops == 2 and spool.stats("new").gops == 3


def test_a_disk_error_is_logged_once_and_counts_the_gop_as_dropped(tmp_path, caplog):
    spool = Spool(tmp_path / "spool", 100 * MB)
    (tmp_path / "spool" / "cam").write_text("a file where the camera's directory should be")
    for gop in gops():
        assert not spool.write("cam", gop)
    assert spool.stats("cam").dropped_gops == 4 and spool.stats("cam").gops == 0
    assert caplog.text.count("cannot write recorded video") == 1 and "live video goes on" in caplog.text
