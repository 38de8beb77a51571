"""A stream's analysis modes, what wakes an idle stream, and what each batch of its packets reports."""

import enum
from dataclasses import dataclass

from vigint.analysis.events import Event
from vigint.protocol import ProtocolViolation


class Mode(enum.StrEnum):
    ACTIVE = "active"  # every frame decoded
    IDLE = "idle"  # a keyframe now and then; the other packets' sizes watched
    FOLLOWING = "following"  # an incident's motion confirmed: keyframes only, until one looks still
    DISARMED = "disarmed"  # nothing decoded: packets only kept (the camera's schedule or a mute)


class Wake(enum.StrEnum):
    """What woke an idle stream."""

    KEYFRAME = "keyframe"  # the idle check of a keyframe showed motion
    SIZE = "size"  # the non-key frames grew (see trigger.py)
    FRAMES = "frames"  # frames queued before the stream went idle showed motion


@dataclass(frozen=True)
class Analysed:
    """What one batch of a stream's packets produced."""

    decoded: int  # frames the decoder produced
    events: list[Event]  # incident changes, in stream order
    waited: list[float]  # seconds each live packet of the batch waited from its arrival to its analysis
    refusal: ProtocolViolation | None  # the stream broke a limit: it is to be closed with this code
    mode: Mode = Mode.ACTIVE  # how the batch was decoded: idle checks only, or frames in full
    cpu_seconds: float = 0.0  # the worker thread's CPU time for the batch
    woke: Wake | None = None  # the stream woke since the last batch, and why
    until: int | None = None  # the decode time of the newest packet analysed in full so far (µs)
