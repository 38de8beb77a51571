"""One authenticated camera stream, as the server holds it from its hello to its end."""

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed

from vigint.analysis.pipeline import StreamAnalysis
from vigint.fleet.monitor import LiveStream
from vigint.ingest.connections import AdmittedConnection
from vigint.ingest.exchange import Close, StreamExchange
from vigint.media import MICROSECONDS, Packet
from vigint.store import ApiKey, LiveSpan, StreamEntry

# How far ahead of the time it has been connected a live stream's footage may reach: its agent's queue
# on connecting.
LIVE_SPAN_SLACK_SECONDS = 60.0
# Live capture times this far from the server's clock are not remembered: a live stream is now, give or take a
# wrong clock, and a hostile header must not reach the database's integers.
MAX_CLOCK_OFFSET_SECONDS = 86400.0


@dataclass(eq=False)
class Session:
    """One authenticated camera stream: reachable only through its own connection's handler."""

    connection: AdmittedConnection
    key: ApiKey
    camera: str
    analysis: StreamAnalysis
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    address: str = ""
    connected_at: float = field(default_factory=time.time)
    accounted_until: float = field(default_factory=time.time)  # billed up to then
    checked: bool = False  # its key was looked up again after registration
    claimed: bool = False  # its camera name is registered for all nodes
    decode_task: asyncio.Task | None = None
    ended: bool = False  # its connection closed; it may still be flushing its decoder
    spooled_seconds: float | None = None  # a live stream's footage its agent is about to backfill
    exchange: StreamExchange | None = None  # what it sent and was sent, without I/O (see exchange.py)
    live_span: tuple[int, int] | None = None  # a live stream's first and newest capture times received (µs)
    # Told after each live media message has reached the ring (the customers' live view takes the newest
    # packet then, instead of polling the ring)
    watchers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def backfill(self) -> bool:
        """Whether it carries recorded footage sent after an outage (docs/protocol.md 4a), beside the live
        stream."""
        return self.analysis.backfill

    @property
    def acked(self) -> int | None:
        """A backfill's last ack: its footage up to this decode time is analysed and recorded."""
        return self.exchange.acked if self.exchange is not None else None

    @property
    def client_id(self) -> int:
        return self.key.client_id

    @property
    def key_id(self) -> int:
        return self.key.id

    @property
    def over(self) -> bool:
        """Whether no more footage comes: its connection closed or its analysis ended."""
        return self.ended or self.analysis.ended

    @property
    def video_size(self) -> tuple[int, int] | None:
        return self.analysis.video_size

    def packets(self) -> list[Packet]:
        """Return the packets its ring still holds, oldest first (the incident desk's clips are taken from
        them)."""
        return self.analysis.packets.packets()

    def newer_than(self, dts: int) -> list[Packet]:
        return self.analysis.packets.newer_than(dts)

    def newest_dts(self) -> int | None:
        return self.analysis.packets.newest_dts()

    @property
    def welcomed(self) -> bool:
        """Whether the welcome went out: from then on the stream is billed and decoded."""
        return self.decode_task is not None

    async def notify(self, message: str) -> None:
        """Send the agent a control message, unless the stream has closed."""
        try:
            await self.connection.send(message)
        except ConnectionClosed:
            pass

    async def send(self, decided: list[str | Close]) -> None:
        """Send what its exchange decided, in order: a close last, awaited until the connection is closed."""
        for item in decided:
            if isinstance(item, Close):
                await self.connection.close(item.code, item.reason)
            else:
                await self.connection.send(item)

    def entry(self, node_id: str) -> StreamEntry:
        return StreamEntry(self.client_id, self.camera, self.key.id, node_id, self.id, self.address,
                           self.connected_at, self.spooled_seconds)

    def received(self, dts: int, now: float) -> None:
        """Note the decode time `dts` of a live stream's packet accepted at `now` (see `footage`). Its span
        grows no faster than the clock: a camera whose clock jumps ahead must not make later backfills look
        delivered already. Its watchers are told first, whatever its capture time."""
        for watcher in self.watchers:
            watcher()
        if abs(dts - now * MICROSECONDS) > MAX_CLOCK_OFFSET_SECONDS * MICROSECONDS:
            return
        if self.live_span is None:
            self.live_span = (dts, dts)
            return
        first, last = self.live_span
        most = first + int((now - self.connected_at + LIVE_SPAN_SLACK_SECONDS) * MICROSECONDS)
        self.live_span = (first, max(last, min(dts, most)))

    def footage(self) -> LiveSpan | None:
        """The live footage it received so far, if any (footage sent again as backfill is not analysed
        twice)."""
        if self.live_span is None:
            return None
        return LiveSpan(self.id, self.client_id, self.camera, *self.live_span)

    def live(self) -> LiveStream:
        mode = "backfill" if self.backfill else self.analysis.mode
        return LiveStream(self.client_id, self.key.id, self.key.prefix, self.camera, self.address,
                          self.connected_at, self.analysis.frames_decoded, mode, self.spooled_seconds)
