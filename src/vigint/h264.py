"""H.264 Annex-B inspection, pure: which NAL units an access unit holds."""

IDR = 5
SPS = 7
PPS = 8
START_CODE = b"\x00\x00\x01"


def nal_types(access_unit: bytes) -> list[int]:
    """Return the nal_unit_type of every NAL unit in an Annex-B access unit, in order."""
    types = []
    position = access_unit.find(START_CODE)
    while position != -1 and position + 3 < len(access_unit):
        types.append(access_unit[position + 3] & 0x1F)
        position = access_unit.find(START_CODE, position + 3)
    return types


def is_keyframe(types: list[int]) -> bool:
    """Tell whether a decoder can start at an access unit with these NAL unit types (SPS and IDR)."""
    return IDR in types and SPS in types


def parameter_sets(access_unit: bytes) -> bytes:
    """Return the SPS and PPS NAL units of an Annex-B access unit, each behind a 4-byte start code."""
    units, position = [], access_unit.find(START_CODE)
    while position != -1:
        following = access_unit.find(START_CODE, position + 3)
        end = len(access_unit) if following == -1 else following
        unit = access_unit[position + 3:end].rstrip(b"\x00")
        if unit and unit[0] & 0x1F in (SPS, PPS):
            units.append(b"\x00\x00\x00\x01" + unit)
        position = following
    return b"".join(units)
