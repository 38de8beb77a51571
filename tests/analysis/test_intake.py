import dataclasses

import pytest
from footage import make_h264

from vigint import protocol
from vigint.analysis.intake import CADENCE_UNITS, UNDECODABLE, Intake, Limits
from vigint.protocol import CloseCode, ProtocolViolation

LIMITS = Limits(max_width=640, max_height=360, max_macroblocks=920, max_nal_units=16, max_bad_packets=5,
                max_backlog_us=1_000_000, max_catchup_us=3_000_000, max_backlog_bytes=1 << 20)


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
            assert packet is not None and not intake.admit(packet, False)  # never reaches the decoder
    assert refused.value.reason == UNDECODABLE and sum(counted) == 5


def test_messages_that_are_not_h264_count_and_a_decoded_frame_resets_the_count():
    intake, counted = gate()
    for _ in range(4):
        assert intake.accept(b"short") is None
    intake.decoded(frames=1, errors=0)
    for _ in range(4):
        assert intake.accept(protocol.media(0, 0, b"no start code here")) is None
    assert counted == [1] * 8 and intake.bad_packets == 4


def test_an_overloaded_server_sheds_a_backlog_past_its_seconds_to_the_next_keyframe_without_counting_errors():
    intake, counted = gate()
    video = make_h264(4, width=320, height=180, gop=30)  # 15 fps: a keyframe every 2 s
    packets = [intake.accept(message) for message in messages(video)]
    admitted = [intake.admit(packet, True) for packet in packets[:30]]
    assert admitted == [True] * 16 + [False] * 14  # 1 s of video from the first packet, its end included
    intake.dequeued(packets[:16])  # analysed, yet no frame reported decoded so far (its thread is still busy)
    assert not any(intake.admit(packet, True) for packet in packets[16:30])  # the rest of the shed GOP
    assert intake.admit(packets[30], True) and packets[30].keyframe  # room again, from the next keyframe
    assert counted == []  # shed packets are the server's doing, not the stream's: none counted as bad


def test_a_server_with_threads_to_spare_keeps_the_backlog_up_to_the_catch_up_limit():
    intake, _ = gate()
    packets = [intake.accept(message) for message in messages(make_h264(4, width=320, height=180, gop=30))]
    admitted = [intake.admit(packet, False) for packet in packets]
    assert admitted == [True] * 46 + [False] * 14  # 3 s behind at most, then on from the next keyframe (none left)
    assert intake.backlog_us(packets[45]) <= 3_000_000 < intake.backlog_us(packets[46])


def test_the_byte_bound_sheds_whatever_the_timestamps_say():
    intake, _ = gate(dataclasses.replace(LIMITS, max_backlog_bytes=4096))
    packet = intake.accept(messages(make_h264(1, width=320, height=180))[0])
    frozen = [dataclasses.replace(packet, dts=0, pts=0) for _ in range(100)]  # time never moves on
    admitted = [intake.admit(copy, False) for copy in frozen]
    assert 0 < sum(admitted) < 100 and intake.queued_bytes < 4096 + packet.cost


def test_decoder_errors_count_and_make_it_wait_for_a_keyframe():
    intake, counted = gate()
    packets = [intake.accept(message) for message in messages(make_h264(2, width=320, height=180, gop=10))]
    assert intake.admit(packets[0], False)
    intake.dequeued(packets[:1])
    intake.decoded(frames=0, errors=2)
    assert not intake.admit(packets[1], False)  # skipped while waiting for a keyframe: counted too
    assert intake.admit(packets[10], False)
    assert counted == [2, 1]


def test_access_units_without_a_picture_are_undecodable_and_end_a_flood():
    intake, counted = gate()
    with pytest.raises(ProtocolViolation) as refused:
        for _ in range(5):
            assert intake.accept(protocol.media(0, 0, b"\x00\x00\x01\x0a")) is None  # end of sequence only
    assert refused.value.reason == UNDECODABLE and counted == [1] * 5


def test_recorded_footage_is_taken_in_decode_order_only():
    counted: list[int] = []
    intake = Intake(LIMITS, lambda count, first: counted.append(count), complete=True)
    units = messages(make_h264(1, width=320, height=180))
    assert intake.accept(units[0]) is not None and intake.accept(units[1]) is not None
    assert intake.accept(units[1]) is None and intake.accept(units[0]) is None  # again, and older: not analysed
    assert counted == [1, 1] and intake.accept(units[2]) is not None


def recorded_gate() -> Intake:
    return Intake(dataclasses.replace(LIMITS, max_bad_packets=10_000), lambda count, first: None, complete=True)


@pytest.mark.parametrize("step_us", [1, 1_000, 6_000])
def test_recorded_footage_whose_decode_times_advance_faster_than_frames_is_refused(step_us):
    intake, unit = recorded_gate(), messages(make_h264(1, width=320, height=180))[0]
    start = 1_700_000_000_000_000
    with pytest.raises(ProtocolViolation) as refused:
        for index in range(1000):
            intake.accept(protocol.media(start + index * step_us, start + index * step_us, unit[16:]))
    assert refused.value.code == CloseCode.BAD_MEDIA
    assert refused.value.reason == "decode times advance faster than 120 frames a second"
    assert index == CADENCE_UNITS  # found within a quarter second's worth of frames: nothing more was taken


def test_recorded_footage_at_120_frames_a_second_on_a_jittery_clock_or_with_gaps_passes():
    intake, unit = recorded_gate(), messages(make_h264(1, width=320, height=180))[0][16:]
    dts = 1_700_000_000_000_000
    for index in range(1000):
        dts += 8_333 + (-2_000 if index % 2 else 2_000)  # 120 fps, truncated to µs, frames 2 ms early or late
        if index % 100 == 99:
            dts += 3_600_000_000  # an hour the agent dropped
        assert intake.accept(protocol.media(dts, dts, unit)) is not None
