"""H.264 Annex-B inspection, pure: which NAL units an access unit holds."""

IDR = 5
SPS = 7
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
