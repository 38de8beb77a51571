"""H.264 Annex-B inspection, pure: which NAL units an access unit holds, and the picture size its SPS
declares.

An access unit comes from an authenticated but possibly hostile client, so every call does a bounded
amount of Python-level work whatever the bytes:

- `inspect(access_unit, max_units)` is the one call the server makes per access unit. It returns an
  `Inspection`: the nal_unit_type of every NAL unit and the `PictureSize` of every SPS among them. It
  raises `TooManyUnits` (units counted at C speed, before any Python loop; or more than
  `MAX_SPS_PER_ACCESS_UNIT` SPS) and `MalformedParameterSet`, so a stream can be refused before its
  bytes reach FFmpeg's decoder.
- `nal_types(access_unit, max_units)` is the same scan without the SPS parsing, for trusted sources.
- `sps_picture_size(nal)` reads one SPS NAL unit (ITU-T H.264 7.3.2.1.1) up to the frame cropping; it
  looks at no more than `MAX_SPS_BYTES` of it.
- `is_keyframe(types)` and `parameter_sets(access_unit)` serve the ring buffer and clip writer.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vigint.errors import VigintError

IDR = 5
SPS = 7
PPS = 8
START_CODE = b"\x00\x00\x01"
# The regular expression engine finds it in one pass at about twice the speed of repeated bytes.find calls
# (a literal prefix search in C): every media message is scanned on the event loop.
_START_CODES = re.compile(re.escape(START_CODE))

# The longest legal SPS, up to the frame cropping, holds about 3.1 KB of RBSP (12 full scaling lists and a
# 255-entry picture-order-count cycle of 63-bit codes); emulation prevention adds up to half as much again,
# and 3.9 KB in the longest one the tests build. 8 KiB keeps a safe margin over 4 KiB at no measurable
# cost, and bounds the work a 4 MiB "SPS" can cause.
MAX_SPS_BYTES = 8192

# Reading that longest SPS takes about 0.5 ms of Python (some 750 Exp-Golomb codes): 256 of them in one
# access unit would hold the event loop for over 100 ms. An encoder puts one SPS before each IDR, maybe
# repeated; 8 bound the parsing to about 4 ms, near what counting the units of a 4 MiB access unit costs.
MAX_SPS_PER_ACCESS_UNIT = 8

# profile_idc values whose SPS carries chroma format, bit depths and scaling matrices (7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138})
# Profiles read alike by the standard and by FFmpeg. The rest are refused: for 134, 135 and 139 (MFC and
# 3D depth) the standard has the fields above and FFmpeg 8 does not; for 144 (the withdrawn High 4:4:4)
# FFmpeg has them and the standard does not. An SPS that two readers parse differently could show us a
# small picture and the decoder a huge one.
_PROFILES = frozenset({66, 77, 88}) | _HIGH_PROFILES

# (CropUnitX, CropUnitY for a frame-only stream) per chroma_format_idc, Table 6-1 and 7.4.2.1.1 (separate
# colour planes, ChromaArrayType 0, crop as 4:4:4 does); CropUnitY doubles when fields may be coded.
_CROP_UNITS = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}


class TooManyUnits(VigintError, ValueError):
    """An access unit holds more NAL units, or SPS, than allowed: each costs Python work to inspect."""


class MalformedParameterSet(VigintError, ValueError):
    """An SPS is truncated or holds a value outside the range ITU-T H.264 allows."""


@dataclass(frozen=True)
class PictureSize:
    """The decoded picture size an SPS declares, after cropping, and the macroblocks each frame costs."""

    width: int
    height: int
    macroblocks: int


@dataclass(frozen=True)
class Inspection:
    """What `inspect` found in one access unit: every NAL unit's type, in order, and every SPS's size."""

    types: tuple[int, ...]
    sizes: tuple[PictureSize, ...]


def inspect(access_unit: bytes, max_units: int) -> Inspection:
    """Return the NAL unit types of an Annex-B access unit and the picture size of each SPS in it.

    Raises TooManyUnits when it holds more than `max_units` NAL units or more than
    MAX_SPS_PER_ACCESS_UNIT SPS, MalformedParameterSet when one of its SPS cannot be parsed.
    """
    starts = _unit_starts(access_unit, max_units)
    types = tuple(access_unit[start] & 0x1F for start in starts)
    if types.count(SPS) > MAX_SPS_PER_ACCESS_UNIT:
        raise TooManyUnits(f"an access unit holds more than {MAX_SPS_PER_ACCESS_UNIT} SPS")
    ends = [following - len(START_CODE) for following in starts[1:]] + [len(access_unit)]
    sizes = tuple(_parse_sps(_sps_rbsp(access_unit, start, end))
                  for start, end, kind in zip(starts, ends, types) if kind == SPS)
    return Inspection(types, sizes)


def nal_types(access_unit: bytes, max_units: int) -> list[int]:
    """Return the nal_unit_type of every NAL unit in an Annex-B access unit, in order.

    Raises TooManyUnits when it holds more than `max_units` NAL units.
    """
    return [access_unit[start] & 0x1F for start in _unit_starts(access_unit, max_units)]


def has_picture(types: Sequence[int]) -> bool:
    """Tell whether an access unit with these NAL unit types holds a coded picture (a slice, types 1-5)."""
    return any(1 <= kind <= IDR for kind in types)


def is_keyframe(types: Sequence[int]) -> bool:
    """Tell whether a decoder can start at an access unit with these NAL unit types (SPS and IDR)."""
    return IDR in types and SPS in types


def parameter_sets(access_unit: bytes) -> bytes:
    """Return the SPS and PPS NAL units of an Annex-B access unit, each behind a 4-byte start code."""
    units = []
    position = access_unit.find(START_CODE)
    while position != -1:
        following = access_unit.find(START_CODE, position + 3)
        end = len(access_unit) if following == -1 else following
        unit = access_unit[position + 3:end].rstrip(b"\x00")
        if unit and unit[0] & 0x1F in (SPS, PPS):
            units.append(b"\x00\x00\x00\x01" + unit)
        position = following
    return b"".join(units)


def sps_picture_size(nal: bytes) -> PictureSize:
    """Return the picture size an SPS NAL unit declares; `nal` starts at its header byte, no start code.

    Raises MalformedParameterSet when it is not an SPS, is truncated, or holds an out-of-range value.
    """
    return _parse_sps(_sps_rbsp(nal, 0, len(nal)))


def _unit_starts(access_unit: bytes, max_units: int) -> list[int]:
    """Return where each NAL unit's header byte is, refusing more than `max_units` units.

    Emulation prevention keeps 00 00 01 out of NAL payloads, so each match found in C is a start code;
    the scan stops at the unit past the limit, so the Python loop runs at most `max_units` + 1 times
    whatever the bytes. A start code with nothing after it is no unit.
    """
    starts = []
    end = len(access_unit)
    for found in _START_CODES.finditer(access_unit):
        start = found.end()
        if start >= end:
            break
        if len(starts) == max_units:
            raise TooManyUnits(f"an access unit holds more than {max_units} NAL units")
        starts.append(start)
    return starts


def _sps_rbsp(data: bytes, start: int, end: int) -> bytes:
    """Return the RBSP of the NAL unit at data[start:end], header byte included, cut to MAX_SPS_BYTES.

    Only a whole unit loses its trailing zero bytes (they belong to the next start code); removing
    emulation-prevention bytes after the cut keeps the work bounded however long the unit is.
    """
    if end - start > MAX_SPS_BYTES:
        escaped = data[start:start + MAX_SPS_BYTES]
    else:
        escaped = data[start:end].rstrip(b"\x00")
    return escaped.replace(b"\x00\x00\x03", b"\x00\x00")


class _BitReader:
    """Read an RBSP MSB first, kept as a string of '0' and '1' so that each read is a C-speed find or
    int()."""

    def __init__(self, rbsp: bytes):
        self._bits = format(int.from_bytes(rbsp, "big"), f"0{len(rbsp) * 8}b") if rbsp else ""
        self._position = 0

    def u(self, count: int) -> int:
        """Read a `count`-bit unsigned integer, u(n)."""
        end = self._position + count
        if end > len(self._bits):
            raise MalformedParameterSet("the SPS ends too early")
        value = int(self._bits[self._position:end], 2)
        self._position = end
        return value

    def ue(self, maximum: int = 2**32 - 2) -> int:
        """Read an unsigned Exp-Golomb code, ue(v), of 31 leading zeros at most (values up to 2**32 - 2).

        Raises MalformedParameterSet for a longer code, one cut short, or a value over `maximum`.
        """
        position = self._position
        one = self._bits.find("1", position, position + 32)
        end = 2 * one - position + 1  # as many bits after the 1 as zeros before it
        if one == -1 or end > len(self._bits):
            raise MalformedParameterSet("the SPS holds an invalid Exp-Golomb code")
        value = int(self._bits[one:end], 2) - 1
        if value > maximum:
            raise MalformedParameterSet("the SPS holds a value out of range")
        self._position = end
        return value

    def se(self) -> int:
        """Read a signed Exp-Golomb code, se(v): 0, 1, -1, 2, -2, …"""
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


def _parse_sps(rbsp: bytes) -> PictureSize:
    """Read an SPS RBSP (header byte first) up to its frame cropping and return the picture size."""
    bits = _BitReader(rbsp)
    if bits.u(8) & 0x9F != SPS:  # forbidden_zero_bit and nal_unit_type; nal_ref_idc is ignored
        raise MalformedParameterSet("the NAL unit is not an SPS")
    profile_idc = bits.u(8)
    if profile_idc not in _PROFILES:
        raise MalformedParameterSet("the SPS has a profile this server does not decode")
    bits.u(16)  # constraint_set flags, reserved_zero_2bits and level_idc: any value is usable
    bits.ue(maximum=31)  # seq_parameter_set_id
    chroma_format_idc = _read_chroma_format(bits) if profile_idc in _HIGH_PROFILES else 1
    bits.ue(maximum=12)  # log2_max_frame_num_minus4
    _skip_picture_order_count(bits)
    bits.ue(maximum=16)  # max_num_ref_frames, never over MaxDpbFrames (16)
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    return _read_geometry(bits, chroma_format_idc)


def _read_chroma_format(bits: _BitReader) -> int:
    """Read the high profiles' chroma format, bit depths and scaling matrices; return chroma_format_idc."""
    chroma_format_idc = bits.ue(maximum=3)
    if chroma_format_idc == 3:
        bits.u(1)  # separate_colour_plane_flag: its crop units equal 4:4:4's, so it changes no size
    bits.ue(maximum=6)  # bit_depth_luma_minus8: 14 bits at most
    bits.ue(maximum=6)  # bit_depth_chroma_minus8
    bits.u(1)  # qpprime_y_zero_transform_bypass_flag
    if bits.u(1):  # seq_scaling_matrix_present_flag
        for index in range(12 if chroma_format_idc == 3 else 8):
            if bits.u(1):  # seq_scaling_list_present_flag
                _skip_scaling_list(bits, 16 if index < 6 else 64)
    return chroma_format_idc


def _skip_scaling_list(bits: _BitReader, size: int) -> None:
    """Read past scaling_list() (7.3.2.1.1.1): once nextScale becomes 0 the rest of the list is not coded."""
    next_scale = 8
    for _ in range(size):
        delta_scale = bits.se()
        if not -128 <= delta_scale <= 127:
            raise MalformedParameterSet("the SPS holds a scaling list value out of range")
        next_scale = (next_scale + delta_scale + 256) % 256
        if next_scale == 0:
            return


def _skip_picture_order_count(bits: _BitReader) -> None:
    """Read past pic_order_cnt_type and the fields each type adds."""
    pic_order_cnt_type = bits.ue(maximum=2)
    if pic_order_cnt_type == 0:
        bits.ue(maximum=12)  # log2_max_pic_order_cnt_lsb_minus4
    elif pic_order_cnt_type == 1:
        bits.u(1)  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        for _ in range(bits.ue(maximum=255)):  # num_ref_frames_in_pic_order_cnt_cycle
            bits.se()  # offset_for_ref_frame


def _read_geometry(bits: _BitReader, chroma_format_idc: int) -> PictureSize:
    """Read the size in macroblocks, the field coding and the cropping; return the displayed size."""
    width_mbs = bits.ue() + 1
    height_map_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    left = right = top = bottom = 0
    if bits.u(1):  # frame_cropping_flag
        left = bits.ue()
        right = bits.ue()
        top = bits.ue()
        bottom = bits.ue()
    fields = 2 - frame_mbs_only
    crop_x, crop_y = _CROP_UNITS[chroma_format_idc]
    width = width_mbs * 16 - crop_x * (left + right)
    height = fields * height_map_units * 16 - crop_y * fields * (top + bottom)
    if width <= 0 or height <= 0:
        raise MalformedParameterSet("the SPS crops its picture away")
    return PictureSize(width, height, width_mbs * height_map_units * fields)
