"""What the incident desk and its clip recorders read of a stream: whose it is, and its footage.

A stream is seen through these Protocols, never as the connection's session or its analysis: the desk and the
recorders read recent packets (a ring reader) and the stream's identity, nothing of how it is received or
decoded.
"""

from typing import Protocol

from vigint.media import Packet


class Ring(Protocol):
    """A stream's recent footage: what a clip recorder takes its packets from."""

    @property
    def video_size(self) -> tuple[int, int] | None:
        """The full picture size, once a frame was decoded."""

    def packets(self) -> list[Packet]:
        """Return the packets the stream still holds, oldest first (from a keyframe)."""

    def newer_than(self, dts: int) -> list[Packet]:
        """Return the packets it holds decoded after `dts`, oldest first."""

    def newest_dts(self) -> int | None:
        """Return the decode time (µs) of the newest packet received, if any."""


class Feed(Ring, Protocol):
    """A stream as the desk sees it: whose it is, its footage, whether it ended."""

    camera: str

    @property
    def client_id(self) -> int: ...

    @property
    def key_id(self) -> int: ...

    @property
    def ended(self) -> bool:
        """Whether its connection closed (its analysis may still be flushing)."""

    @property
    def backfill(self) -> bool:
        """Whether the stream is recorded footage sent after an outage: its incidents are offline."""

    @property
    def over(self) -> bool:
        """Whether no more footage comes: its connection closed or its analysis ended."""

    async def notify(self, message: str) -> None:
        """Tell the stream's agent (nothing happens if the stream has closed)."""
