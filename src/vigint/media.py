"""What every stage passes along, pure: encoded packets, analysis frames and the units of time."""

from __future__ import annotations  # numpy is imported for the type only: `vigint --help` starts without it

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MICROSECONDS = 1_000_000  # stream times are integers of µs since the Unix epoch, on the wire and inside
MICROSECOND = Fraction(1, MICROSECONDS)  # the same unit as a PyAV time base
SECONDS_PER_DAY = 86400
# What holding one packet costs beyond its bytes (the Packet, its bytes object, list slots), charged
# against byte caps so that a flood of 4-byte messages cannot hold millions of packets under them.
PACKET_OVERHEAD_BYTES = 256


@dataclass(frozen=True)
class Packet:
    """One access unit as received: times in µs since the Unix epoch."""

    pts: int
    dts: int
    keyframe: bool
    data: bytes

    @property
    def cost(self) -> int:
        """The memory this packet holds, as charged against byte caps."""
        return len(self.data) + PACKET_OVERHEAD_BYTES


@dataclass(frozen=True)
class Frame:
    """A downscaled gray frame for analysis, at its presentation time (µs since the Unix epoch)."""

    pts: int
    pixels: np.ndarray
