"""Incidents: from a stream's motion events to a recorded incident, its clip, an optional AI verdict and
alerts.

Order matters and survives crashes: the incident row first, naming this run of this node as the one recording
it, in one transaction with its alerts (outbox rows held back), then its clip, named in the row as soon as it
can be read (at once in a folder, where what a crash leaves of it plays: see recorder.py), then its thumbnail,
then the verdict, which releases the alerts for the sender to deliver and retry until delivered, across
restarts (or suppresses them). Alerts go as soon as the clip's first span has arrived, while a long event's
clip grows on; the clip is finished (faststart, with its strip of stills) once its incident ended, and the row
then stops naming this run. If the run dies before, another node (or this one restarted) finishes the incident
and releases its alerts: see recovery.py, which the desk runs. Nothing blocking runs on the event loop: the
clip's writing and remux, stills, the AI check and sending run in worker threads.

Incidents of a backfill (footage recorded while the camera was offline, sent later) are marked offline, and
their alerts wait for their end, which the alert states. The desk tells how far back such a stream's footage
must be kept (`holding`: while an incident is open or its clip is being recorded, from its pre-roll on) and
when all its incidents are recorded (`settled`). The same footage sent again after a server restart finds the
offline incident the first server recorded, and completes it instead of opening a second one; once that
incident was alerted, its clip and stills are evidence that footage sent again is compared with, never
recorded over (see evidence.py).

The cooldown belongs to the camera, not to its connection: a live stream that ends with its incident open
leaves it waiting (parked) for the cooldown, and a new stream of the camera with motion within it takes the
incident over, its clip growing on from the new stream. A camera back on another node (or after a restart)
finds the incident in the database: the new stream moves its end on and records no clip of its own (a node
cannot append to another's clip), and no second alert goes.
"""

import asyncio
import logging
import time
from collections import defaultdict
from concurrent.futures import Executor
from dataclasses import dataclass, field

from vigint import protocol
from vigint.alerts.outbox import Outbox
from vigint.analysis.events import Closed, Event, Extended, Opened
from vigint.config import Settings
from vigint.errors import NotFoundError
from vigint.incidents import evidence
from vigint.incidents.clipfiles import ClipContext
from vigint.incidents.feed import Feed
from vigint.incidents.recorder import ClipRecorder
from vigint.incidents.recovery import Recovery
from vigint.incidents.storage import ClipStorage, still_name
from vigint.incidents.verify import Verifier
from vigint.incidents.writes import persist
from vigint.media import MICROSECONDS, Packet
from vigint.metrics import Metrics
from vigint.store import Incident, Store
from vigint.tasks import TaskSet

log = logging.getLogger(__name__)

@dataclass
class OpenIncident:
    """A stream's incident in progress (times in µs of stream time)."""

    start: int
    last_motion: int
    id: int | None = None
    created: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # its end is recorded
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # its row, end, clip, stills and alerts are
    unfinished: int = 2  # of its recording and its closing
    # the stream its footage comes from now (a camera back within the cooldown: its new one)
    feed: Feed | None = None
    recorder: ClipRecorder | None = None
    # its stream ended: it waits the cooldown for the camera to come back
    parked: asyncio.TimerHandle | None = None
    # its stream's analysis tells it nothing more: its end came, or the desk heard its stream end (after its
    # last frames were analysed, not as its connection closed)
    told: bool = False

    def footage_over(self) -> bool:
        """Whether its footage has stopped for good: its stream ended, and it does not wait for the camera.
        Not before the desk is told: between a connection's close and the analysis of its last frames (a
        followed incident's replay, a loaded machine) the clip must keep growing, or a camera back within the
        cooldown would find it closed."""
        return self.told and self.parked is None and self.feed.over


class IncidentDesk:
    """Turns the motion events of every stream of one server into incidents, clips and alerts."""

    def __init__(self, settings: Settings, store: Store, metrics: Metrics, pool: Executor, verifier: Verifier,
                 outbox: Outbox, clip_storage: ClipStorage, node_id: str):
        """`node_id` is this server's among the nodes (`host:port`)."""
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self._verifier = verifier
        self._outbox = outbox
        self._clip_context = ClipContext(settings, clip_storage, metrics, pool)
        self._recovery = Recovery(self._clip_context, store, outbox.wake, node_id)
        self.run_id = self._recovery.run_id  # names this run in the rows of the incidents it records
        self._open: dict[Feed, OpenIncident] = {}
        self._parked: dict[tuple[int, str], OpenIncident] = {}  # by client and camera, see `stream_ended`
        # One look-up-or-create at a time per camera: two streams of it (one ending, one back) make one
        # incident.
        self._opening: defaultdict[tuple[int, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._unsettled: dict[Feed, list[OpenIncident]] = {}  # open or still being recorded, oldest first
        self._recording = TaskSet()
        self.released = False  # an incident let go of its stream's footage and its clip: the heap may be trimmed

    async def run(self, stopping: asyncio.Event) -> None:
        """Finish what dead runs of nodes left (recovery.py), as the server starts and then regularly, until
        `stopping`."""
        await self._recovery.run(stopping)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for incidents being recorded (at shutdown), at most `timeout` seconds; those waiting for their
        camera to come back end now."""
        for camera, incident in list(self._parked.items()):
            incident.parked.cancel()
            self._unpark(camera, incident)
        await self._recording.drain(timeout)

    def observe(self, feed: Feed, events: list[Event]) -> list[asyncio.Event]:
        """Act on a stream's incident events, in order. Return the `settled` event of each incident opened:
        set once it is recorded with its end, clip and alerts, when it no longer holds the stream's
        footage."""
        opened = []
        for event in events:
            if isinstance(event, Opened):
                if self._resume(feed, event.start):
                    continue
                incident = self._open[feed] = OpenIncident(event.start, event.start, feed=feed)
                self._unsettled.setdefault(feed, []).append(incident)
                self._recording.spawn(self._record(feed, incident))
                opened.append(incident.settled)
            elif feed not in self._open:
                continue  # its camera came back on a new stream, which took the incident over (see `_resume`)
            elif isinstance(event, Extended):
                self._open[feed].last_motion = event.end
            elif isinstance(event, Closed):
                self._open[feed].told = True
                self._recording.spawn(self._close(feed, self._open.pop(feed), event.end))
        return opened

    def stream_ended(self, feed: Feed) -> None:
        """A stream closed (or a backfill sent all its footage): its open incident ends at its last motion; a
        live one's, unless its camera comes back within the cooldown (see `_resume`)."""
        incident = self._open.pop(feed, None)
        if incident is None:
            return
        incident.told = True
        if feed.backfill:
            self._recording.spawn(self._close(feed, incident, incident.last_motion))
            return
        # As on a stream that goes on: the incident ends once the cooldown has passed since its last motion.
        quiet = max(0, (feed.newest_dts() or incident.last_motion) - incident.last_motion)
        wait = max(0.0, self.settings.motion.cooldown_seconds - quiet / MICROSECONDS)
        camera = (feed.client_id, feed.camera)
        incident.parked = asyncio.get_running_loop().call_later(wait, self._unpark, camera, incident)
        self._parked[camera] = incident

    def _unpark(self, camera: tuple[int, str], incident: OpenIncident) -> None:
        """The camera did not come back within the cooldown: its incident ends at its last motion."""
        incident.parked = None
        if self._parked.get(camera) is incident:
            del self._parked[camera]
        self._recording.spawn(self._close(incident.feed, incident, incident.last_motion))

    def _waiting(self, feed: Feed) -> OpenIncident | None:
        """Take the incident a live stream's camera left on this node: parked, or still open on its ended
        stream."""
        camera = (feed.client_id, feed.camera)
        incident = self._parked.pop(camera, None)
        if incident is not None:
            return incident
        for other, incident in self._open.items():
            if other.ended and not other.backfill and (other.client_id, other.camera) == camera:
                return self._open.pop(other)
        return None

    def _resume(self, feed: Feed, start: int) -> bool:
        """A camera back within the cooldown, with motion from `start` (µs): continue its incident, on this
        node, if it waits for it (or its ended stream is still being analysed); its clip grows on from the new
        stream. Return whether it did."""
        incident = None if feed.backfill else self._waiting(feed)
        if incident is None:
            return False
        if incident.parked is not None:
            incident.parked.cancel()
            incident.parked = None
        pending = self._unsettled.pop(incident.feed, [])
        if incident in pending:
            pending.remove(incident)
            self._unsettled.setdefault(feed, []).append(incident)
        if pending:
            self._unsettled[incident.feed] = pending
        incident.feed = feed
        incident.told = False
        incident.last_motion = max(incident.last_motion, start)
        if incident.recorder is not None:
            incident.recorder.follow(feed)
        self._open[feed] = incident
        log.info("client %d camera %r is back within the cooldown: incident %s continues", feed.client_id,
                 feed.camera, incident.id)
        return True

    def holding(self, feed: Feed) -> int | None:
        """Return the newest decode time (µs) up to which the stream's footage may be forgotten while its
        incidents are open or being recorded (the pre-roll before the oldest one's start, less 1 µs), or None
        if none is."""
        pending = self._unsettled.get(feed)
        if not pending:
            return None
        return pending[0].start - int(self.settings.motion.pre_roll_seconds * MICROSECONDS) - 1

    async def settled(self, feed: Feed) -> None:
        """Wait until every incident of the stream opened so far is recorded with its end, clip and alerts."""
        for incident in list(self._unsettled.get(feed, [])):
            await incident.settled.wait()

    async def _finished(self, feed: Feed, incident: OpenIncident) -> None:
        """One of an incident's two tasks (recording, closing) is over: once both are, its row stops naming
        this node (alerts still held go now: its recording failed before its verdict), and it no longer holds
        footage."""
        incident.unfinished -= 1
        if incident.unfinished:
            return
        feed = incident.feed or feed  # a camera back within the cooldown: its new stream holds it now
        if incident.id is not None:
            try:
                if await persist(f"incident {incident.id}",
                                 lambda: self.store.incident_recorded(incident.id, self.run_id, time.time())):
                    self._outbox.wake()
            except Exception:  # noqa: BLE001 - left to recovery.py once this node stops: logged
                log.exception("incident %d: could not record that it is recorded", incident.id)
        pending = self._unsettled.get(feed, [])
        if incident in pending:
            pending.remove(incident)
        if not pending:
            self._unsettled.pop(feed, None)
        incident.settled.set()
        self.released = True

    async def _close(self, feed: Feed, incident: OpenIncident, end_us: int) -> None:
        try:
            await incident.created.wait()
            if incident.id is not None:
                await persist(f"incident {incident.id}",
                              lambda: self.store.extend_incident(incident.id, end_us / MICROSECONDS))
        finally:
            incident.closed.set()
            await self._finished(feed, incident)

    async def _record(self, feed: Feed, incident: OpenIncident) -> None:
        # The clip takes its pre-roll from the ring now and grows beside the row's write: a write delayed by a
        # busy database must not let the ring forget the pre-roll.
        recorder = incident.recorder = ClipRecorder(self._clip_context, feed, incident)
        growing = asyncio.ensure_future(recorder.grow(incident.footage_over))
        deleted = False
        try:
            async with self._opening[(feed.client_id, feed.camera)]:
                row, alerted = await persist(f"client {feed.client_id} camera {feed.camera!r}",
                                             lambda: self._open_row(feed, incident.start / MICROSECONDS))
            if alerted:  # its clip and alerts are another's: never recorded over
                growing.cancel()
                return await self._recorded_already(feed, incident, row)
            incident.id = row.id
            incident.created.set()
            what = f"incident {row.id}"
            store = self.store  # the recorder writes the row through the store, never through the desk
            await recorder.begin(row.client_id, row.id, lambda **columns: persist(
                what, lambda: store.update_incident(row.id, **columns)))
            await self._alert(feed, incident, row, alerted, recorder)
            await growing
            await recorder.finish()
            await persist(what, lambda: self.store.update_incident(row.id, stills=recorder.stills))
        # its row went with its client (`vigint client delete`) while the stream was open
        except NotFoundError:
            deleted = True
        except Exception:  # noqa: BLE001 - one incident's failure must not stop the stream or the server
            log.exception("recording an incident of client %d camera %r failed", feed.client_id, feed.camera)
        finally:
            incident.created.set()
            growing.cancel()
            await asyncio.gather(growing, return_exceptions=True)  # its file closed
            if deleted and incident.id is not None:
                await self._forget(feed, incident.id, recorder.stills)
            await self._finished(feed, incident)

    async def _forget(self, feed: Feed, incident_id: int, stills: int) -> None:
        """Remove the files of an incident whose client was deleted as it was recorded: the deletion removed
        the files it knew of, these were written after it."""
        names = [f"clips/{feed.client_id}/{incident_id}.mp4",
                 *(still_name(feed.client_id, incident_id, index) for index in range(stills))]
        await asyncio.to_thread(self._clip_context.storage.remove_client, feed.client_id, names)
        log.info("client %d was deleted while camera %r streamed: its incident %d is dropped", feed.client_id,
                 feed.camera, incident_id)

    async def _alert(self, feed: Feed, incident: OpenIncident, row: Incident, alerted: bool,
                     recorder: ClipRecorder) -> None:
        """Alert (unless `alerted` already) once the clip's first span has arrived, with its thumbnail stored
        first (emails show it); the clip grows on meanwhile."""
        packets = await recorder.first_span()
        await recorder.thumbnail(packets)
        if recorder.stills:
            await persist(f"incident {row.id}",
                          lambda: self.store.update_incident(row.id, stills=recorder.stills))
        if feed.backfill:  # an offline incident's alert says when it ended: the footage has it already
            await incident.closed.wait()
        if alerted:
            return
        await recorder.publish()  # the alert's link opens what has grown so far
        await self._judge_and_alert(feed, row, packets)

    async def _open_row(self, feed: Feed, started_at: float) -> tuple[Incident, bool]:
        """Create the incident's row with its held alerts, or find the offline one the same footage made
        before a server restart (unless a node records it still), or the camera's incident that a live stream
        of it left within the cooldown (on another node, or before a restart); return it and whether its
        alerts were released already (a live one found: by the stream that opened it)."""
        if not feed.backfill:
            since = started_at - self.settings.motion.cooldown_seconds
            found = await self.store.incident_to_continue(feed.client_id, feed.camera, since)
            if found is not None:
                log.info("client %d camera %r is back within the cooldown: incident %d continues",
                         feed.client_id, feed.camera, found.id)
                return found, True
        else:
            slack = self.settings.motion.pre_roll_seconds + evidence.REUSE_SLACK_SECONDS
            found = await self.store.offline_incident_near(feed.client_id, feed.camera, started_at, slack)
            # One alerted already is only compared with (see `_recorded_already`), never taken: nothing of it
            # is recorded again.
            if found is not None:
                offline, alerted = found
                if alerted or await self.store.take_incident(offline.id, self.run_id, None):
                    log.info("client %d camera %r: footage sent again continues offline incident %d",
                             feed.client_id, feed.camera, offline.id)
                    return found
        row = await self.store.create_incident(feed.client_id, feed.key_id, feed.camera, started_at,
                                               offline=feed.backfill, recorder=self.run_id,
                                               channels=self._outbox.channels)
        self.metrics.incidents += 1
        log.info("client %d camera %r: %sincident %d opened", feed.client_id, feed.camera,
                 "offline " if feed.backfill else "", row.id)
        return row, False

    async def _recorded_already(self, feed: Feed, incident: OpenIncident, row: Incident) -> None:
        """Continue an incident whose clip and alerts are recorded already: a live one's end moves on (its
        clip is the one its first stream recorded: a node cannot grow another's); footage sent again for an
        offline one is compared with its evidence (see evidence.py), and changes nothing."""
        incident.recorder = None  # it records nothing
        if feed.backfill:
            await evidence.compare_resent(feed, row, self._clip_context, self.store)
        else:
            incident.id = row.id

    async def _judge_and_alert(self, feed: Feed, incident: Incident, packets: list[Packet]) -> None:
        alert = True
        fields = {}
        if self._verifier.enabled:
            alert, fields = await self._verifier.check(feed.client_id, feed.key_id, feed.camera, packets)
        # The verdict and what it decides are one write: a crash before it ends in the alert going
        # (recovery.py).
        await persist(f"incident {incident.id}",
                      lambda: self.store.judge_incident(incident.id, alert, time.time(), **fields))
        if not alert:
            return
        self._outbox.wake()
        incident = await self.store.get_incident(incident.id)
        await feed.notify(protocol.incident(incident.id, incident.camera, incident.type, incident.description,
                                            incident.threat, incident.started_at))
