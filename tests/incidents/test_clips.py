import stat

import av
from media import make_h264

from vigint.incidents import clips
from vigint.media import Packet

EPOCH_US = 1_767_225_600_000_000  # stream times are µs since the Unix epoch


def packets(seconds: float) -> tuple[list[Packet], int, int]:
    video = make_h264(seconds)
    return [Packet(EPOCH_US + pts, EPOCH_US + dts, key, data) for pts, dts, key, data in video.units], \
        video.width, video.height


def test_a_clip_is_a_playable_mp4_only_its_owner_can_read(tmp_path):
    chosen, width, height = packets(2)
    path = tmp_path / "data" / "clips" / "3" / "7.mp4"
    duration = clips.write_mp4(chosen, path, width, height)
    assert abs(duration - 2.0) < 0.01
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, path.parent.parent, tmp_path / "data"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert sorted(p.name for p in path.parent.iterdir()) == ["7.mp4"]  # no .part left
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == len(chosen) == 30 and (frames[0].width, frames[0].height) == (width, height)


def test_a_clip_in_an_existing_folder_and_over_a_stale_part_is_owner_only(tmp_path):
    folder = tmp_path / "clips" / "3"
    folder.mkdir(parents=True, mode=0o755)
    folder.chmod(0o755)
    stale = folder / "8.mp4.part"  # left by a crash, readable by all
    stale.write_bytes(b"old")
    stale.chmod(0o644)
    chosen, width, height = packets(1)
    clips.write_mp4(chosen, folder / "8.mp4", width, height)
    assert stat.S_IMODE((folder / "8.mp4").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # the operator's own folder is left as it is
    assert sorted(p.name for p in folder.iterdir()) == ["8.mp4"]
    with av.open(str(folder / "8.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 15


def test_a_camera_clock_that_steps_back_or_ticks_in_microseconds_still_gives_a_playable_clip(tmp_path):
    chosen, width, height = packets(2)
    # Times 1 µs apart round to one 90 kHz tick, and the clock steps back half-way: MP4 allows neither.
    odd = [Packet(EPOCH_US + index - (10_000 if index >= 15 else 0), EPOCH_US + index - (10_000 if index >= 15 else 0),
                  p.keyframe, p.data) for index, p in enumerate(chosen)]
    path = tmp_path / "clip.mp4"
    clips.write_mp4(odd, path, width, height)
    with av.open(str(path)) as container:
        assert len(list(container.decode(video=0))) == 30
