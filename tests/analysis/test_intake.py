import pytest
from media import make_h264

from vigint import protocol
from vigint.analysis.intake import UNDECODABLE, Intake, Limits
from vigint.protocol import CloseCode, ProtocolViolation

LIMITS = Limits(max_width=640, max_height=360, max_macroblocks=920, max_nal_units=16, max_bad_packets=5,
                max_backlog_packets=4, max_backlog_bytes=1 << 20)


def gate(limits: Limits = LIMITS) -> tuple[Intake, list[int]]:
    counted: list[int] = []
    return Intake(limits, lambda count, first: counted.append(count)), counted


def messages(video) -> list[bytes]:
    return [protocol.media(pts, dts, data) for pts, dts, _, data in video.units]


def test_a_real_stream_passes_with_its_keyframes_marked():
    intake, counted = gate()
    video = make_h264(2, width=320, height=180, gop=15)
    packets = [intake.accept(message) for message in messages(video)]
    assert [packet.keyframe for packet in packets] == [unit[2] for unit in video.units]
    assert [packet.data for packet in packets] == [unit[3] for unit in video.units]
    assert counted == []


def test_a_picture_over_the_limit_is_refused_before_decoding():
    intake, _ = gate()
    with pytest.raises(ProtocolViolation) as refused:
        intake.accept(messages(make_h264(1, width=1280, height=720))[0])
    assert refused.value.code == CloseCode.BAD_MEDIA
    assert refused.value.reason == "picture 1280x720 is over the limit of 640x360, 920 macroblocks"


def test_too_many_nal_units_are_refused():
    intake, _ = gate()
    with pytest.raises(ProtocolViolation) as refused:
        intake.accept(protocol.media(0, 0, b"\x00\x00\x01\x09" * 17))
    assert refused.value.code == CloseCode.BAD_MEDIA and "more than 16 NAL units" in refused.value.reason


def test_garbage_without_a_keyframe_ends_the_stream_even_with_start_codes():
    intake, counted = gate()
    slice_without_keyframe = protocol.media(0, 0, b"\x00\x00\x00\x01\x41" + b"\x9a" * 100)
    with pytest.raises(ProtocolViolation) as refused:
        for _ in range(5):
            packet = intake.accept(slice_without_keyframe)
            assert packet is not None and not intake.admit(packet)  # never reaches the decoder
    assert refused.value.reason == UNDECODABLE and sum(counted) == 5


def test_messages_that_are_not_h264_count_and_a_decoded_frame_resets_the_count():
    intake, counted = gate()
    for _ in range(4):
        assert intake.accept(b"short") is None
    intake.decoded(frames=1, errors=0)
    for _ in range(4):
        assert intake.accept(protocol.media(0, 0, b"no start code here")) is None
    assert counted == [1] * 8 and intake.bad_packets == 4


def test_a_full_backlog_sheds_to_the_next_keyframe_without_counting_errors():
    intake, counted = gate()
    packets = [intake.accept(message) for message in messages(make_h264(2, width=320, height=180, gop=10))]
    admitted = [intake.admit(packet) for packet in packets[:10]]
    assert admitted == [True] * 4 + [False] * 6  # the backlog holds 4
    intake.dequeued(packets[:4])
    assert intake.admit(packets[10]) and packets[10].keyframe  # room again, from the next keyframe
    assert counted == []


def test_decoder_errors_count_and_make_it_wait_for_a_keyframe():
    intake, counted = gate()
    packets = [intake.accept(message) for message in messages(make_h264(2, width=320, height=180, gop=10))]
    assert intake.admit(packets[0])
    intake.dequeued(packets[:1])
    intake.decoded(frames=0, errors=2)
    assert not intake.admit(packets[1])  # skipped while waiting for a keyframe: counted too
    assert intake.admit(packets[10])
    assert counted == [2, 1]


def test_access_units_without_a_picture_are_undecodable_and_end_a_flood():
    intake, counted = gate()
    with pytest.raises(ProtocolViolation) as refused:
        for _ in range(5):
            assert intake.accept(protocol.media(0, 0, b"\x00\x00\x01\x0a")) is None  # end of sequence only
    assert refused.value.reason == UNDECODABLE and counted == [1] * 5
