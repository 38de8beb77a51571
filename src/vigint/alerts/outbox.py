"""The alert outbox's sender: delivers due alerts by email or webhook, retrying failures with backoff.

Alerts are rows written beside their incident (`Store.enqueue_alerts`), so none is lost to a crash or a
restart: the sender looks at the outbox when woken (new alerts, or stopping) and at the next due retry.

An alert its receiver refuses for good (`Undeliverable`: a 5xx to its recipient or content, a webhook's 4xx, a
message that cannot be built), or still undelivered after `[alerts] max_attempts`, is given up rather than
retried for ever: kept in the outbox as a dead letter (`Store.alert_dead`) and flagged, so `vigint alerts`
lists it and the operator is emailed about it once.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

from vigint.alerts import emails, links, mutes, webhooks
from vigint.billing.meter import UsageMeter
from vigint.config import Settings
from vigint.errors import Undeliverable
from vigint.media import SECONDS_PER_DAY
from vigint.metrics import Metrics
from vigint.store import Alert, Channel, FlagKind, Incident, Store
from vigint.tasks import wait_for_event

log = logging.getLogger(__name__)

# how often the outbox is looked at without a wake-up (rows written by another process)
IDLE_LOOK_SECONDS = 1.0
# How long an alert is claimed for, in delivery timeouts: smtplib's applies to each step (connect, EHLO,
# STARTTLS, login, MAIL, RCPT, DATA), so a slow server can take several before the delivery fails or succeeds.
CLAIM_TIMEOUTS = 8
JPEG_START = b"\xff\xd8\xff"  # every JPEG file starts so: anything else is not shown as one


def channels(settings: Settings) -> list[Channel]:
    """Return the channels alerts go out on, as configured: email (SMTP or a capture folder), webhook."""
    email = settings.email
    return [channel for channel, wanted in ((Channel.EMAIL, bool(email.smtp_host or email.capture_dir)),
                                            (Channel.WEBHOOK, bool(settings.alerts.webhook_url))) if wanted]


def link_expiry(settings: Settings, started_at: float, now: float) -> int:
    """Return when an alert's clip link stops working: `link_ttl_hours` after it is sent, or by default when
    the clip is deleted (`retention_days` after the incident): a customer opening an old alert still sees the
    clip."""
    hours = settings.alerts.link_ttl_hours
    if hours:
        return int(now + hours * 3600)
    return int(started_at + settings.storage.retention_days * SECONDS_PER_DAY)


class Outbox:
    """Sends the alerts of one server; `run` until its stop event, `wake` when there is new work.

    `page_url` is the base of the customer's page, `base_url` this server's own address (clip links, unless
    `[alerts] public_url` is set). `read_file(name)` reads a file of the clip storage (bytes, or None if there
    is none; blocking, so called in `pool`), where `still_name(client_id, incident_id, index)` names an
    incident's stills.
    """

    def __init__(self, settings: Settings, store: Store, usage: UsageMeter, metrics: Metrics, pool: Executor,
                 secret: str, page_url: str, base_url: str, read_file: Callable[[str], bytes | None],
                 still_name: Callable[[int, int, int], str]):
        self.settings = settings
        self.store = store
        self.usage = usage
        self.metrics = metrics
        self._pool = pool
        self.secret = secret  # signs clip links: links.load_link_secret guarantees it is long enough
        self.base_url = settings.alerts.public_url or base_url
        self.page_url = page_url
        self._read_file = read_file
        self._still_name = still_name
        self.channels = channels(settings)
        # An alert is claimed for one delivery at a time: if this node dies sending it, any node retries it
        # then.
        self._claim_seconds = settings.email.timeout_seconds * CLAIM_TIMEOUTS
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Make the sender look at the outbox, and at its stop event, now."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver due outbox rows until `stopping` (call `wake` after setting it)."""
        while not stopping.is_set():
            try:
                while claimed := await self.store.due_alerts(time.time(), self._claim_seconds, limit=1):
                    await self._deliver(claimed[0])
                due = await self.store.next_alert_due()
            except Exception:  # noqa: BLE001 - a busy database: try again shortly
                log.exception("alert delivery pass failed")
                due = None
            wait = IDLE_LOOK_SECONDS if due is None else min(IDLE_LOOK_SECONDS, max(0.0, due - time.time()))
            self._wake.clear()
            if not stopping.is_set():  # set during the pass: the wake-up that came with it was just cleared
                await wait_for_event(self._wake, wait)

    async def _deliver(self, alert: Alert) -> None:
        incident = alert.incident
        try:
            await self._send(alert)
        except Undeliverable as error:
            await self._give_up(alert, str(error))
            return
        except Exception as error:  # noqa: BLE001 - SMTP, TLS and HTTP failures all mean "retry later"
            await self._failed(alert, error)
            return
        await self.store.alert_delivered(alert, time.time())
        self.metrics.alerts_delivered += 1
        if incident.key_id is not None:
            self.usage.add_alert(incident.key_id, time.time())
        log.info("incident %d: %s alert delivered", incident.id, alert.channel)

    async def _send(self, alert: Alert) -> None:
        """Send one alert on its channel. Raises Undeliverable, or whatever else stopped it (retried)."""
        incident = alert.incident
        expires = link_expiry(self.settings, incident.started_at, time.time())
        targets = links.AlertLinks(links.page_link(self.page_url, incident),
                                   links.clip_link(self.base_url, self.secret, incident, expires), expires,
                                   self._mute_links(incident))
        loop = asyncio.get_running_loop()
        if alert.channel is Channel.EMAIL:
            still = await self._still(incident)
            message = emails.compose_email(alert, targets, self.settings.alerts, self.settings.email,
                                           self.secret, still)
            await loop.run_in_executor(self._pool, emails.send_email, self.settings.email, message)
        else:  # Channel.WEBHOOK: the store takes and reads no other channel
            body = webhooks.webhook_body(incident, targets)
            alerts = self.settings.alerts
            await loop.run_in_executor(self._pool, webhooks.post_webhook, alerts.webhook_url,
                                       alerts.webhook_secret, body, self.settings.email.timeout_seconds)

    def _mute_links(self, incident: Incident) -> tuple[tuple[str, str], ...]:
        """The links of an incident's alert that mute its camera, each valid for MUTE_LINK_HOURS from now."""
        if not mutes.offers_mute(incident):
            return ()
        expires = int(time.time() + mutes.MUTE_LINK_HOURS * 3600)
        return tuple((choice, mutes.mute_link(self.page_url, self.secret, incident, choice, expires))
                     for choice in mutes.CHOICES)

    async def _still(self, incident: Incident) -> bytes | None:
        """Return the still an incident's email shows, or None: it has none, or it cannot be read (logged: the
        alert goes without it rather than not at all)."""
        if not incident.stills:
            return None
        try:
            still = await asyncio.get_running_loop().run_in_executor(
                # the thumbnail
                self._pool, self._read_file, self._still_name(incident.client_id, incident.id, 0))
        # a storage failure of any kind costs the picture, not the alert
        except Exception as error:  # noqa: BLE001
            log.warning("incident %d: still not read (%s); alerting without it", incident.id, error)
            return None
        if not still or not still.startswith(JPEG_START):
            log.warning("incident %d: still %s; alerting without it", incident.id,
                        "missing" if still is None else "not a JPEG")
            return None
        return still

    async def _failed(self, alert: Alert, error: Exception) -> None:
        attempts = alert.attempts + 1
        if attempts >= self.settings.alerts.max_attempts:  # the last resort: a failure that never ends
            last = emails.one_line(str(error))
            await self._give_up(alert, f"not delivered after {attempts} attempts, the last: {last}")
            return
        backoff = self.settings.alerts.retry_seconds * 2 ** alert.attempts
        delay = min(self.settings.alerts.max_retry_seconds, backoff)
        self.metrics.alerts_failed += 1
        log.warning("incident %d: %s alert not delivered (%s); retrying in %.0f s", alert.incident.id,
                    alert.channel, error, delay)
        await self.store.alert_failed(alert, str(error), time.time() + delay)

    async def _give_up(self, alert: Alert, reason: str) -> None:
        """Keep an alert as a dead letter and flag it for the operator (flagged first: a crash in between
        retries the alert, which dies again, and the flag is not raised twice)."""
        incident = alert.incident
        now = time.time()
        self.metrics.alerts_failed += 1
        log.warning("incident %d: %s alert given up: %s; kept undelivered, the operator is told", incident.id,
                    alert.channel, reason)
        # The client's address helps the operator fix it; a webhook's URL is not shown: it may hold a token.
        recipient = f" to {alert.client_email}" if alert.channel is Channel.EMAIL else ""
        await self.store.raise_flag(
            FlagKind.UNDELIVERABLE, f"alert:{alert.id}", incident.client_id, incident.key_id,
            f"the {alert.channel} alert{recipient} of incident {incident.id} (client {incident.client_id}, "
            f"{alert.client_name}) was given up after {alert.attempts + 1} attempt(s): {reason}", now)
        await self.store.alert_dead(alert, reason, now)
