from media import make_h264

from vigint import h264


def test_keyframes_of_a_real_stream_are_recognised():
    video = make_h264(4, gop=30)
    flags = [h264.is_keyframe(h264.nal_types(unit[3])) for unit in video.units]
    assert flags == [unit[2] for unit in video.units]
    assert flags.count(True) == 2


def test_nal_types_of_hand_made_units():
    assert h264.nal_types(b"\x00\x00\x00\x01\x67aa\x00\x00\x01\x68bb\x00\x00\x01\x65cc") == [7, 8, 5]
    assert h264.nal_types(b"garbage without start codes") == []
    assert not h264.is_keyframe(h264.nal_types(b"\x00\x00\x01\x65cc"))  # an IDR without its SPS cannot start decoding
