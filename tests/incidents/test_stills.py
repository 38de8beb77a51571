import io

import av
import numpy as np
from media import make_scene
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
    before, at = picture(stills.still_at(packets, EPOCH_US + 1_900_000)), picture(stills.still_at(packets, EPOCH_US + 2_000_000))
    assert (at.width, at.height) == (320, 180)
    left = np.s_[65:105, 5:40]  # inside the square's first position
    assert at.to_ndarray(format="gray")[left].mean() > 200 > before.to_ndarray(format="gray")[left].mean()

