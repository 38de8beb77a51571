import stat

import av
from footage import make_h264
from helpers import top_level_boxes

from vigint.incidents import clips
from vigint.media import Packet

EPOCH_US = 1_767_225_600_000_000  # stream times are µs since the Unix epoch


def packets(seconds: float) -> tuple[list[Packet], int, int]:
    video = make_h264(seconds)
    return [Packet(EPOCH_US + pts, EPOCH_US + dts, key, data) for pts, dts, key, data in video.units], \
        video.width, video.height


def frames_in(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_growing_clip_plays_while_it_grows_and_is_only_its_owners(tmp_path):
    chosen, width, height = packets(4)  # a keyframe every 2 s
    path = tmp_path / "data" / "clips" / "3" / "7.mp4"
    clip = clips.GrowingClip(path, chosen[0], width, height)
    clip.add(chosen[:40])  # never closed, as when the server is killed: the first GOP was written out whole
    assert frames_in(path) == 30
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, path.parent.parent, tmp_path / "data"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    clip.add(chosen[40:])
    clip.close()
    assert frames_in(path) == 60 and "moof" in top_level_boxes(path)


def test_a_finished_clip_is_faststart_ends_where_told_and_replaces_the_growing_one(tmp_path):
    chosen, width, height = packets(4)
    folder = tmp_path / "clips" / "3"
    folder.mkdir(parents=True, mode=0o755)
    folder.chmod(0o755)
    stale = folder / "8.mp4.part"  # left by a crash, readable by all
    stale.write_bytes(b"old")
    stale.chmod(0o644)
    path = folder / "8.mp4"
    clip = clips.GrowingClip(path, chosen[0], width, height)
    clip.add(chosen)
    clip.close()
    duration = clips.finish(path, path, clip.ticks(chosen[44].dts))  # up to the 45th frame, 3 s in
    assert abs(duration - 3.0) < 0.01 and frames_in(path) == 45
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat") and "moof" not in boxes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # the operator's own folder is left as it is
    assert sorted(p.name for p in folder.iterdir()) == ["8.mp4"]  # no .part left


def test_a_camera_clock_that_steps_back_or_ticks_in_microseconds_still_gives_a_playable_clip(tmp_path):
    chosen, width, height = packets(2)
    # Times 1 µs apart round to one 90 kHz tick, and the clock steps back half-way: MP4 allows neither.
    odd = [Packet(EPOCH_US + index - (10_000 if index >= 15 else 0), EPOCH_US + index - (10_000 if index >= 15 else 0),
                  p.keyframe, p.data) for index, p in enumerate(chosen)]
    path = tmp_path / "clip.mp4"
    clip = clips.GrowingClip(path, odd[0], width, height)
    clip.add(odd[:20])
    clip.add(odd[20:])
    clip.close()
    clips.finish(path, tmp_path / "finished.mp4", clip.ticks(odd[-1].dts) + 90_000)
    assert frames_in(path) == frames_in(tmp_path / "finished.mp4") == 30
