"""The operator's watch over the fleet, run by the server every `monitor_seconds`.

Cameras that stop streaming are reported down to their client once (and back when they return);
unusual usage is flagged for the operator: a key streaming from more addresses than one site explains
(a leaked key), a key receiving far more than its trailing average, an address whose hellos keep being
refused. A snapshot of the server is written for `vigint status` and `vigint client list`.
"""

import asyncio
import logging
import os
import time
from collections import defaultdict
from datetime import datetime, timezone

from vigint.alerts import emails
from vigint.store import Flag
from vigint.tasks import wait_for_event

log = logging.getLogger(__name__)

TRAILING_HOURS = 7 * 24


def is_spike(last_hour: int, trailing: list[int], factor: float, floor_bytes: float) -> bool:
    """Tell whether `last_hour` bytes is far above the trailing hourly average (hours without usage count as 0)."""
    average = sum(trailing) / TRAILING_HOURS
    return last_hour >= floor_bytes and last_hour > factor * average


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M")


class FleetMonitor:
    """Checks cameras, usage and hellos for one server; `run` until its stop event."""

    def __init__(self, server):
        self._server = server
        self._settings = server.settings.alerts
        self.started_at = time.time()
        self._frames_at_last_snapshot = (time.monotonic(), 0)

    async def run(self, stopping: asyncio.Event) -> None:
        """Check every `monitor_seconds` until `stopping`."""
        while not stopping.is_set():
            try:
                await self.check(time.time())
            except Exception:  # noqa: BLE001 - a busy database: the next pass retries
                log.exception("fleet check failed")
            await wait_for_event(stopping, self._settings.monitor_seconds)

    async def check(self, now: float) -> None:
        """One pass: cameras down or back, flags, operator emails."""
        await self._cameras(now)
        for flag in await self._flags(now):
            log.warning("unusual usage: %s", flag.detail)
        await self._notify_operator()

    async def _cameras(self, now: float) -> None:
        store, desk = self._server.store, self._server.desk
        live = [(s.client_id, s.camera) for s in self._server.all_sessions()]
        for client_id, camera in await store.camera_seen(live, now):
            await desk.camera_event(client_id, camera, "camera_back", f"Camera \"{camera}\" is streaming again.")
        threshold = self._settings.camera_down_minutes * 60
        if now - self.started_at < threshold:
            return  # after a restart, agents need a moment to come back: no camera is down yet
        for record in await store.mark_cameras_down(now - threshold, now):
            await desk.camera_event(record.client_id, record.camera, "camera_down",
                                    f"Camera \"{record.camera}\" has sent no video since "
                                    f"{_utc(record.last_seen_at)} UTC.")

    async def _flags(self, now: float) -> list[Flag]:
        store, raised = self._server.store, []
        addresses, keys = defaultdict(set), {}
        for session in self._server.all_sessions():
            addresses[session.key.id].add(session.address)
            keys[session.key.id] = session.key
        for key_id, seen in addresses.items():
            key = keys[key_id]
            if len(seen) > self._settings.max_addresses_per_key:
                raised.append(await store.raise_flag(
                    "addresses", f"key:{key_id}", key.client_id, key_id,
                    f"key {key.prefix}… of client {key.client_id} streams from {len(seen)} addresses at once "
                    f"({', '.join(sorted(seen))}): a leaked key?", now))
            hours = await store.hourly_bytes(key_id, now - (TRAILING_HOURS + 1) * 3600)
            if hours and is_spike(hours[-1], hours[:-1], self._settings.usage_spike_factor,
                                  self._settings.usage_spike_min_mb * 1e6):
                raised.append(await store.raise_flag(
                    "spike", f"key:{key_id}", key.client_id, key_id,
                    f"key {key.prefix}… of client {key.client_id} received {hours[-1] / 1e6:,.0f} MB this hour, "
                    f"over {self._settings.usage_spike_factor:g}× its 7-day hourly average", now))
        for address, failures in self._server.refused_addresses(now):
            raised.append(await store.raise_flag(
                "hellos", f"address:{address}", None, None,
                f"{address} had {failures} hellos refused within the window and is blocked", now))
        return [flag for flag in raised if flag is not None]

    async def _notify_operator(self) -> None:
        email = self._server.settings.email
        recipient = self._settings.operator_email
        if not recipient or not (email.smtp_host or email.capture_dir):
            return
        loop = asyncio.get_running_loop()
        for flag in await self._server.store.flags(unnotified=True):
            try:
                await loop.run_in_executor(None, emails.send_email, email,
                                           emails.compose_operator_email(flag, email, recipient))
            except Exception as error:  # noqa: BLE001 - retried at the next pass
                log.warning("could not email the operator about flag %d: %s", flag.id, error)
                return
            await self._server.store.flag_notified(flag.id, time.time())

    def snapshot(self) -> dict:
        """Return the server's state for `vigint status`: streams, decode load."""
        server = self._server
        now_monotonic, frames = time.monotonic(), server.metrics.frames_decoded
        then, frames_then = self._frames_at_last_snapshot
        self._frames_at_last_snapshot = (now_monotonic, frames)
        return {
            "pid": os.getpid(), "started_at": self.started_at,
            "frames_per_second": round((frames - frames_then) / max(1e-3, now_monotonic - then), 1),
            "decode_lag_p99_seconds": server.metrics.decode_lag.quantile(0.99),
            "streams": [{"client_id": s.client_id, "camera": s.camera, "key_prefix": s.key.prefix,
                         "address": s.address, "connected_at": s.connected_at,
                         "frames_decoded": s.frames_decoded} for s in server.all_sessions()],
        }
