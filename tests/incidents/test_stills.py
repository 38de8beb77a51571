import io

import av
import numpy as np
from footage import make_footage, make_scene, write_clip
from test_clips import EPOCH_US

from vigint.incidents import stills
from vigint.media import Packet


def scene_packets(video) -> list[Packet]:
    return [Packet(EPOCH_US + pts, EPOCH_US + dts, key, data) for pts, dts, key, data in video.units]


def picture(jpeg: bytes) -> av.VideoFrame:
    assert jpeg.startswith(b"\xff\xd8\xff")  # a JPEG
    with av.open(io.BytesIO(jpeg)) as container:
        return next(container.decode(video=0))


def test_the_thumbnail_shows_the_frame_where_the_motion_starts(tmp_path):
    video = make_scene(4, moving=(2, 4))  # a white square enters at 2 s, on the left
    packets = scene_packets(video)
    before = picture(stills.still_at(packets, EPOCH_US + 1_900_000))
    at = picture(stills.still_at(packets, EPOCH_US + 2_000_000))
    assert (at.width, at.height) == (320, 180)
    left = np.s_[65:105, 5:40]  # inside the square's first position
    assert at.to_ndarray(format="gray")[left].mean() > 200 > before.to_ndarray(format="gray")[left].mean()


def test_stills_are_at_most_640_wide_keeping_the_aspect_and_the_strip_takes_distinct_keyframes(tmp_path):
    video = make_footage(4, gop_seconds=1, width=672, height=378)
    packets = scene_packets(video)
    path = tmp_path / "clip.mp4"
    write_clip(packets, path, video.width, video.height)
    # Keyframes at 0, 1, 2 and 3 s: the one before 0.9 s is not after the thumbnail's time (0.5 s); 2.2 and 2.6 s
    # share one.
    strip = stills.strip(path, [0.9, 2.2, 2.6, 3.5], after=0.5)
    assert len(strip) == 2
    assert {(frame.width, frame.height) for frame in map(picture, strip)} == {(640, 360)}
