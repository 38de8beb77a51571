import time
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

import av
import pytest
from attacks import BitWriter, escape
from footage import make_h264
from hypothesis import given, settings
from hypothesis import strategies as st

from vigint import h264
from vigint.h264 import PictureSize

MAX_UNITS = 64  # a keyframe from libx264 holds SPS, PPS, SEI and a few slices
HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138)
PROPERTY = settings(max_examples=300, deadline=None)


# Real streams


def test_keyframes_of_a_real_stream_are_recognised():
    video = make_h264(4, gop=30)
    flags = [h264.is_keyframe(h264.nal_types(unit[3], MAX_UNITS)) for unit in video.units]
    assert flags == [unit[2] for unit in video.units]
    assert flags.count(True) == 2


def test_nal_types_of_hand_made_units():
    assert h264.nal_types(b"\x00\x00\x00\x01\x67aa\x00\x00\x01\x68bb\x00\x00\x01\x65cc", MAX_UNITS) == [7, 8, 5]
    assert h264.nal_types(b"garbage without start codes", MAX_UNITS) == []
    # an IDR without its SPS cannot start decoding
    assert not h264.is_keyframe(h264.nal_types(b"\x00\x00\x01\x65cc", MAX_UNITS))


@pytest.mark.parametrize("preset, profile_idc", [("ultrafast", 66), ("medium", 100)])
@pytest.mark.parametrize("width, height", [(320, 180), (1280, 720), (1920, 1080), (636, 358)])
def test_the_size_of_real_streams_is_read_from_their_sps(width, height, preset, profile_idc):
    video = make_h264(0.2, width=width, height=height, gop=2, preset=preset)
    inspections = [h264.inspect(unit[3], MAX_UNITS) for unit in video.units]
    assert [bool(inspection.sizes) for inspection in inspections] == [unit[2] for unit in video.units]
    assert {(size.width, size.height) for inspection in inspections for size in inspection.sizes} == {(width, height)}
    assert _profile_idc(video.units[0][3]) == profile_idc  # baseline and high profile SPS differ in layout


def test_macroblocks_count_the_coded_picture_before_cropping():
    video = make_h264(0.2, width=1920, height=1080, gop=2, preset="ultrafast")
    assert h264.inspect(video.units[0][3], MAX_UNITS).sizes == (PictureSize(1920, 1080, 120 * 68),)


@pytest.mark.parametrize("width, height, pix_fmt, options", [
    (636, 358, "yuv444p", {}),  # High 4:4:4, chroma_format_idc 3: crop units of one sample
    (636, 358, "yuv422p", {}),  # High 4:2:2: crop units of two samples across, one down
    (636, 358, "gray", {}),  # monochrome, chroma_format_idc 0
    (636, 358, "yuv420p10le", {}),  # High 10: bit depths coded
    (1920, 1080, "yuv420p", {"x264-params": "interlaced=1"}),  # fields: map units of two macroblock rows
    (636, 358, "yuv422p", {"x264-params": "interlaced=1"}),
])
def test_the_size_of_other_formats_matches_what_ffmpeg_decodes(width, height, pix_fmt, options):
    access_unit, decoded = _encode_one_frame(width, height, pix_fmt, tuple(options.items()))
    assert decoded == (width, height)
    size, = h264.inspect(access_unit, MAX_UNITS).sizes
    assert (size.width, size.height) == decoded


# Hand-made SPS


@pytest.mark.parametrize("width_mbs, height_map_units, crop, size", [
    (512, 512, None, PictureSize(8192, 8192, 512 * 512)),
    (1, 4096, None, PictureSize(16, 65536, 4096)),
    (256, 144, None, PictureSize(4096, 2304, 256 * 144)),
    (256, 144, (1, 2, 3, 4), PictureSize(4096 - 2 * 3, 2304 - 2 * 7, 256 * 144)),
    (2**32 - 1, 1, None, PictureSize(16 * (2**32 - 1), 16, 2**32 - 1)),  # the largest ue(v) value
])
def test_the_size_of_hand_made_sps(width_mbs, height_map_units, crop, size):
    fields = _Fields(width_mbs=width_mbs, height_map_units=height_map_units, crop=crop)
    assert h264.sps_picture_size(_write_sps(fields)) == size


def test_the_longest_legal_sps_is_read_whole():
    # 12 full scaling lists and a 255-entry cycle of 63-bit, zero-heavy codes: the longest SPS found by
    # searching field values, close to the 4 KiB once assumed to be enough.
    fields = _Fields(sps_id=6, chroma_format_idc=3, scaling_lists=((-128,) * 16,) * 6 + ((-128,) * 64,) * 6,
                     poc_type=1, offset_for_non_ref_pic=2**30, offset_for_top_to_bottom_field=2**30,
                     offsets_for_ref_frame=(2**30,) * 255, max_num_ref_frames=16, width_mbs=2**31,
                     height_map_units=2**31, crop=(2**31 - 1,) * 4)
    nal = _write_sps(fields)
    assert len(nal) > 3800
    assert h264.sps_picture_size(nal) == _expected_size(fields)


def test_a_huge_sps_is_read_only_as_far_as_its_fields():
    nal = _write_sps(_Fields()) + b"\xff" * (4 << 20)
    assert h264.sps_picture_size(nal) == PictureSize(320, 192, 240)
    inspection = h264.inspect(b"\x00\x00\x00\x01" + nal + b"\x00\x00\x01\x68\xce", MAX_UNITS)
    assert inspection == h264.Inspection((7, 8), (PictureSize(320, 192, 240),))


def test_an_sps_cut_by_the_next_start_code_is_malformed():
    nal = _write_sps(_Fields(crop=(0, 0, 0, 6)))
    with pytest.raises(h264.MalformedParameterSet):
        h264.inspect(b"\x00\x00\x00\x01" + nal[:8] + b"\x00\x00\x00\x01" + nal[8:], MAX_UNITS)


@pytest.mark.parametrize("change", [
    {"header": 0x68},  # a PPS
    {"header": 0xE7},  # forbidden_zero_bit set
    {"sps_id": 32},
    {"sps_id": 2**32 - 1},  # 32 leading zeros
    {"chroma_format_idc": 4},
    {"bit_depth_luma": 7},
    {"bit_depth_chroma": 7},
    {"scaling_lists": ((128,) + (0,) * 15,) + (None,) * 7},  # whole lists, so that only the range is wrong
    {"scaling_lists": ((-129,) + (0,) * 15,) + (None,) * 7},
    {"log2_max_frame_num": 13},
    {"poc_type": 3},
    {"log2_max_poc_lsb": 13},
    {"poc_type": 1, "offsets_for_ref_frame": (0,) * 256},
    {"max_num_ref_frames": 17},
    {"width_mbs": 1, "crop": (4, 4, 0, 0)},  # 16 luma samples cropped to nothing
    {"height_map_units": 1, "crop": (0, 0, 4, 4)},
    {"height_map_units": 1, "frame_mbs_only": 0, "crop": (0, 0, 4, 4)},  # fields double the crop unit
])
def test_values_out_of_range_are_malformed(change):
    with pytest.raises(h264.MalformedParameterSet):
        h264.sps_picture_size(_write_sps(replace(_Fields(), **change)))


@pytest.mark.parametrize("length", [0, 1, 4, -2])
def test_truncated_sps_are_malformed(length):
    with pytest.raises(h264.MalformedParameterSet, match="^the ") as error:
        h264.sps_picture_size(_write_sps(_Fields())[:length])
    assert len(str(error.value)) < 80


@PROPERTY
@given(nal=st.tuples(st.sampled_from([b"", b"\x67", b"\x67\x42", b"\x67\x64", b"\x67\xf4", b"\x67\x64\x00\x28"]),
                    st.binary(max_size=200)).map(b"".join))
def test_any_bytes_give_a_positive_size_or_malformed(nal):
    try:
        size = h264.sps_picture_size(nal)
    except h264.MalformedParameterSet:
        return
    assert size.width > 0 and size.height > 0 and size.macroblocks > 0


@PROPERTY
@given(fields=st.deferred(lambda: _valid_fields()))
def test_any_valid_sps_gives_its_size(fields):
    assert h264.sps_picture_size(_write_sps(fields)) == _expected_size(fields)


# NAL unit counting


@PROPERTY
@given(access_unit=st.lists(st.sampled_from([h264.START_CODE, b"\x00", b"\x09", b"\x65", b"\x67"])
                            | st.binary(max_size=6), max_size=40).map(b"".join),
       max_units=st.integers(0, 12))
def test_any_bytes_give_at_most_max_units_types_or_too_many(access_unit, max_units):
    expected = _nal_types_unbounded(access_unit)
    try:
        types = h264.nal_types(access_unit, max_units)
    except h264.TooManyUnits:
        assert len(expected) > max_units
        return
    assert types == expected
    assert len(types) <= max_units
    try:
        inspection = h264.inspect(access_unit, max_units)
    except h264.MalformedParameterSet:
        assert h264.SPS in types
        return
    except h264.TooManyUnits:
        assert types.count(h264.SPS) > h264.MAX_SPS_PER_ACCESS_UNIT
        return
    assert list(inspection.types) == types
    assert len(inspection.sizes) == types.count(h264.SPS)


def test_max_units_is_inclusive_and_start_codes_are_counted_once():
    access_unit = b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x01\x06\x05" * 2 + b"\x00\x00\x01\x65\x88"
    assert h264.nal_types(access_unit, 4) == [9, 6, 6, 5]
    assert h264.nal_types(access_unit + b"\x00\x00\x01", 4) == [9, 6, 6, 5]  # nothing after the last one
    with pytest.raises(h264.TooManyUnits):
        h264.nal_types(access_unit, 3)


def test_a_bomb_of_empty_units_is_refused_before_it_is_walked():
    bomb = b"\x00\x00\x01\x09" * (1 << 20)  # 4 MiB, a million access unit delimiters
    began = time.perf_counter()
    with pytest.raises(h264.TooManyUnits) as error:
        h264.inspect(bomb, MAX_UNITS)
    print(f"4 MiB bomb refused in {(time.perf_counter() - began) * 1000:.2f} ms")
    assert str(error.value) == "an access unit holds more than 64 NAL units"
    with pytest.raises(h264.TooManyUnits):
        h264.nal_types(bomb, MAX_UNITS)


def test_an_access_unit_of_many_long_sps_is_refused_before_they_are_read():
    sps = b"\x00\x00\x00\x01" + _write_sps(_Fields(poc_type=1, offsets_for_ref_frame=(2**30,) * 255))
    assert len(h264.inspect(sps * h264.MAX_SPS_PER_ACCESS_UNIT, MAX_UNITS).sizes) == h264.MAX_SPS_PER_ACCESS_UNIT
    with pytest.raises(h264.TooManyUnits, match="SPS"):
        h264.inspect(sps * (h264.MAX_SPS_PER_ACCESS_UNIT + 1), MAX_UNITS)


def test_a_large_access_unit_with_few_units_is_accepted():
    access_unit = b"\x00\x00\x00\x01\x65" + b"\x88\x84" * (2 << 20)
    assert h264.inspect(access_unit, MAX_UNITS) == h264.Inspection((5,), ())


def test_parameter_sets_are_extracted_for_clips():
    video = make_h264(0.2, width=320, height=180, gop=2, preset="ultrafast")
    parameter_sets = h264.parameter_sets(video.units[0][3])
    assert h264.nal_types(parameter_sets, MAX_UNITS) == [7, 8]
    assert h264.inspect(parameter_sets, MAX_UNITS).sizes == (PictureSize(320, 180, 240),)


# Helpers


@dataclass(frozen=True)
class _Fields:
    """The SPS fields up to the frame cropping, with a 320x192 High-profile default."""

    header: int = 0x67
    profile_idc: int = 100
    constraints_and_level: int = 0x0028
    sps_id: int = 0
    chroma_format_idc: int = 1
    separate_colour_plane: int = 0
    bit_depth_luma: int = 0
    bit_depth_chroma: int = 0
    scaling_lists: tuple[tuple[int, ...] | None, ...] | None = None  # deltas as coded; None: not present
    log2_max_frame_num: int = 0
    poc_type: int = 0
    log2_max_poc_lsb: int = 0
    offset_for_non_ref_pic: int = 0
    offset_for_top_to_bottom_field: int = 0
    offsets_for_ref_frame: tuple[int, ...] = ()
    max_num_ref_frames: int = 1
    width_mbs: int = 20
    height_map_units: int = 12
    frame_mbs_only: int = 1
    crop: tuple[int, int, int, int] | None = None


def _write_sps(f: _Fields) -> bytes:
    """Write the SPS fields in the order of ITU-T H.264 7.3.2.1.1."""
    bits = BitWriter()
    bits.u(8, f.profile_idc), bits.u(16, f.constraints_and_level), bits.ue(f.sps_id)
    if f.profile_idc in HIGH_PROFILES:
        bits.ue(f.chroma_format_idc)
        if f.chroma_format_idc == 3:
            bits.u(1, f.separate_colour_plane)
        bits.ue(f.bit_depth_luma), bits.ue(f.bit_depth_chroma), bits.u(1, 0)
        bits.u(1, f.scaling_lists is not None)
        for deltas in f.scaling_lists or ():
            bits.u(1, deltas is not None)
            for delta in deltas or ():
                bits.se(delta)
    bits.ue(f.log2_max_frame_num), bits.ue(f.poc_type)
    if f.poc_type == 0:
        bits.ue(f.log2_max_poc_lsb)
    elif f.poc_type == 1:
        bits.u(1, 0), bits.se(f.offset_for_non_ref_pic), bits.se(f.offset_for_top_to_bottom_field)
        bits.ue(len(f.offsets_for_ref_frame))
        for offset in f.offsets_for_ref_frame:
            bits.se(offset)
    bits.ue(f.max_num_ref_frames), bits.u(1, 0), bits.ue(f.width_mbs - 1), bits.ue(f.height_map_units - 1)
    bits.u(1, f.frame_mbs_only)
    if not f.frame_mbs_only:
        bits.u(1, 1)
    bits.u(1, 1), bits.u(1, f.crop is not None)
    for offset in f.crop or ():
        bits.ue(offset)
    return bytes([f.header]) + escape(bits.rbsp())


def _crop_units(f: _Fields) -> tuple[int, int]:
    """CropUnitX and CropUnitY (7.4.2.1.1), from SubWidthC and SubHeightC of Table 6-1."""
    chroma_format_idc = f.chroma_format_idc if f.profile_idc in HIGH_PROFILES else 1
    fields = 2 - f.frame_mbs_only
    if chroma_format_idc == 0 or (chroma_format_idc == 3 and f.separate_colour_plane):
        return 1, fields
    sub_width, sub_height = {1: (2, 2), 2: (2, 1), 3: (1, 1)}[chroma_format_idc]
    return sub_width, sub_height * fields


def _expected_size(f: _Fields) -> PictureSize:
    left, right, top, bottom = f.crop or (0, 0, 0, 0)
    unit_x, unit_y = _crop_units(f)
    fields = 2 - f.frame_mbs_only
    return PictureSize(f.width_mbs * 16 - unit_x * (left + right),
                       fields * f.height_map_units * 16 - unit_y * (top + bottom),
                       f.width_mbs * f.height_map_units * fields)


def _coded(deltas: list[int]) -> tuple[int, ...]:
    """The deltas of a scaling list as coded: the list ends once nextScale reaches 0."""
    scale = 8
    for index, delta in enumerate(deltas):
        scale = (scale + delta + 256) % 256
        if scale == 0:
            return tuple(deltas[:index + 1])
    return tuple(deltas)


UE = st.integers(0, 2**32 - 2)  # every value ue(v) can code
SE = st.integers(-(2**31) + 1, 2**31 - 1)  # every value se(v) can code


@st.composite
def _valid_fields(draw) -> _Fields:
    """Any SPS within the ranges ITU-T H.264 allows, with a crop that leaves a picture."""
    chroma_format_idc = draw(st.integers(0, 3))
    small, large = (st.lists(st.integers(-128, 127), min_size=size, max_size=size).map(_coded) for size in (16, 64))
    lists = st.tuples(*[st.none() | small] * 6, *[st.none() | large] * (6 if chroma_format_idc == 3 else 2))
    fields = _Fields(
        profile_idc=draw(st.sampled_from(HIGH_PROFILES + (66, 77, 88))),
        constraints_and_level=draw(st.integers(0, 0xFFFF)), sps_id=draw(st.integers(0, 31)),
        chroma_format_idc=chroma_format_idc,
        separate_colour_plane=draw(st.integers(0, 1)), bit_depth_luma=draw(st.integers(0, 6)),
        bit_depth_chroma=draw(st.integers(0, 6)), scaling_lists=draw(st.none() | lists),
        log2_max_frame_num=draw(st.integers(0, 12)), poc_type=draw(st.integers(0, 2)),
        log2_max_poc_lsb=draw(st.integers(0, 12)), offset_for_non_ref_pic=draw(SE),
        offset_for_top_to_bottom_field=draw(SE), offsets_for_ref_frame=tuple(draw(st.lists(SE, max_size=255))),
        max_num_ref_frames=draw(st.integers(0, 16)), width_mbs=draw(UE) + 1, height_map_units=draw(UE) + 1,
        frame_mbs_only=draw(st.integers(0, 1)))
    if not draw(st.booleans()):
        return fields
    unit_x, unit_y = _crop_units(fields)
    left, right = draw(_crop_pair(fields.width_mbs * 16 // unit_x))
    top, bottom = draw(_crop_pair((2 - fields.frame_mbs_only) * fields.height_map_units * 16 // unit_y))
    return replace(fields, crop=(left, right, top, bottom))


@st.composite
def _crop_pair(draw, units: int) -> tuple[int, int]:
    """Two crop offsets that leave at least one of the picture's `units` crop units."""
    first = draw(st.integers(0, min(units - 1, 2**32 - 2)))
    return first, draw(st.integers(0, min(units - 1 - first, 2**32 - 2)))


def _nal_types_unbounded(access_unit: bytes) -> list[int]:
    """The unbounded scan `nal_types` replaced, as the reference for what it must return."""
    types = []
    position = access_unit.find(h264.START_CODE)
    while position != -1 and position + 3 < len(access_unit):
        types.append(access_unit[position + 3] & 0x1F)
        position = access_unit.find(h264.START_CODE, position + 3)
    return types


def _profile_idc(access_unit: bytes) -> int:
    return access_unit[access_unit.find(b"\x00\x00\x01\x67") + 4]


@lru_cache(maxsize=None)
def _encode_one_frame(width: int, height: int, pix_fmt: str, options: tuple) -> tuple[bytes, tuple[int, int]]:
    """Encode one grey frame with libx264 in a given pixel format; return its access unit and decoded size."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
    encoder.time_base = Fraction(1, 15)
    encoder.options = {"preset": "ultrafast", **dict(options)}
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane in frame.planes:
        plane.update(bytes([128]) * plane.buffer_size)
    frame.pts = 0
    access_unit = bytes((encoder.encode(frame) + encoder.encode(None))[0])
    decoder = av.CodecContext.create("h264", "r")
    decoded = [*decoder.decode(av.Packet(access_unit)), *decoder.decode(None)][0]
    return access_unit, (decoded.width, decoded.height)


@pytest.mark.parametrize("profile_idc", [134, 135, 139, 144, 0, 255])
def test_a_profile_that_ffmpeg_and_the_standard_read_differently_is_refused(profile_idc):
    # 144 is read with chroma fields by FFmpeg and without by the standard, 134/135/139 the other way
    # round: a crafted SPS could declare 48x48 to one reader and 1280x720 to the other.
    with pytest.raises(h264.MalformedParameterSet):
        h264.sps_picture_size(_write_sps(_Fields(profile_idc=profile_idc)))
