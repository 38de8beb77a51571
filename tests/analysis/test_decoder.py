import av
import numpy as np
from footage import make_h264

from vigint.analysis.decoder import StreamDecoder, analysis_size
from vigint.media import Packet


def packets(video) -> list[Packet]:
    return [Packet(pts, dts, key, data) for pts, dts, key, data in video.units]


def test_frames_are_sampled_at_the_analysis_rate_and_scaled_small():
    video = make_h264(2, width=640, height=360)
    decoder = StreamDecoder(analysis_width=320, analysis_fps=5, max_pixels=640 * 360)
    result = decoder.decode(packets(video))
    flushed = decoder.flush()
    assert result.decoded + flushed.decoded == video.frames and result.errors == 0
    assert len(result.frames) + len(flushed.frames) == 10  # 2 s at 5 fps
    # The motion detector's picture: half the analysis width, each pixel the mean of the luma it covers (in
    # full range, as gray)
    first = result.frames[0].pixels
    assert first.shape == (90, 160) and result.size == (640, 360)
    codec = av.CodecContext.create("h264", "r")
    codec.thread_count = 1
    codec.options = {"skip_loop_filter": "all"}
    [keyframe] = codec.decode(av.Packet(video.units[0][3])) + codec.decode(None)
    luma = np.frombuffer(keyframe.planes[0], np.uint8).reshape(360, -1)[:, :640]  # video range: 16 is black
    means = ((luma - 16.0) * 255 / 219).clip(0, 255).reshape(90, 4, 160, 4).mean(axis=(1, 3))
    assert abs(first - means).max() <= 1


def test_ffmpeg_itself_refuses_a_picture_over_max_pixels():
    # The SPS check refuses such a stream first; this is the guard behind it.
    decoder = StreamDecoder(analysis_width=320, analysis_fps=5, max_pixels=640 * 360 - 1)
    result = decoder.decode(packets(make_h264(1, width=640, height=360)))
    assert result.decoded == 0 and result.frames == [] and result.errors > 0


def test_a_tall_picture_is_analysed_within_a_square_not_at_its_full_height():
    assert analysis_size(1280, 720, 320) == (320, 180)
    assert analysis_size(720, 1280, 320) == (180, 320)
    assert analysis_size(16, 2160, 320) == (2, 320)


def test_a_b_frame_stream_is_analysed_in_presentation_order_at_the_analysis_rate():
    video = make_h264(3, bframes=2)
    decoder = StreamDecoder(analysis_width=320, analysis_fps=5, max_pixels=320 * 180)
    result, flushed = decoder.decode(packets(video)), decoder.flush()
    shown = [frame.pts for frame in result.frames + flushed.frames]
    assert (len(shown) == 15
            and all(190_000 <= later - earlier <= 210_000 for earlier, later in zip(shown, shown[1:]))), shown
