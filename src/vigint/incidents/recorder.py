"""An incident's clip, recorded as its stream goes, and its stills.

The recorder takes the pre-roll from the stream's packet ring as the incident opens, then the packets as they
arrive (it looks every CLIP_POLL_SECONDS; the ring keeps seconds), and appends them to a growing clip
(`clips.GrowingClip`) in worker threads once the incident has its row. The row names the clip as soon as it
can be read under that name: at once in a folder, where it grows in place and what a crash leaves of it plays;
once uploaded with object storage (`publish`, as the alert goes). The clip grows until the post-roll after the
incident's last motion once the incident closed, `max_clip_seconds` after its first packet, or the end of the
stream; a full disk or a write error stops it where it is. Then it is finished: a faststart MP4, trimmed to
the post-roll after the last motion, with a strip of stills over the event.

The clip's first span (its pre-roll to the post-roll after the motion that opened the incident, at most
`long_buffer_seconds`) is also kept in memory, as the alert needs it: the AI check looks at it and the
thumbnail (still 0) is made of it, as soon as it has arrived and while the clip grows on.
"""

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Protocol

import av

from vigint.incidents import clips, stills
from vigint.incidents.clipfiles import (ClipContext, NoRoom, check_room, finished_clip, strip_times,
                                        write_still)
from vigint.incidents.feed import Ring
from vigint.incidents.storage import StorageError
from vigint.media import MICROSECONDS, Packet

log = logging.getLogger(__name__)

CLIP_POLL_SECONDS = 0.2


class Motion(Protocol):
    """What a recorder sees of its incident (times in µs of stream time)."""

    start: int
    last_motion: int
    closed: asyncio.Event  # its end is recorded: its last motion moves no more


class Growth(enum.Enum):
    WAITING = enum.auto()  # for the incident's row to name the clip: what is taken is held in memory
    GROWING = enum.auto()
    STOPPED = enum.auto()  # at a full disk, a write error or its byte cap: the clip keeps what it has
    # no clip (no video, no room, or it could not be written): only the first span is taken
    NONE = enum.auto()


class ClipRecorder:
    """Records one incident's clip and stills (see the module's docstring). Made on the event loop as the
    incident opens: it takes the pre-roll at once."""

    def __init__(self, context: ClipContext, ring: Ring, motion: Motion):
        self._context = context
        self._ring = ring
        self._motion = motion
        settings = context.settings
        self._pre = int(settings.motion.pre_roll_seconds * MICROSECONDS)
        self._post = int(settings.motion.post_roll_seconds * MICROSECONDS)
        buffers = settings.buffers
        self._span = int(buffers.long_buffer_seconds * MICROSECONDS)
        self._max_clip = int(settings.motion.max_clip_seconds * MICROSECONDS)
        # The first span holds no more than the ring may, and the alert waits for it no longer than it takes
        # at real time: a sender whose clock crawls must not hold an alert back for ever. The whole clip holds
        # no more per second than the ring may (8 MiB for 10 s: about 240 MiB for 300 s).
        self._max_memory = buffers.max_packet_buffer_bytes
        self._max_bytes = int(self._max_memory * settings.motion.max_clip_seconds
                              / buffers.long_buffer_seconds)
        self._deadline = time.monotonic() + (self._span + self._post) / MICROSECONDS
        self._growth = Growth.WAITING
        self._clip = None
        self._name = ""
        self._newest: int | None = None  # the decode time of the newest packet taken
        # the clip ends before this decode time (max_clip_seconds from its first)
        self._cap: int | None = None
        self._first: list[Packet] = []  # the first span, until the alert takes it
        self._first_cost = 0
        self._first_ready = asyncio.Event()
        self._pending: list[Packet] = []  # taken, not written yet
        self._pending_cost = 0
        self._written = 0
        self._late = False
        self._stream_ended = False  # the clip stopped growing with its stream, before its end was known
        self._client_id = self._incident_id = 0  # the incident's row, once `begin` is told
        self._record: Callable[..., Awaitable] | None = None
        self._readable = False  # the row names the clip
        self._writing = asyncio.Lock()  # one worker at a time on the clip's file
        self.stills = 0  # stored so far
        self._keep(self._take())

    # Taking packets, on the event loop

    def follow(self, ring: Ring) -> None:
        """Take the clip's packets from now on from `ring`: its camera came back on a new stream within the
        cooldown, and the incident goes on (the clip shows the gap between the two streams as a jump)."""
        self._ring = ring

    def _take(self) -> list[Packet]:
        """Return the ring's packets received since the last look (the first time: from the pre-roll's
        keyframe), up to the clip's cap."""
        if self._newest is None:
            ring = self._ring.packets()
            fresh = clips.select(ring, self._motion.start - self._pre, ring[-1].dts) if ring else []
            if fresh:
                self._cap = fresh[0].dts + self._max_clip
        else:
            fresh = self._ring.newer_than(self._newest)
        if fresh:
            self._newest = fresh[-1].dts
        return [packet for packet in fresh if packet.dts < self._cap]

    def _first_end(self) -> int:
        # The first span's end: the post-roll after the motion seen so far, within one ring's span of its
        # start.
        end = min(self._motion.last_motion + self._post, self._motion.start - self._pre + self._span)
        return end if self._cap is None else min(end, self._cap)

    def _keep(self, fresh: list[Packet]) -> None:
        """Keep `fresh` for the clip, and for the first span while it is being gathered."""
        if not self._first_ready.is_set():
            first = [packet for packet in fresh if packet.dts <= self._first_end()]
            self._first += first
            self._first_cost += sum(packet.cost for packet in first)
        if self._growth in (Growth.WAITING, Growth.GROWING):
            self._pending += fresh
            self._pending_cost += sum(packet.cost for packet in fresh)

    def _mark_first_span(self, ended: bool) -> None:
        if (ended or self._late or self._newest is not None and self._newest >= self._first_end()
                or time.monotonic() >= self._deadline or self._first_cost >= self._max_memory):
            self._first_ready.set()

    def _over(self) -> bool:
        """Whether the clip has all it will get."""
        if self._growth in (Growth.NONE, Growth.STOPPED) or self._late:
            return self._first_ready.is_set()
        newest = self._newest or 0
        return (self._cap is not None and newest >= self._cap or self._written >= self._max_bytes
                or self._motion.closed.is_set() and newest >= self._motion.last_motion + self._post)

    async def grow(self, ended: Callable[[], bool]) -> None:
        """Take the clip's packets as they arrive and write them once the clip is open, until it has all it
        will get or the stream has `ended`; then close its file. Run it as a task beside the incident's
        recording."""
        try:
            while True:
                last_look = ended()  # read before the last take: nothing arrives after it
                # A row the database delays past what memory may hold: the clip is what was taken until then.
                held_too_much = self._growth is Growth.WAITING and self._pending_cost >= self._max_memory
                self._late = self._late or held_too_much
                if not self._late:
                    self._keep(self._take())
                self._mark_first_span(last_look)
                await self._write()
                if self._growth is not Growth.WAITING and (last_look or self._over()):
                    self._stream_ended = last_look and not self._over()
                    return
                await asyncio.sleep(CLIP_POLL_SECONDS)
        finally:
            self._first_ready.set()
            await self._close()

    async def first_span(self) -> list[Packet]:
        """Return the clip's first span once it has arrived (handed over once: the recorder keeps no copy)."""
        await self._first_ready.wait()
        packets = self._first
        self._first = []
        return packets

    # The clip's file, in worker threads

    async def _run(self, job: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self._context.pool, job, *args)

    async def _on_file(self, job: Callable, *args) -> None:
        """Run `job` in a worker thread, alone on the clip's file. A cancelled caller still waits for it to
        end (a worker cannot be stopped half-way), so the next job never meets it on the file."""
        async with self._writing:
            running = asyncio.get_running_loop().run_in_executor(self._context.pool, job, *args)
            try:
                await asyncio.shield(running)
            finally:
                if not running.done():
                    await asyncio.wait([running])

    async def begin(self, client_id: int, incident_id: int, record: Callable[..., Awaitable]) -> None:
        """Start the clip `clips/<client>/<incident>.mp4` of the incident's row with what was taken so far, or
        log and count why the incident has none. `record(**columns)` writes the row: the clip's time 0
        (`clip_from`, what a server finishing the clip after a crash needs), and its name as soon as the clip
        can be read under it (at once where it grows in place; `clip_path=None` if it is dropped)."""
        self._client_id = client_id
        self._incident_id = incident_id
        self._record = record
        name = f"clips/{client_id}/{incident_id}.mp4"
        size = self._ring.video_size
        if not self._pending or size is None:
            log.warning("incident %d: no decodable video buffered for a clip", incident_id)
            return self._refuse()
        try:
            growing = self._context.storage.growing(name)
            self._clip = await self._run(self._open, growing, self._pending[0], size)
        except NoRoom as error:
            self._context.metrics.clips_skipped["disk_full"] += 1
            log.error("incident %d: no clip written: %s", incident_id, error)
            return self._refuse()
        except (OSError, clips.ClipError) as error:
            self._context.metrics.clips_skipped["write_error"] += 1
            log.error("incident %d: cannot write its clip: %s", incident_id, error)
            return self._refuse()
        self._growth = Growth.GROWING
        self._name = name
        # the pre-roll on disk before the row names the clip: what a crash leaves of it plays
        await self._write()
        columns = {"clip_from": self._clip.base / MICROSECONDS}
        # it grows in place: readable under its name at once
        if self._context.storage.local_folder is not None:
            self._readable = True
            columns["clip_path"] = name
        await self._record(**columns)

    def _refuse(self) -> None:
        self._growth = Growth.NONE
        self._pending = []
        self._pending_cost = 0

    async def _named(self, readable: bool) -> None:
        """Record in the row whether the clip can be read under its name, if that changed."""
        if readable != self._readable:
            self._readable = readable
            await self._record(clip_path=self._name if readable else None)

    def _open(self, path: Path, first: Packet, size: tuple[int, int]) -> clips.GrowingClip:
        check_room(self._context)
        return clips.GrowingClip(path, first, *size)

    def _append(self, packets: list[Packet]) -> None:
        check_room(self._context)
        self._clip.add(packets)

    async def _write(self) -> None:
        """Append what was taken to the clip, if it is open; a full disk or a write error stops it (logged,
        counted) with what it has."""
        if self._growth is not Growth.GROWING or not self._pending:
            return
        packets = self._pending
        self._pending = []
        self._pending_cost = 0
        try:
            await self._on_file(self._append, packets)
        except (NoRoom, OSError, clips.ClipError) as error:
            self._cut(error)
            log.error("%s: stopped growing at %.1f s: %s", self._name, self._seconds(packets[0].dts), error)
            self._growth = Growth.STOPPED
            return
        self._written += sum(len(packet.data) for packet in packets)
        if self._written >= self._max_bytes:
            log.warning("%s: stopped growing at %d MB", self._name, self._written // 2**20)

    def _cut(self, error: Exception) -> None:
        """Count a clip that stopped growing, or could not be finished, once."""
        if self._growth is not Growth.STOPPED:
            self._context.metrics.clips_cut["disk_full" if isinstance(error, NoRoom) else "write_error"] += 1

    def _seconds(self, at_us: int) -> float:
        return (at_us - self._clip.base) / MICROSECONDS

    async def _close(self) -> None:
        if self._clip is None:
            return
        try:
            await self._on_file(self._clip.close)
        except clips.ClipError as error:
            log.error("%s: %s", self._name, error)  # its fragments written so far stay readable

    async def publish(self) -> None:
        """Make the clip readable as it has grown so far, for the alert's link (object storage: upload it). If
        it cannot be (logged, counted), the clip is dropped: the incident has none."""
        if self._clip is None or self._growth is Growth.NONE:
            return
        try:
            await self._on_file(self._context.storage.publish, self._name)
        except (OSError, StorageError) as error:
            self._context.metrics.clips_skipped["write_error"] += 1
            log.error("incident %d: cannot write its clip: %s", self._incident_id, error)
            self._refuse()
            await self._named(False)
            return
        await self._named(True)

    async def finish(self) -> None:
        """Once the clip has all it will get (`grow` returned), make it a faststart MP4 ending with the
        post-roll after the incident's last motion, and store its strip of stills. If that fails (logged,
        counted), the clip stays as it grew."""
        if self._clip is None:
            return
        if self._growth is Growth.NONE:  # dropped
            await self._run(partial(self._clip.path.unlink, missing_ok=True))
            return
        if self._stream_ended:
            await self._motion.closed.wait()  # the stream's last frames may still move the last motion
        end = min(self._cap, self._motion.last_motion + self._post)
        last_motion = min(self._motion.last_motion, end)
        strip = strip_times(self._motion.start, last_motion, self._clip.base, self.stills)
        until = self._clip.ticks(end)
        make = partial(finished_clip, self._context, self._clip.path, until=until, strip=strip)
        try:
            duration, jpegs = await self._run(self._context.storage.finish, self._name, make)
        except (NoRoom, OSError, clips.ClipError, StorageError) as error:
            self._cut(error)
            log.error("%s: not finished, kept as it grew: %s", self._name, error)
            return
        log.info("incident %d: clip of %.1f s finished", self._incident_id, duration)
        await self._named(True)
        await self._store(jpegs)

    # Stills

    async def thumbnail(self, packets: list[Packet]) -> None:
        """Store the incident's still 0, its thumbnail: the first frame of its first span `packets` at or
        after the motion's start."""
        try:
            jpeg = await self._run(stills.still_at, packets, self._motion.start)
        except av.FFmpegError as error:
            jpeg = None
            log.warning("incident %d: no thumbnail: %s", self._incident_id, error)
        await self._store([jpeg] if jpeg else [])

    async def _store(self, jpegs: list[bytes]) -> None:
        """Store `jpegs` as the incident's next stills, counted in `stills`; a write error stops it (logged,
        counted)."""
        for jpeg in jpegs:
            try:
                await self._run(write_still, self._context, self._client_id, self._incident_id, self.stills,
                                jpeg)
            except (OSError, StorageError) as error:
                self._context.metrics.stills_skipped["write_error"] += 1
                log.error("incident %d: cannot write still %d: %s", self._incident_id, self.stills, error)
                return
            self.stills += 1
