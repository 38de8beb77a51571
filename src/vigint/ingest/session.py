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
from vigint.store import ApiKey, StreamEntry


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
    billed_dts: int | None = None  # a backfill's footage is billed up to this decode time
    acked: int | None = None  # a backfill's last ack: its footage up to this decode time is analysed and recorded
    on_settled: Callable[["Session"], None] | None = field(default=None, repr=False)

    @property
    def backfill(self) -> bool:
        """Whether it carries recorded footage sent after an outage (docs/protocol.md 4a), beside the live stream."""
        return self.analysis.backfill

    @property
    def client_id(self) -> int:
        return self.key.client_id

    @property
    def key_id(self) -> int:
        return self.key.id

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

    def incident_settled(self) -> None:
        """One of its incidents is recorded: a backfill may acknowledge more of its footage."""
        if self.on_settled is not None:
            self.on_settled(self)

    def entry(self, node_id: str) -> StreamEntry:
        return StreamEntry(self.client_id, self.camera, self.key.id, node_id, self.id, self.address, self.connected_at,
                           self.spooled_seconds)

    def live(self) -> LiveStream:
        return LiveStream(self.client_id, self.key.id, self.key.prefix, self.camera, self.address, self.connected_at,
                          self.analysis.frames_decoded, "backfill" if self.backfill else self.analysis.mode,
                          self.spooled_seconds)
