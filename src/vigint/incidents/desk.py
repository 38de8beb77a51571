"""Incidents: from a camera's motion to a recorded incident, its clip, an optional AI verdict and alerts.

Order matters and survives crashes: the incident row first, then the clip, then the alerts as outbox
rows that `deliver_alerts` sends and retries until delivered, across restarts. Nothing blocking runs
on the event loop: the clip remux, JPEG encoding, AI call, SMTP and webhook run in worker threads.
"""

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from websockets.exceptions import ConnectionClosed

from vigint.alerts import emails, links, webhooks
from vigint.analysis.events import Closed, Extended, Opened
from vigint.analysis.ring import PacketRing
from vigint.billing.meter import UsageMeter
from vigint.config import Settings
from vigint.incidents import ai, clips
from vigint.limiter import RateLimiter
from vigint.media import MICROSECONDS
from vigint.metrics import Metrics
from vigint.store import Alert, Incident, Store, is_busy
from vigint.tasks import TaskSet, wait_for_event

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400
RETENTION_CHECK_SECONDS = 3600.0
CLIP_POLL_SECONDS = 0.2
# A write waits busy_timeout (5 s) for the lock before failing, so retries need not be frequent.
PERSIST_FIRST_RETRY_SECONDS = 0.5
PERSIST_MAX_RETRY_SECONDS = 30.0
T = TypeVar("T")


@dataclass
class OpenIncident:
    """A camera's incident in progress (times in µs of stream time)."""

    start: int
    last_motion: int
    id: int | None = None
    created: asyncio.Event = field(default_factory=asyncio.Event)


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
    """Turns motion readings into incidents and alerts for every stream of one server."""

    def __init__(self, settings: Settings, store: Store, usage: UsageMeter, metrics: Metrics, pool: Executor,
                 secret: str, base_url: str):
        self.settings, self.store, self.usage, self.metrics, self._pool = settings, store, usage, metrics, pool
        self.base_url = settings.alerts.public_url or base_url
        self.secret = secret  # signs clip links: links.load_link_secret guarantees it is long enough
        self._ai_slots = asyncio.Semaphore(settings.ai.max_concurrent)
        self._ai_calls = RateLimiter(settings.ai.max_calls_per_client_per_hour, 3600)
        self._wake_sender = asyncio.Event()
        self._recording = TaskSet()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for incidents being recorded (at shutdown), at most `timeout` seconds."""
        await self._recording.drain(timeout)

    def observe(self, session, readings: list[tuple[int, bool]]) -> None:
        """Feed a stream's analysed frames (pts µs, motion) to its tracker and act on what changes."""
        for pts, motion in readings:
            change = session.tracker.update(pts, motion)
            if isinstance(change, Opened):
                session.incident = OpenIncident(change.start, change.start)
                self._recording.spawn(self._record(session, session.incident))
            elif isinstance(change, Extended):
                session.incident.last_motion = change.end
            elif isinstance(change, Closed):
                self._recording.spawn(self._close(session.incident, change.end))
                session.incident = None

    def stream_ended(self, session) -> None:
        """A stream closed: its open incident ends at its last motion."""
        if session.incident is not None:
            self._recording.spawn(self._close(session.incident, session.incident.last_motion))
            session.incident = None

    async def _close(self, incident: OpenIncident, end_us: int) -> None:
        await incident.created.wait()
        if incident.id is not None:
            await persist(f"incident {incident.id}",
                          lambda: self.store.update_incident(incident.id, ended_at=end_us / MICROSECONDS))

    async def _record(self, session, incident: OpenIncident) -> None:
        # The clip's packets are gathered from now on, beside the row's write: a write delayed by a busy
        # database must not let the ring forget the pre-roll.
        gathering = asyncio.ensure_future(self._clip_packets(session, incident))
        try:
            row = await persist(f"client {session.client_id} camera {session.camera!r}", lambda: (
                self.store.create_incident(session.client_id, session.key.id, session.camera,
                                           incident.start / MICROSECONDS)))
            incident.id = row.id
            incident.created.set()
            self.metrics.incidents += 1
            log.info("client %d camera %r: incident %d opened", session.client_id, session.camera, row.id)
            packets = await gathering
            clip_path = await self._write_clip(row, packets, session.video_size)
            await self._judge_and_alert(session, row, packets, clip_path)
        except Exception:  # noqa: BLE001 - one incident's failure must not stop the stream or the server
            log.exception("recording an incident of client %d camera %r failed", session.client_id, session.camera)
        finally:
            incident.created.set()
            gathering.cancel()

    async def _clip_packets(self, session, incident: OpenIncident) -> list:
        """Gather the clip's packets from the ring until its end has been received (or the stream ended)."""
        motion = self.settings.motion
        pre, post = int(motion.pre_roll_seconds * MICROSECONDS), int(motion.post_roll_seconds * MICROSECONDS)
        span = int(self.settings.buffers.long_buffer_seconds * MICROSECONDS)
        ring: PacketRing = session.packets

        def end() -> int:
            # Cut before the ring forgets the pre-roll: a long event's clip shows its first seconds.
            return min(incident.last_motion + post, incident.start - pre + span)

        def gather(taken: list) -> list:
            # What the ring received since the last look (it keeps seconds; we look every fraction of one).
            if not taken:
                return clips.select(ring.packets(), incident.start - pre, end())
            return taken + [packet for packet in ring.packets() if packet.dts > taken[-1].dts]

        # A clip holds no more than the ring may, and gathers no longer than its span takes at real time
        # (plus slack): a sender whose clock crawls must not make the server hold its stream for ever.
        limit = self.settings.buffers.max_packet_buffer_bytes
        deadline = time.monotonic() + (span + post) / MICROSECONDS
        taken = gather([])
        while (not session.ended and (ring.newest_dts() or 0) < end() and time.monotonic() < deadline
               and sum(packet.cost for packet in taken) < limit):
            await asyncio.sleep(CLIP_POLL_SECONDS)
            taken = gather(taken)  # nothing arrives between this and the checks above: no await
        return [packet for packet in taken if packet.dts <= end()]

    async def _write_clip(self, incident: Incident, packets: list, size: tuple[int, int] | None) -> str | None:
        if not packets or size is None:
            log.warning("incident %d: no decodable video buffered for a clip", incident.id)
            return None
        data_dir = self.settings.storage.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(data_dir).free < self.settings.storage.min_free_mb * 2**20:
            self.metrics.clips_skipped["disk_full"] += 1
            log.error("incident %d: no clip written, less than %d MB free in %s", incident.id,
                      self.settings.storage.min_free_mb, data_dir)
            return None
        relative = f"clips/{incident.client_id}/{incident.id}.mp4"
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, clips.write_mp4, packets, data_dir / relative, *size)
        except (OSError, clips.ClipError) as error:
            self.metrics.clips_skipped["write_error"] += 1
            log.error("incident %d: cannot write its clip: %s", incident.id, error)
            return None
        await persist(f"incident {incident.id}", lambda: self.store.update_incident(incident.id, clip_path=relative))
        return relative

    async def _judge_and_alert(self, session, incident: Incident, packets: list, clip_path: str | None) -> None:
        alert, fields = True, {}
        if self.settings.ai.provider != "none":
            alert, fields = await self._verify(session, packets)
        what = f"incident {incident.id}"
        if fields:
            await persist(what, lambda: self.store.update_incident(incident.id, **fields))
        if not alert:
            await persist(what, lambda: self.store.update_incident(incident.id, alert_state="suppressed"))
            return
        await persist(what, lambda: self.store.enqueue_alerts(incident.id, self._channels(), time.time()))
        self._wake_sender.set()
        incident = await self.store.get_incident(incident.id)
        try:
            await session.connection.send(json.dumps({
                "type": "incident", "incident_id": incident.id, "camera": incident.camera, "kind": incident.type,
                "description": incident.description, "threat": incident.threat,
                "started_at": datetime.fromtimestamp(incident.started_at, timezone.utc).isoformat()}))
        except ConnectionClosed:
            pass

    def _channels(self) -> list[str]:
        email = self.settings.email
        return [name for name, wanted in (("email", bool(email.smtp_host or email.capture_dir)),
                                          ("webhook", bool(self.settings.alerts.webhook_url))) if wanted]

    async def camera_event(self, client_id: int, camera: str, kind: str, description: str) -> None:
        """Record a camera going down or coming back, and alert its client like an incident."""
        incident = await self.store.record_event(client_id, camera, kind, description, time.time(), self._channels())
        log.info("client %d camera %r: %s (event %d)", client_id, camera, kind, incident.id)
        self._wake_sender.set()

    async def _verify(self, session, packets: list) -> tuple[bool, dict]:
        """Ask the AI; return whether to alert and the incident fields its verdict sets."""
        settings, now = self.settings.ai, time.time()
        fallback = settings.when_unreachable == "motion"
        if self._ai_calls.retry_after(str(session.client_id), now) > 0:
            self.metrics.ai_calls["rate_limited"] += 1
            return fallback, {"verdict": "unverified", "description": "AI check skipped: hourly limit reached"}
        self._ai_calls.record(str(session.client_id), now)
        loop = asyncio.get_running_loop()
        async with self._ai_slots:
            try:
                jpegs = await loop.run_in_executor(self._pool, ai.jpeg_frames, packets, settings.frames)
                verdict = await loop.run_in_executor(self._pool, ai.ask, settings, jpegs)
            except (ai.Unreachable, ai.Malformed) as error:
                outcome = "unreachable" if isinstance(error, ai.Unreachable) else "malformed"
                self.metrics.ai_calls[outcome] += 1
                log.warning("AI check for client %d camera %r: %s", session.client_id, session.camera, error)
                return fallback, {"verdict": "unverified"}
        self.metrics.ai_calls["answered"] += 1
        self.usage.add_ai_call(session.key.id, verdict.tokens, time.time())
        fields = {"verdict": "confirmed" if verdict.incident else "rejected", "type": verdict.type,
                  "description": verdict.description, "threat": verdict.threat}
        return verdict.incident, fields

    # Delivery

    async def deliver_alerts(self, stopping: asyncio.Event) -> None:
        """Deliver due outbox rows until `stopping`; a failure is retried later with exponential backoff."""
        while not stopping.is_set():
            try:
                for alert in await self.store.due_alerts(time.time()):
                    await self._deliver(alert)
                due = await self.store.next_alert_due()
            except Exception:  # noqa: BLE001 - a busy database: try again shortly
                log.exception("alert delivery pass failed")
                due = None
            wait = 1.0 if due is None else min(1.0, max(0.0, due - time.time()))
            self._wake_sender.clear()
            if not stopping.is_set():  # set during the pass: the wake-up that came with it was just cleared
                await wait_for_event(self._wake_sender, wait)

    def wake_sender(self) -> None:
        """Make the alert sender look at the outbox, and at its `stopping` event, now."""
        self._wake_sender.set()

    async def _deliver(self, alert: Alert) -> None:
        incident = alert.incident
        expires = int(time.time() + self.settings.alerts.link_ttl_hours * 3600)
        link = links.clip_link(self.base_url, self.secret, incident, expires)
        loop = asyncio.get_running_loop()
        try:
            if alert.channel == "email":
                message = emails.compose_email(incident, alert.client_name, alert.client_email, link, expires,
                                               self.settings.alerts, self.settings.email)
                await loop.run_in_executor(self._pool, emails.send_email, self.settings.email, message)
            else:
                body = webhooks.webhook_body(incident, link)
                await loop.run_in_executor(self._pool, webhooks.post_webhook, self.settings.alerts.webhook_url,
                                           self.settings.alerts.webhook_secret, body, self.settings.email.timeout_seconds)
        except Exception as error:  # noqa: BLE001 - SMTP, TLS and HTTP failures all mean "retry later"
            delay = min(self.settings.alerts.max_retry_seconds, self.settings.alerts.retry_seconds * 2 ** alert.attempts)
            self.metrics.alerts_failed += 1
            log.warning("incident %d: %s alert not delivered (%s); retrying in %.0f s", incident.id, alert.channel,
                        error, delay)
            await self.store.alert_failed(alert, str(error), time.time() + delay)
            return
        await self.store.alert_delivered(alert, time.time())
        self.metrics.alerts_delivered += 1
        if incident.key_id is not None:
            self.usage.add_alert(incident.key_id, time.time())
        log.info("incident %d: %s alert delivered", incident.id, alert.channel)

    # Clips over HTTP, retention

    async def clip(self, incident_id: str, expires: str, signature: str) -> bytes | None:
        """Return the clip a link opens, or None if the link is invalid, expired or has no clip."""
        if not incident_id.isdigit():
            return None
        try:
            incident = await self.store.get_incident(int(incident_id))
        except Exception:  # noqa: BLE001 - unknown id: the same answer as a bad signature
            return None
        if incident.clip_path is None or not links.link_is_valid(self.secret, incident, expires, signature, time.time()):
            return None
        path = self.settings.storage.data_dir / incident.clip_path
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError:
            return None

    async def enforce_retention(self, stopping: asyncio.Event) -> None:
        """Delete incidents and clips older than retention_days, now and every hour."""
        while not stopping.is_set():
            try:
                await self.delete_expired(time.time())
            except Exception:  # noqa: BLE001 - retried at the next pass
                log.exception("retention pass failed")
            await wait_for_event(stopping, RETENTION_CHECK_SECONDS)

    async def delete_expired(self, now: float) -> int:
        """Delete what retention no longer keeps; return how many incidents went."""
        cutoff = now - self.settings.storage.retention_days * SECONDS_PER_DAY
        expired = await self.store.expired_incidents(cutoff)
        for incident in expired:
            if incident.clip_path:
                (self.settings.storage.data_dir / incident.clip_path).unlink(missing_ok=True)
        await self.store.delete_incidents([incident.id for incident in expired])
        return len(expired)
