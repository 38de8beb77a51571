import av

from vigint import h264
from vigint.agent import testpattern
from vigint.agent.encoder import H264Encoder, scaled_size


def test_frames_come_out_as_annex_b_access_units_at_their_times_with_a_keyframe_every_gop():
    encoder = H264Encoder(320, 180, fps=10, bitrate=300_000, gop=5)
    packets = []
    for index, frame in zip(range(20), testpattern.frames(640, 360)):  # scaled down on the way in
        packets += encoder.encode(frame, 1_000_000 + index * 100_000)
    packets += encoder.flush()
    assert [packet.pts for packet in packets] == [1_000_000 + index * 100_000 for index in range(20)]
    assert [index for index, packet in enumerate(packets) if packet.keyframe] == [0, 5, 10, 15]
    assert all(packet.keyframe == h264.is_keyframe(h264.nal_types(packet.data, 64)) for packet in packets)
    decoder = av.CodecContext.create("h264", "r")
    frames = [frame for packet in packets for frame in decoder.decode(av.Packet(packet.data))] + decoder.decode(None)
    assert len(frames) == 20 and (frames[0].width, frames[0].height) == (320, 180)


def test_sizes_scale_down_to_the_width_keeping_the_aspect_and_even():
    assert scaled_size(1920, 1080, 640) == (640, 360)
    assert scaled_size(641, 361, 1280) == (640, 360)
    assert scaled_size(5000, 3, 640) == (640, 2)
