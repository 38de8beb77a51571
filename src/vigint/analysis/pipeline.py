"""One stream's analysis, owned by one object: what is kept, what is decoded, what moved, what changed.

`StreamAnalysis` holds the stream's intake gate (limits and decode backlog), its packet ring (the source of
its clips), its decoder, its motion detector and its event tracker. The connection hands it media messages
(`receive`) on the event loop; `run` decodes them in worker threads a batch at a time, one batch of a stream
at once, and yields what each batch produced as an `Analysed` whose events open, extend and close incidents.
"""

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from vigint.analysis.decoder import DecodeResult, StreamDecoder
from vigint.analysis.events import Event, EventTracker
from vigint.analysis.intake import Intake, Limits
from vigint.analysis.motion import MotionDetector
from vigint.analysis.ring import PacketRing
from vigint.config import Settings
from vigint.media import Packet
from vigint.protocol import ProtocolViolation
from vigint.tasks import wait_for_event


def limits(settings: Settings) -> Limits:
    """Return what one stream may send, from the [server] settings."""
    server = settings.server
    return Limits(server.max_picture_width, server.max_picture_height, server.max_macroblocks, server.max_nal_units,
                  server.max_bad_packets, server.max_decode_backlog, server.max_decode_backlog_bytes)


@dataclass(frozen=True)
class Analysed:
    """What one batch of a stream's packets produced."""

    decoded: int  # frames the decoder produced
    events: list[Event]  # incident changes, in stream order
    waited: list[float]  # seconds each packet of the batch waited from its arrival to its analysis
    refusal: ProtocolViolation | None  # the stream broke a limit: it is to be closed with this code


class StreamAnalysis:
    """The analysis of one camera stream. `receive` and `end` on the event loop; `run` once, as a task."""

    def __init__(self, settings: Settings, limits: Limits, client_id: int, camera: str,
                 on_undecodable: Callable[[int, bool], None]):
        """`on_undecodable(count, first)` hears of media that cannot be decoded (see `Intake`)."""
        buffers, tuning = settings.buffers, settings.camera(client_id, camera)
        self.packets = PacketRing(buffers.long_buffer_seconds, buffers.max_packet_buffer_bytes)
        self.intake = Intake(limits, on_undecodable)
        self._decoder = StreamDecoder(buffers.analysis_width, buffers.analysis_fps, limits.max_width * limits.max_height)
        self._detector = MotionDetector(dataclasses.replace(settings.motion, sensitivity=tuning.sensitivity),
                                        tuning.masks)
        self._tracker = EventTracker(settings.motion)
        self._queue: asyncio.Queue[tuple[Packet, float] | None] = asyncio.Queue()
        self._ended = asyncio.Event()
        self.video_size: tuple[int, int] | None = None  # the full picture size, once a frame was decoded
        self.frames_decoded = 0

    def receive(self, message: bytes) -> None:
        """Check a media message, keep it in the ring and queue it for decoding if the gate lets it.

        Raises:
            ProtocolViolation: 4415 when the message breaks a limit or the stream cannot be decoded.
        """
        packet = self.intake.accept(message)
        if packet is None:
            return
        self.packets.append(packet)
        if self.intake.admit(packet):
            self._queue.put_nowait((packet, time.monotonic()))

    def end(self) -> None:
        """No more media: `run` analyses what is queued, flushes the decoder and returns."""
        self._queue.put_nowait(None)
        self._ended.set()

    async def run(self, pool: Executor, batch_seconds: float) -> AsyncIterator[Analysed]:
        """Analyse queued packets in `pool` until `end`, yielding each batch's outcome.

        A few packets go per hand-off to a worker thread (those that arrive within `batch_seconds`): each
        hand-off costs about as much as the Python side of a packet, and analysis needs frames no sooner.
        """
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            if batch[0] is not None:
                await wait_for_event(self._ended, batch_seconds)  # the stream's end need not wait for the batch
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            items = [item for item in batch if item is not None]
            if items:
                packets = [packet for packet, _ in items]
                self.intake.dequeued(packets)
                result, events = await loop.run_in_executor(pool, self._analyse, packets)
                done = time.monotonic()
                yield self._absorb(result, events, [done - received for _, received in items])
            if batch[-1] is None:
                result, events = await loop.run_in_executor(pool, self._flush)
                yield self._absorb(result, events, [])
                return

    def _analyse(self, packets: list[Packet]) -> tuple[DecodeResult, list[Event]]:
        """Decode, look for motion and track events (in a worker thread)."""
        return self._track(self._decoder.decode(packets))

    def _flush(self) -> tuple[DecodeResult, list[Event]]:
        """Drain the decoder at the end of the stream (in a worker thread)."""
        return self._track(self._decoder.flush())

    def _track(self, result: DecodeResult) -> tuple[DecodeResult, list[Event]]:
        events = [self._tracker.update(frame.pts, self._detector.update(frame.pixels).motion) for frame in result.frames]
        return result, [event for event in events if event is not None]

    def _absorb(self, result: DecodeResult, events: list[Event], waited: list[float]) -> Analysed:
        if result.size:
            self.video_size = result.size
        self.frames_decoded += result.decoded
        try:
            self.intake.decoded(result.decoded, result.errors)
        except ProtocolViolation as violation:
            return Analysed(result.decoded, events, waited, violation)
        return Analysed(result.decoded, events, waited, None)
