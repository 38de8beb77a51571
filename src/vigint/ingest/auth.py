"""Who may stream: each hello read and its API key checked against the store, and open streams whose key
stopped being valid.

One rule decides both (`is_valid`): a key is valid while it is neither revoked, nor expired, nor its client
revoked or deleted, nor handed over by a link not opened yet. Keys are revoked, rotated and picked up by other
processes (the admin CLI) or nodes: the server notices through the database's data version, closes the streams
concerned within `revocation_check_seconds`, and tells the agents whose key got an expiry when it stops
working.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol, TypeVar

from websockets.exceptions import ConnectionClosed

from vigint import keys, protocol
from vigint.config import ServerSettings
from vigint.ingest.connections import AdmittedConnection
from vigint.ingest.exchange import Admitted, Authenticate, Opening, Refused, StreamExchange, admissible
from vigint.ingest.session import Session
from vigint.limiter import RateLimiter
from vigint.metrics import Metrics
from vigint.protocol import CloseCode
from vigint.store import ApiKey, KeyState, Store
from vigint.tasks import TaskSet

log = logging.getLogger(__name__)


def is_valid(key: ApiKey, now: float) -> bool:
    """Tell whether `key` may stream at `now`."""
    return key.state(now) is KeyState.ACTIVE


async def authenticate(store: Store, api_key: str, now: float | None = None) -> ApiKey | None:
    """Return the record of `api_key` if it authenticates now, else None (see `admissible`).

    A key that fails its format or checksum is refused without touching the database; otherwise this
    is one indexed look-up by hash.
    """
    if not keys.is_well_formed(api_key):
        return None
    record = await store.find_key(keys.hash_key(api_key))
    return admissible(record, time.time() if now is None else now)


class Keyed(Protocol):
    """An open stream, as the revocation check sees it."""

    key: ApiKey
    checked: bool  # its key was looked up again after its hello


S = TypeVar("S", bound=Keyed)


async def invalid_streams(store: Store, streams: Sequence[S], version: int | None,
                          now: float) -> tuple[set[S], int]:
    """Return the streams whose key expired, or was revoked or deleted since data version `version`, and
    the data version now (to pass next time).

    New streams are looked up once even without a change: a revocation committed while their hello was
    being authenticated may already have been seen by the previous check.
    Streams looked up get their key's latest record: an expiry set since (a rotation) then closes them in
    time.
    """
    invalid = {stream for stream in streams if not is_valid(stream.key, now)}
    latest = await store.data_version()
    to_check = streams if latest != version else [stream for stream in streams if not stream.checked]
    if to_check:
        records = await store.keys_by_id({stream.key.id for stream in to_check})
        for stream in to_check:
            stream.checked = True
            record = records.get(stream.key.id)
            if record is None or not is_valid(record, now):
                invalid.add(stream)
            else:
                stream.key = record
    return invalid, latest


class KeyWatch:
    """Closes the streams whose key stopped being valid with 4401, and tells the agents of streams whose key's
    expiry changed (a rotation's grace period) when it now stops working: backfills too, whose footage of a
    long outage can take hours to send. `check` runs every `revocation_check_seconds`."""

    def __init__(self, store: Store, tasks: TaskSet):
        self._store = store
        self._tasks = tasks
        self._version = None

    async def check(self, sessions: list[Session], now: float) -> None:
        expiries = {session: session.key.expires_at for session in sessions}
        invalid, latest = await invalid_streams(self._store, sessions, self._version, now)
        self._version = latest
        for session in invalid:
            log.info("client %d key %s is no longer valid: closing camera %r", session.client_id,
                     session.key.prefix, session.camera)
            self._tasks.spawn(session.connection.close(CloseCode.INVALID_KEY, protocol.INVALID_KEY_REASON))
        for session in sessions:  # one not welcomed yet hears it in its welcome, which must come first
            if session.key.expires_at != expiries[session] and session.welcomed and session not in invalid:
                self._tasks.spawn(session.notify(protocol.key_notice(session.key.expires_at)))


class Hellos:
    """Reads each connection's hello into its exchange (exchange.py, which judges it) and looks its key up;
    the node's refused hellos by address (`failures`) are shared by every connection's exchange."""

    def __init__(self, store: Store, metrics: Metrics, settings: ServerSettings):
        self._store = store
        self._metrics = metrics
        self._timeout = settings.auth_timeout_seconds
        self.failures = RateLimiter(settings.max_auth_failures, settings.auth_failure_window_seconds)

    def blocked(self, now: float) -> list[tuple[str, int]]:
        """Return the addresses blocked for refused hellos now, with their failure counts."""
        return self.failures.blocked(now)

    async def read(self, connection: AdmittedConnection, exchange: StreamExchange) -> Admitted | None:
        """Read the hello within the time allowed and answer the exchange's look-ups; return the key it admits
        with its hello, or None if it refused them (its close is then queued in `exchange`)."""
        try:
            message = await asyncio.wait_for(connection.recv(), self._timeout)
        except TimeoutError:
            return self._refused(exchange.hello_timed_out())
        except ConnectionClosed as closed:  # websockets refuses a hello over its size limit itself
            if closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG:
                self._refused(exchange.hello_too_big())
            raise
        connection.spoke()
        events = exchange.receive_data(message)
        while events and isinstance(events[0], Authenticate):
            events = exchange.looked_up(await self._store.find_key(events[0].key_hash))
        if events and isinstance(events[0], Admitted):
            return events[0]
        return self._refused(events)

    def _refused(self, events: list[Opening]) -> None:
        """Count the refusals among `events` (by reason) for the operator's metrics."""
        for event in events:
            if isinstance(event, Refused):
                self._metrics.auth_failures[event.reason] += 1
                if event.rate_limited:
                    self._metrics.auth_failures["rate_limited"] += 1
