"""The operator's watch over the fleet, run by the server every `monitor_seconds`.

Cameras that stop streaming are reported down to their client once (and back when they return), described
in the client's language and time zone as they are when the event is recorded (the description is stored so);
unusual usage is flagged for the operator: a key streaming from more addresses than one site explains
(a leaked key), a key receiving far more than its trailing average, an address whose hellos keep being
refused; alerts the sender gave up are flagged too (by the sender). Each flag is emailed to the operator once.
The operator is also warned, once per key, of a key in use that expires within
`key_expiry_warning_days` (time to rotate it), and hand-over links that died unopened are let go (audited).
A snapshot of the server is written for `vigint status` and `vigint client list`.

With several nodes, the checks of cameras and keys run on one node at a time (the holder of the "fleet"
lease), over the streams of every node (the shared registry); each node flags its own refused hellos.
"""

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from functools import partial

from vigint.alerts import emails, templates
from vigint.alerts.outbox import Outbox
from vigint.config import Settings
from vigint.errors import NotFoundError
from vigint.media import SECONDS_PER_DAY
from vigint.metrics import Metrics
from vigint.store import Flag, FlagKind, Store, StreamEntry
from vigint.tasks import every

log = logging.getLogger(__name__)

TRAILING_HOURS = 7 * 24
KEY_IN_USE_DAYS = 7  # a key that streamed this recently and expires soon may still be in an agent's .env


def is_spike(last_hour: int, trailing: list[int], factor: float, floor_bytes: float) -> bool:
    """Tell whether `last_hour` bytes is far above the trailing hourly average (hours without usage count as
    0)."""
    average = sum(trailing) / TRAILING_HOURS
    return last_hour >= floor_bytes and last_hour > factor * average


@dataclass(frozen=True)
class LiveStream:
    """What the fleet monitor sees of an open stream."""

    client_id: int
    key_id: int
    key_prefix: str
    camera: str
    address: str
    connected_at: float
    frames_decoded: int
    mode: str  # active (every frame decoded), idle (keyframe checks only) or backfill (recorded footage)
    spooled_seconds: float | None = None  # recorded footage its agent is about to send (see the hello)

    @property
    def backfill(self) -> bool:
        """Whether it carries recorded footage beside the camera's live stream: not a live camera."""
        return self.mode == "backfill"


Located = LiveStream | StreamEntry  # a stream of this node, or of any node (the shared registry)


class FleetMonitor:
    """Checks cameras, usage and hellos for one server; `run` until its stop event.

    It sees the server through three functions: `streams()`, this node's open streams, `everywhere(now)`,
    those of every node, and `refused(now)`, the addresses blocked for failed hellos with their failure
    counts.
    """

    def __init__(self, settings: Settings, store: Store, metrics: Metrics, outbox: Outbox, node_id: str,
                 streams: Callable[[], list[LiveStream]],
                 everywhere: Callable[[float], Awaitable[list[Located]]],
                 refused: Callable[[float], list[tuple[str, int]]]):
        self._settings = settings.alerts
        self._email = settings.email
        self._store = store
        self._metrics = metrics
        self._outbox = outbox
        self._node_id = node_id
        self._streams = streams
        self._refused = refused
        self._everywhere = everywhere
        self.started_at = time.time()
        self._frames_at_last_snapshot = (time.monotonic(), 0)

    async def run(self, stopping: asyncio.Event) -> None:
        """Check every `monitor_seconds` until `stopping`."""
        await every(self._settings.monitor_seconds, stopping, lambda: self.check(time.time()), log,
                    "fleet check failed")

    async def check(self, now: float) -> None:
        """One pass: this node's refused hellos; if it holds the fleet lease, cameras down or back, keys'
        usage, expiry and hand-over links, and the operator's emails."""
        flags = await self._hello_flags(now)
        lease_until = now + 3 * self._settings.monitor_seconds
        if await self._store.hold_lease("fleet", self._node_id, lease_until, now):
            streams = await self._everywhere(now)
            await self._cameras(streams, now)
            flags += await self._key_flags(streams, now)
            for key in await self._store.expire_handovers(now):
                log.info("client %d key %s…: its hand-over link died unopened; the key stays unusable",
                         key.client_id, key.prefix)
            await self._notify_operator()
            await self._warn_of_expiring_keys(now)
        for flag in flags:
            log.warning("unusual usage: %s", flag.detail)

    async def _cameras(self, streams: list[Located], now: float) -> None:
        spooled = {(s.client_id, s.camera): s.spooled_seconds for s in streams}
        for client_id, camera in await self._store.camera_seen(list(spooled), now):
            back = partial(templates.camera_back, camera, now, spooled[(client_id, camera)])
            await self._camera_event(client_id, camera, "camera_back", back)
        threshold = self._settings.camera_down_minutes * 60
        if now - self.started_at < threshold:
            return  # after a restart, agents need a moment to come back: no camera is down yet
        for record in await self._store.mark_cameras_down(now - threshold, now):
            await self._camera_event(record.client_id, record.camera, "camera_down",
                                     partial(templates.camera_down, record.camera, record.last_seen_at))

    async def _camera_event(self, client_id: int, camera: str, kind: str,
                            describe: Callable[[str, str | None], str]) -> None:
        """Record a camera going down or coming back, described by `describe(language, time zone)` in its
        client's, and alert the client like an incident."""
        try:
            client = await self._store.get_client(client_id)
        except NotFoundError:
            return  # deleted since its camera was seen: no one to tell
        language = templates.choose_language(client.language, self._settings.language)
        description = describe(language, client.timezone)
        incident = await self._store.record_event(client_id, camera, kind, description, time.time(),
                                                  self._outbox.channels)
        log.info("client %d camera %r: %s (event %d)", client_id, camera, kind, incident.id)
        self._outbox.wake()

    async def _key_flags(self, streams: list[Located], now: float) -> list[Flag]:
        store = self._store
        raised = []
        addresses = defaultdict(set)
        for stream in streams:
            addresses[stream.key_id].add(stream.address)
        keys = await store.keys_by_id(set(addresses))
        for key_id, seen in addresses.items():
            if key_id not in keys:
                continue  # deleted meanwhile
            key = keys[key_id]
            if len(seen) > self._settings.max_addresses_per_key:
                raised.append(await store.raise_flag(
                    FlagKind.ADDRESSES, f"key:{key_id}", key.client_id, key_id,
                    f"key {key.prefix}… of client {key.client_id} streams from {len(seen)} addresses at once "
                    f"({', '.join(sorted(seen))}): a leaked key?", now))
            hours = await store.hourly_bytes(key_id, now - (TRAILING_HOURS + 1) * 3600)
            if hours and is_spike(hours[-1], hours[:-1], self._settings.usage_spike_factor,
                                  self._settings.usage_spike_min_mb * 1e6):
                raised.append(await store.raise_flag(
                    FlagKind.SPIKE, f"key:{key_id}", key.client_id, key_id,
                    f"key {key.prefix}… of client {key.client_id} received {hours[-1] / 1e6:,.0f} MB "
                    f"this hour, over {self._settings.usage_spike_factor:g}× its 7-day hourly average", now))
        return [flag for flag in raised if flag is not None]

    async def _hello_flags(self, now: float) -> list[Flag]:
        raised = [await self._store.raise_flag(
            FlagKind.HELLOS, f"address:{address}", None, None,
            f"{address} had {failures} hellos refused within the window and is blocked", now)
            for address, failures in self._refused(now)]
        return [flag for flag in raised if flag is not None]

    @property
    def _operator(self) -> str | None:
        """The operator's address, if emails can be sent to it."""
        if self._settings.operator_email and (self._email.smtp_host or self._email.capture_dir):
            return self._settings.operator_email
        return None

    async def _email_operator(self, message: EmailMessage, about: str) -> bool:
        """Send the operator an email; say whether it went (a failure is logged and retried at the next
        pass)."""
        try:
            await asyncio.get_running_loop().run_in_executor(None, emails.send_email, self._email, message)
        except Exception as error:  # noqa: BLE001 - retried at the next pass
            log.warning("could not email the operator about %s: %s", about, error)
            return False
        return True

    async def _notify_operator(self) -> None:
        if (recipient := self._operator) is None:
            return
        for flag in await self._store.flags(unnotified=True):
            if not await self._email_operator(emails.compose_operator_email(flag, self._email, recipient),
                                              f"flag {flag.id}"):
                return
            await self._store.flag_notified(flag.id, time.time())

    async def _warn_of_expiring_keys(self, now: float) -> None:
        """Warn the operator, once per key, of keys in use that expire within key_expiry_warning_days."""
        if (recipient := self._operator) is None:
            return
        soon = now + self._settings.key_expiry_warning_days * SECONDS_PER_DAY
        for key in await self._store.keys_expiring(now, soon, now - KEY_IN_USE_DAYS * SECONDS_PER_DAY):
            try:
                client = await self._store.get_client(key.client_id)
            except NotFoundError:
                continue  # deleted meanwhile
            message = emails.compose_key_expiry_email(key, client, now, self._email, recipient)
            if not await self._email_operator(message, f"key {key.id} expiring"):
                return
            await self._store.key_expiry_warned(key.id, time.time())
            log.warning("client %d key %s… is in use and expires at %s: the operator was warned", client.id,
                        key.prefix, time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(key.expires_at)))

    def snapshot(self) -> dict:
        """Return the server's state for `vigint status`: streams, decode load."""
        now_monotonic = time.monotonic()
        frames = self._metrics.frames_decoded
        then, frames_then = self._frames_at_last_snapshot
        self._frames_at_last_snapshot = (now_monotonic, frames)
        return {
            "pid": os.getpid(), "started_at": self.started_at,
            "frames_per_second": round((frames - frames_then) / max(1e-3, now_monotonic - then), 1),
            "decode_lag_p99_seconds": self._metrics.decode_lag.quantile(0.99),
            "streams": [{"client_id": s.client_id, "camera": s.camera, "key_prefix": s.key_prefix,
                         "address": s.address, "connected_at": s.connected_at,
                         "frames_decoded": s.frames_decoded, "mode": s.mode} for s in self._streams()],
            # `streams` holds backfills too (mode "backfill"): recorded footage beside a live stream, not a
            # camera
        }
