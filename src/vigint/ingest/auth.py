"""Who may stream: each hello read and its API key checked against the store, and open streams whose key stopped being valid.

One rule decides both (`is_valid`): a key is valid while it is neither revoked, nor expired, nor its client
revoked or deleted, nor handed over by a link not opened yet. Keys are revoked, rotated and picked up by other
processes (the admin CLI) or nodes: the server notices through the database's data version, closes the streams
concerned within `revocation_check_seconds`, and tells the agents whose key got an expiry when it stops working.
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
from vigint.ingest.session import Session
from vigint.limiter import RateLimiter
from vigint.metrics import Metrics
from vigint.protocol import CloseCode, ProtocolViolation
from vigint.store import ApiKey, KeyState, Store
from vigint.tasks import TaskSet

log = logging.getLogger(__name__)


def is_valid(key: ApiKey, now: float) -> bool:
    """Tell whether `key` may stream at `now`."""
    return key.state(now) is KeyState.ACTIVE


async def authenticate(store: Store, api_key: str, now: float | None = None) -> ApiKey | None:
    """Return the record of `api_key` if it authenticates now, else None.

    A key that fails its format or checksum is refused without touching the database; otherwise this
    is one indexed look-up by hash. Unknown, revoked, expired and not yet picked-up keys all give None: callers
    answer them alike, so that nobody can learn which keys exist (the last is logged, for the operator).
    """
    if not keys.is_well_formed(api_key):
        return None
    record = await store.find_key(keys.hash_key(api_key))
    if record is None:
        return None
    state = record.state(time.time() if now is None else now)
    if state is KeyState.AWAITING_PICKUP:
        log.warning("client %d key %s… refused: its hand-over link has not been opened yet (vigint client list "
                    "shows it awaiting pick-up)", record.client_id, record.prefix)
    return record if state is KeyState.ACTIVE else None


class Keyed(Protocol):
    """An open stream, as the revocation check sees it."""

    key: ApiKey
    checked: bool  # its key was looked up again after its hello


S = TypeVar("S", bound=Keyed)


async def invalid_streams(store: Store, streams: Sequence[S], version: int | None, now: float) -> tuple[set[S], int]:
    """Return the streams whose key expired, or was revoked or deleted since data version `version`, and
    the data version now (to pass next time).

    New streams are looked up once even without a change: a revocation committed while their hello was
    being authenticated may already have been seen by the previous check.
    Streams looked up get their key's latest record: an expiry set since (a rotation) then closes them in time.
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
    """Closes the streams whose key stopped being valid with 4401, and tells the agents of streams whose key's expiry
    changed (a rotation's grace period) when it now stops working: backfills too, whose footage of a long outage
    can take hours to send. `check` runs every `revocation_check_seconds`."""

    def __init__(self, store: Store, tasks: TaskSet):
        self._store, self._tasks, self._version = store, tasks, None

    async def check(self, sessions: list[Session], now: float) -> None:
        expiries = {session: session.key.expires_at for session in sessions}
        invalid, self._version = await invalid_streams(self._store, sessions, self._version, now)
        for session in invalid:
            log.info("client %d key %s is no longer valid: closing camera %r", session.client_id, session.key.prefix,
                     session.camera)
            self._tasks.spawn(session.connection.close(CloseCode.INVALID_KEY, protocol.INVALID_KEY_REASON))
        for session in sessions:  # one not welcomed yet hears it in its welcome, which must come first
            if session.key.expires_at != expiries[session] and session.welcomed and session not in invalid:
                self._tasks.spawn(session.notify(protocol.key_notice(session.key.expires_at)))


class Hellos:
    """Reads and checks each connection's hello; refusals count against the sender's address."""

    def __init__(self, store: Store, metrics: Metrics, settings: ServerSettings):
        self._store, self._metrics, self._timeout = store, metrics, settings.auth_timeout_seconds
        self._limiter = RateLimiter(settings.max_auth_failures, settings.auth_failure_window_seconds)

    def blocked(self, now: float) -> list[tuple[str, int]]:
        """Return the addresses blocked for refused hellos now, with their failure counts."""
        return self._limiter.blocked(now)

    def _refuse(self, address: str, reason: str, violation: ProtocolViolation) -> ProtocolViolation:
        """Count a refused hello against its address; past the limit, answer 4429 with the delay instead."""
        now = time.time()
        wait = self._limiter.retry_after(address, now)
        self._limiter.record(address, now)
        self._metrics.auth_failures[reason] += 1
        if wait > 0:
            self._metrics.auth_failures["rate_limited"] += 1
            return protocol.too_many_failures(wait)
        return violation

    async def read(self, connection: AdmittedConnection) -> tuple[ApiKey, protocol.Hello]:
        """Read and check the hello; return the key it authenticates and the hello.

        Only refused keys and malformed hellos count against the address: a hello that merely comes
        late is no guess, and a valid key is welcomed even from a blocked address (keys are 256-bit,
        there is nothing to guess), so one misconfigured agent cannot lock out its neighbours' cameras.
        """
        address = connection.remote_address[0]
        try:
            message = await asyncio.wait_for(connection.recv(), self._timeout)
            connection.spoke()
        except TimeoutError:
            self._metrics.auth_failures["timeout"] += 1
            raise ProtocolViolation(CloseCode.HELLO_TIMEOUT, "no hello in time") from None
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG:
                self._refuse(address, "too_large", ProtocolViolation(CloseCode.MESSAGE_TOO_BIG, ""))
            raise
        try:
            hello = protocol.parse_hello(message)
        except ProtocolViolation as violation:
            raise self._refuse(address, "bad_hello", violation) from None
        key = await authenticate(self._store, hello.key)
        if key is None:
            raise self._refuse(address, "invalid_key",
                               ProtocolViolation(CloseCode.INVALID_KEY, protocol.INVALID_KEY_REASON))
        return key, hello
