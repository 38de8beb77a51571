"""Cameras' live views: one fragmented-MP4 muxer per camera while someone watches it, its fragments fanned out
to every viewer as the same bytes objects (fifty viewers cost one remux and fifty socket writes).

The packets live in the stream's ring, on the ingest side that the page may not import: `serve` lends the page
`Sources`, which finds a client's camera streaming to this node and tells the feed of each packet as it
reaches the ring. The feed keeps the init segment and the fragments since the newest keyframe, so a new
viewer starts at once from that keyframe, then follows the live edge; it is kept a few seconds after its last
viewer (`LiveViews`), so a page that reloads, or a browser that opens and closes its socket in a loop, does
not remux the GOP again. A GOP longer than MAX_OPEN_PACKETS is not remuxed at open: the feed starts at the
next keyframe.

A keyframe whose SPS differs from the first one's (the camera changed its resolution) cannot go under the
init segment the viewers have: the feed takes nothing more and is `stale`, and its viewers are told the
stream ended (the page reconnects and gets a new init segment).

Muxing runs in a worker thread (the event loop never runs a mux), one batch per feed at a time: packets
that arrive meanwhile wait in `_pending` and go together in the next batch, so a busy machine sends fewer,
later fragments rather than a growing backlog. A batch is at most MAX_BATCH_PACKETS: the pool's queue is
first in, first out and holds at most one batch per feed, so another camera's frames wait behind at most one
short batch of each feed, never behind a whole long GOP.

Each viewer's queue is bounded, in bytes and in age: a viewer whose socket stops reading is dropped, and the
fragments it held stay only as long as the feed needs them.
"""

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

from vigint.media import MICROSECONDS, Packet
from vigint.web.livemux import Fragment, FragmentMuxer, sps_of

log = logging.getLogger(__name__)

# A GOP longer than this (20 s at 30 frame/s) is a camera set for recording, not for watching: its viewer
# would wait for its browser to decode the whole GOP before the player jumps to the live edge, and each open
# would remux it all. Its feed starts at the next keyframe instead, the snapshot shown meanwhile.
MAX_OPEN_PACKETS = 600
MAX_BATCH_PACKETS = 60  # muxed in a few milliseconds


class Source(Protocol):
    """A camera's live stream on this node, as its viewers need it."""

    key_id: int  # the key it streams with: its viewers' minutes are counted there

    @property
    def ended(self) -> bool:
        """Whether its connection has closed."""

    @property
    def origin(self) -> int:
        """The decode time of its first frame (µs): its live view's time 0."""

    def newest_gop(self) -> list[Packet]:
        """Return the packets from its ring's newest keyframe on (empty before the first keyframe)."""

    def newest(self) -> Packet | None:
        """Return the newest packet its ring holds."""

    def watch(self, watcher: Callable[[], None]) -> None:
        """Call `watcher()` after each packet that reaches its ring, until `unwatch`."""

    def unwatch(self, watcher: Callable[[], None]) -> None:
        """Stop calling `watcher`."""


class Sources(Protocol):
    """The live streams this node receives."""

    def find(self, client_id: int, camera: str) -> Source | None:
        """Return the client's camera's open live stream on this node, if any."""


@dataclass(eq=False)
class Viewer:
    """One browser watching one camera: what is queued for its socket. Event loop only."""

    client_id: int
    camera: str
    # its session's stored hash, looked up again when the database changes (revocation, sign-out)
    session: str = field(repr=False)
    max_bytes: int
    max_seconds: float
    expires_at: float  # its session's end (wall clock): it is then signed out whatever the database says
    queue: deque = field(default_factory=deque)  # (queued at, str | bytes), oldest first
    queued_bytes: int = 0
    started: bool = False  # it has its init segment
    ended: str | None = None  # why it ends (it is then sent nothing more)
    joined_at: float = field(default_factory=time.monotonic)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _over: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, item: str | bytes, now: float) -> None:
        """Queue `item`, or end the viewer if its queue is over its bounds: a reader that stopped."""
        if self.ended:
            return
        if self.queued_bytes + len(item) > self.max_bytes or self.lagging(now):
            self.end("too slow")
            return
        self.queue.append((now, item))
        self.queued_bytes += len(item)
        self._ready.set()

    def lagging(self, now: float) -> bool:
        """Whether its oldest queued fragment has waited more than `max_seconds`."""
        return bool(self.queue) and now - self.queue[0][0] > self.max_seconds

    def end(self, reason: str) -> None:
        """Send it nothing more; its queue is let go at once."""
        if self.ended is None:
            self.ended = reason
        self.queue.clear()
        self.queued_bytes = 0
        self._ready.set()
        self._over.set()

    async def wait_ended(self) -> None:
        """Return once it has ended (a send stuck on a socket that stopped reading is then abandoned)."""
        await self._over.wait()

    async def next(self) -> str | bytes | None:
        """Wait for the next item to send; None once it has ended."""
        while not self.queue and self.ended is None:
            self._ready.clear()
            await self._ready.wait()
        if self.ended is not None:
            return None
        item = self.queue.popleft()[1]
        self.queued_bytes -= len(item)
        return item


class Feed:
    """One camera's live fragments for all its viewers. Event loop only (its muxer: a worker thread)."""

    def __init__(self, source: Source, camera: str, pool: Executor):
        self.source = source
        self.camera = camera
        self.viewers: set[Viewer] = set()
        self.header: str | None = None  # JSON: the codec and the time of the muxer's 0, once it started
        self.init = b""
        self.gop: list[bytes] = []  # fragments since the newest keyframe
        self.stale = False  # its camera's SPS changed: its viewers must start again
        self.idle_since: float | None = None  # when its last viewer left (it is kept a few seconds)
        self._pool = pool
        self._muxer: FragmentMuxer | None = None
        self._pending: list[Packet] = []
        self._last_dts: int | None = None
        self._sps: bytes | None = None  # its first keyframe's
        self._keyed = False  # it took a keyframe to start at
        self._busy = False
        self._closed = False

    def open(self) -> None:
        """Start muxing from the ring's newest keyframe (the next one if the GOP is too long), then each
        packet as it arrives."""
        gop = self.source.newest_gop()
        if 0 < len(gop) <= MAX_OPEN_PACKETS:
            self._pending = gop
            self._last_dts = gop[-1].dts
            self._keyed = True
            self._sps = _sps(gop[0])
        self.source.watch(self._arrived)
        self._kick()

    def close(self) -> None:
        """Stop following the stream and let the muxer go (once its batch, if any, is done)."""
        self._closed = True
        self.source.unwatch(self._arrived)
        if not self._busy and self._muxer is not None:
            self._pool.submit(self._muxer.close)

    def add(self, viewer: Viewer) -> None:
        """Take a viewer: it starts from the newest keyframe at once if the feed has started."""
        self.viewers.add(viewer)
        if self.header is not None:
            self._start(viewer, time.monotonic())

    def _start(self, viewer: Viewer, now: float) -> None:
        viewer.started = True
        for item in (self.header, self.init, *self.gop):
            viewer.offer(item, now)

    def _arrived(self) -> None:
        packet = self.source.newest()
        if self.stale or packet is None or self._last_dts is not None and packet.dts <= self._last_dts:
            return
        self._last_dts = packet.dts
        if packet.keyframe and not self._keyed:
            self._keyed = True
            self._sps = _sps(packet)
        elif not self._keyed:
            return  # a muxer starts at a keyframe
        elif packet.keyframe and (sps := _sps(packet)) is not None and sps != self._sps:
            self.stale = True
            return
        self._pending.append(packet)
        self._kick()

    def _kick(self) -> None:
        if self._busy or not self._pending or self._closed:
            return
        self._busy = True
        batch = self._pending[:MAX_BATCH_PACKETS]
        del self._pending[:MAX_BATCH_PACKETS]
        done = asyncio.get_running_loop().run_in_executor(self._pool, self._mux, batch)
        done.add_done_callback(self._muxed)

    def _mux(self, batch: list[Packet]) -> list[Fragment]:
        """Worker thread: the first batch starts the muxer (at its keyframe); a batch queued for a feed that
        closed meanwhile is skipped."""
        if self._closed:
            return []
        if self._muxer is None:
            self._muxer = FragmentMuxer(batch[0])
        return self._muxer.add(batch)

    def _muxed(self, done: asyncio.Future) -> None:
        self._busy = False
        if self._closed:
            if self._muxer is not None:
                self._pool.submit(self._muxer.close)
            return
        try:
            fragments = done.result()
        except Exception as error:  # noqa: BLE001 - FFmpeg or a bad SPS: this camera's view ends, no more
            log.warning("camera %r: its live view failed (%s)", self.camera, error)
            for viewer in self.viewers:
                viewer.end("failed")
            return
        now = time.monotonic()
        if self.header is None:
            self.init = self._muxer.init
            offset = (self._muxer.origin - self.source.origin) / MICROSECONDS
            self.header = json.dumps({"type": "start", "codec": self._muxer.codec, "offset": offset})
            for viewer in self.viewers:
                self._start(viewer, now)
        for fragment in fragments:
            if fragment.keyframe:
                self.gop = []
            self.gop.append(fragment.data)
            for viewer in self.viewers:
                viewer.offer(fragment.data, now)
        self._kick()


def _sps(keyframe: Packet) -> bytes | None:
    """Return a keyframe's SPS, None if it carries none (it then changes nothing)."""
    try:
        return sps_of(keyframe.data)
    except ValueError:
        return None
