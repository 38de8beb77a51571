"""Footage sent again compared with an incident's clip (pure), and with a real clip's bytes."""

from footage import make_footage, write_clip

from vigint import h264
from vigint.incidents import evidence
from vigint.media import Packet

VIDEO = make_footage(6, gop_seconds=2, people=((1.0, 5.0),), fps=10, width=320, height=180)
OTHER = make_footage(6, gop_seconds=2, people=((1.5, 5.0),), noise=4.0, fps=10, width=320, height=180)
ORIGIN = 1_800_000_000_000_000


def packets(video, start: float = 0, end: float = 99) -> list[Packet]:
    return [Packet(ORIGIN + pts, ORIGIN + dts, h264.is_keyframe(h264.nal_types(data, 100)), data)
            for pts, dts, _, data in video.units if start * 1e6 <= pts < end * 1e6]


def clip_of(tmp_path, video) -> list[tuple[int, bytes]]:
    write_clip(packets(video), tmp_path / "clip.mp4", video.width, video.height)
    return evidence.clip_fingerprints((tmp_path / "clip.mp4").read_bytes())


CORE = (ORIGIN + 1_000_000, ORIGIN + 5_000_000)


def test_the_same_footage_sent_again_matches_its_clip_whole_or_in_part(tmp_path):
    clip = clip_of(tmp_path, VIDEO)
    assert len(clip) == len(VIDEO.units)
    assert evidence.matches(evidence.resent(packets(VIDEO)), clip, CORE)
    assert evidence.matches(evidence.resent(packets(VIDEO, 2, 4)), clip, CORE)


def test_other_pictures_for_the_same_times_do_not(tmp_path):
    clip = clip_of(tmp_path, VIDEO)
    assert not evidence.matches(evidence.resent(packets(OTHER)), clip, CORE)
    spliced = packets(VIDEO, 0, 2) + packets(OTHER, 2, 6)  # the start as recorded, then other pictures
    assert not evidence.matches(evidence.resent(spliced), clip, CORE)


def test_footage_beside_the_incident_adds_nothing_and_is_not_compared(tmp_path):
    clip = clip_of(tmp_path, VIDEO)
    later = [Packet(p.pts + 60_000_000, p.dts + 60_000_000, p.keyframe, p.data) for p in packets(OTHER)]
    assert evidence.matches(evidence.resent(later), clip, CORE)
