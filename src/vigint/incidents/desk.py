"""Incidents: from a stream's motion events to a recorded incident, its clip, an optional AI verdict and alerts.

Order matters and survives crashes: the incident row first, then the clip, then the alerts as outbox rows
that the alert sender delivers and retries until delivered, across restarts. Nothing blocking runs on the
event loop: the clip remux, the AI check and sending run in worker threads.

Incidents of a backfill (footage recorded while the camera was offline, sent later) are marked offline, and
their alerts wait for their end, which the alert states. The desk tells how far back such a stream's footage
must be kept (`holding`: while an incident is open or being recorded, from its pre-roll on) and when all its
incidents are recorded (`settled`). The same footage sent again after a server restart finds the offline
incident the first server recorded, and completes it instead of opening a second one.
"""

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from vigint import protocol
from vigint.alerts.outbox import Outbox
from vigint.analysis.events import Closed, Event, Extended, Opened
from vigint.analysis.pipeline import StreamAnalysis
from vigint.config import Settings
from vigint.incidents import clips
from vigint.incidents.storage import ClipStorage, StorageError
from vigint.incidents.verify import Verifier
from vigint.media import MICROSECONDS, Packet
from vigint.metrics import Metrics
from vigint.store import AlertState, Incident, Store, is_busy
from vigint.tasks import TaskSet

log = logging.getLogger(__name__)

CLIP_POLL_SECONDS = 0.2
# A write waits busy_timeout (5 s) for the lock before failing, so retries need not be frequent.
PERSIST_FIRST_RETRY_SECONDS = 0.5
PERSIST_MAX_RETRY_SECONDS = 30.0
# An offline incident resent after a restart starts where the first server saw it start, give or take the
# footage it was resent from (whole GOPs from before its pre-roll) and a few frames of analysis cadence.
REUSE_SLACK_SECONDS = 5.0
T = TypeVar("T")


class Feed(Protocol):
    """What the desk sees of a live stream: whose it is, its analysis (ring, picture size), whether it ended."""

    camera: str
    analysis: StreamAnalysis

    @property
    def client_id(self) -> int: ...

    @property
    def key_id(self) -> int: ...

    @property
    def ended(self) -> bool: ...

    @property
    def backfill(self) -> bool:
        """Whether the stream is recorded footage sent after an outage: its incidents are offline."""

    async def notify(self, message: str) -> None:
        """Tell the stream's agent (nothing happens if the stream has closed)."""

    def incident_settled(self) -> None:
        """One of the stream's incidents is recorded with its end, clip and alerts (see `IncidentDesk.holding`)."""


@dataclass
class OpenIncident:
    """A stream's incident in progress (times in µs of stream time)."""

    start: int
    last_motion: int
    id: int | None = None
    created: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # its end is recorded
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # its row, end, clip and alerts are
    unfinished: int = 2  # of its recording and its closing


async def persist(what: str, write: Callable[[], Awaitable[T]]) -> T:
    """Run a store write until the database takes it: another process holding the write lock (an admin
    command, a backup) delays an incident, never loses it. Other errors are raised at once."""
    delay = PERSIST_FIRST_RETRY_SECONDS
    while True:
        try:
            return await write()
        except Exception as error:  # noqa: BLE001 - re-raised unless the store says it is only busy
            if not is_busy(error):
                raise  # a full disk or a read-only file: retrying would only hide it
            log.warning("%s: database busy (%s); retrying in %.1f s", what, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, PERSIST_MAX_RETRY_SECONDS)


class IncidentDesk:
    """Turns the motion events of every stream of one server into incidents, clips and alerts."""

    def __init__(self, settings: Settings, store: Store, metrics: Metrics, pool: Executor, verifier: Verifier,
                 outbox: Outbox, clip_storage: ClipStorage):
        self.settings, self.store, self.metrics, self._pool = settings, store, metrics, pool
        self._verifier, self._outbox, self._clips = verifier, outbox, clip_storage
        self._open: dict[Feed, OpenIncident] = {}
        self._unsettled: dict[Feed, list[OpenIncident]] = {}  # open or still being recorded, oldest first
        self._recording = TaskSet()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for incidents being recorded (at shutdown), at most `timeout` seconds."""
        await self._recording.drain(timeout)

    def observe(self, feed: Feed, events: list[Event]) -> None:
        """Act on a stream's incident events, in order."""
        for event in events:
            if isinstance(event, Opened):
                incident = self._open[feed] = OpenIncident(event.start, event.start)
                self._unsettled.setdefault(feed, []).append(incident)
                self._recording.spawn(self._record(feed, incident))
            elif isinstance(event, Extended):
                self._open[feed].last_motion = event.end
            elif isinstance(event, Closed):
                self._recording.spawn(self._close(feed, self._open.pop(feed), event.end))

    def stream_ended(self, feed: Feed) -> None:
        """A stream closed (or a backfill sent all its footage): its open incident ends at its last motion."""
        incident = self._open.pop(feed, None)
        if incident is not None:
            self._recording.spawn(self._close(feed, incident, incident.last_motion))

    def holding(self, feed: Feed) -> int | None:
        """Return the newest decode time (µs) up to which the stream's footage may be forgotten while its incidents
        are open or being recorded (the pre-roll before the oldest one's start, less 1 µs), or None if none is."""
        pending = self._unsettled.get(feed)
        if not pending:
            return None
        return pending[0].start - int(self.settings.motion.pre_roll_seconds * MICROSECONDS) - 1

    async def settled(self, feed: Feed) -> None:
        """Wait until every incident of the stream opened so far is recorded with its end, clip and alerts."""
        for incident in list(self._unsettled.get(feed, [])):
            await incident.settled.wait()

    def _finished(self, feed: Feed, incident: OpenIncident) -> None:
        """One of an incident's two tasks (recording, closing) is over: once both are, it no longer holds footage."""
        incident.unfinished -= 1
        if incident.unfinished:
            return
        pending = self._unsettled.get(feed, [])
        if incident in pending:
            pending.remove(incident)
        if not pending:
            self._unsettled.pop(feed, None)
        incident.settled.set()
        feed.incident_settled()

    async def _close(self, feed: Feed, incident: OpenIncident, end_us: int) -> None:
        try:
            await incident.created.wait()
            if incident.id is not None:
                await persist(f"incident {incident.id}",
                              lambda: self.store.update_incident(incident.id, ended_at=end_us / MICROSECONDS))
        finally:
            incident.closed.set()
            self._finished(feed, incident)

    async def _record(self, feed: Feed, incident: OpenIncident) -> None:
        # The clip's packets are gathered from now on, beside the row's write: a write delayed by a busy
        # database must not let the ring forget the pre-roll.
        gathering = asyncio.ensure_future(self._clip_packets(feed, incident))
        try:
            row, alerted = await persist(f"client {feed.client_id} camera {feed.camera!r}",
                                         lambda: self._open_row(feed, incident.start / MICROSECONDS))
            incident.id = row.id
            incident.created.set()
            packets = await gathering
            clip_path = await self._write_clip(row, packets, feed.analysis.video_size)
            if feed.backfill:  # an offline incident's alert says when it ended: the footage has it already
                await incident.closed.wait()
            if not alerted:
                await self._judge_and_alert(feed, row, packets, clip_path)
        except Exception:  # noqa: BLE001 - one incident's failure must not stop the stream or the server
            log.exception("recording an incident of client %d camera %r failed", feed.client_id, feed.camera)
        finally:
            incident.created.set()
            gathering.cancel()
            self._finished(feed, incident)

    async def _open_row(self, feed: Feed, started_at: float) -> tuple[Incident, bool]:
        """Create the incident's row, or find the offline one the same footage made before a server restart;
        return it and whether its alerts were queued already."""
        if feed.backfill:
            slack = self.settings.motion.pre_roll_seconds + REUSE_SLACK_SECONDS
            found = await self.store.offline_incident_near(feed.client_id, feed.camera, started_at, slack)
            if found is not None:
                log.info("client %d camera %r: footage sent again continues offline incident %d", feed.client_id,
                         feed.camera, found[0].id)
                return found
        row = await self.store.create_incident(feed.client_id, feed.key_id, feed.camera, started_at,
                                               offline=feed.backfill)
        self.metrics.incidents += 1
        log.info("client %d camera %r: %sincident %d opened", feed.client_id, feed.camera,
                 "offline " if feed.backfill else "", row.id)
        return row, False

    async def _clip_packets(self, feed: Feed, incident: OpenIncident) -> list[Packet]:
        """Gather the clip's packets from the ring until its end has been received (or the stream ended)."""
        motion = self.settings.motion
        pre, post = int(motion.pre_roll_seconds * MICROSECONDS), int(motion.post_roll_seconds * MICROSECONDS)
        span = int(self.settings.buffers.long_buffer_seconds * MICROSECONDS)
        ring = feed.analysis.packets

        def end() -> int:
            # Cut before the ring forgets the pre-roll: a long event's clip shows its first seconds.
            return min(incident.last_motion + post, incident.start - pre + span)

        def fresh(taken: list[Packet]) -> list[Packet]:
            # What the ring received since the last look (it keeps seconds; we look every fraction of one).
            if not taken:
                return clips.select(ring.packets(), incident.start - pre, end())
            return [packet for packet in ring.packets() if packet.dts > taken[-1].dts]

        # A clip holds no more than the ring may, and gathers no longer than its span takes at real time
        # (plus slack): a sender whose clock crawls must not make the server hold its stream for ever.
        limit = self.settings.buffers.max_packet_buffer_bytes
        deadline = time.monotonic() + (span + post) / MICROSECONDS
        taken = fresh([])
        cost = sum(packet.cost for packet in taken)
        while (not (feed.ended or feed.analysis.ended) and (ring.newest_dts() or 0) < end()
               and time.monotonic() < deadline and cost < limit):
            await asyncio.sleep(CLIP_POLL_SECONDS)
            new = fresh(taken)  # nothing arrives between this and the checks above: no await
            taken += new
            cost += sum(packet.cost for packet in new)
        return [packet for packet in taken if packet.dts <= end()]

    async def _write_clip(self, incident: Incident, packets: list[Packet], size: tuple[int, int] | None) -> str | None:
        if not packets or size is None:
            log.warning("incident %d: no decodable video buffered for a clip", incident.id)
            return None
        folder = self._clips.local_folder
        if folder is not None and not self._has_room(folder):
            self.metrics.clips_skipped["disk_full"] += 1
            log.error("incident %d: no clip written, less than %d MB free in %s", incident.id,
                      self.settings.storage.min_free_mb, folder)
            return None
        relative = f"clips/{incident.client_id}/{incident.id}.mp4"
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self._clips.write, relative,
                                       lambda path: clips.write_mp4(packets, path, *size))
        except (OSError, clips.ClipError, StorageError) as error:
            self.metrics.clips_skipped["write_error"] += 1
            log.error("incident %d: cannot write its clip: %s", incident.id, error)
            return None
        await persist(f"incident {incident.id}", lambda: self.store.update_incident(incident.id, clip_path=relative))
        return relative

    def _has_room(self, folder: Path) -> bool:
        """Whether the disk of the clips folder keeps min_free_mb free (measured on the folder's nearest parent
        that exists: the folder itself is made with the first clip)."""
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return shutil.disk_usage(folder).free >= self.settings.storage.min_free_mb * 2**20

    async def _judge_and_alert(self, feed: Feed, incident: Incident, packets: list[Packet],
                               clip_path: str | None) -> None:
        alert, fields = True, {}
        if self._verifier.enabled:
            alert, fields = await self._verifier.check(feed.client_id, feed.key_id, feed.camera, packets)
        what = f"incident {incident.id}"
        if fields:
            await persist(what, lambda: self.store.update_incident(incident.id, **fields))
        if not alert:
            await persist(what, lambda: self.store.update_incident(incident.id, alert_state=AlertState.SUPPRESSED))
            return
        await persist(what, lambda: self.store.enqueue_alerts(incident.id, self._outbox.channels, time.time()))
        self._outbox.wake()
        incident = await self.store.get_incident(incident.id)
        await feed.notify(protocol.incident(incident.id, incident.camera, incident.type, incident.description,
                                            incident.threat, incident.started_at))
