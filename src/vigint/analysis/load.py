"""How saturated the server's decode threads are: the measure that tells a burst from overload.

A stream that sent a few seconds of queued video after a stall is only behind; it catches up at once if a
decode thread is free. The server is overloaded when decode batches have to wait for a thread: more work
than threads, whatever one stream's backlog. `DecodeLoad` measures the share of recent time during which
at least one batch was waiting, as an exponentially weighted average over about `window_seconds`.

All threads busy is not overload on its own: one stream catching up on a one-thread server keeps it busy,
yet nothing else waits for it.
"""

import asyncio
import math
import threading
import time
from collections.abc import Callable

WINDOW_SECONDS = 2.0  # long enough to ignore a moment's contention, short enough to react to overload in time
OVERLOADED = 0.5  # batches waited for a thread at least half of the recent window
BACKFILL_POLL_SECONDS = 0.1  # how often a backfill waiting for the live load to fall looks again


class DecodeLoad:
    """The server-wide decode saturation. Thread-safe: batches are queued on the event loop, start and end in
    worker threads."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting = 0  # batches handed to the pool that no thread has started yet
        self._saturation = 0.0
        self._since = clock()

    def queued(self) -> Callable[[], None]:
        """A batch was handed to the pool: call what this returns when a thread starts it, and again once it
        is over whatever happened (a batch cancelled before it started waits no more); later calls do
        nothing."""
        with self._lock:
            self._advance()
            self._waiting += 1
        waiting = True

        def started() -> None:
            nonlocal waiting
            with self._lock:
                if waiting:
                    self._advance()
                    self._waiting -= 1
                    waiting = False

        return started

    async def turn(self, backfill: bool) -> Callable[[], None]:
        """Return the hand-off mark for a stream's batch (see `queued`). A backfill's batch waits while live
        streams saturate the decode threads, and is not counted: it must not make them shed."""
        if not backfill:
            return self.queued()
        while self.overloaded:
            await asyncio.sleep(BACKFILL_POLL_SECONDS)
        return lambda: None

    @property
    def saturation(self) -> float:
        """The share of about the last `window_seconds` during which a batch waited for a thread, 0 to 1."""
        with self._lock:
            self._advance()
            return self._saturation

    @property
    def overloaded(self) -> bool:
        """Whether the decode threads have had more work than they could start for most of the recent
        window."""
        return self.saturation >= OVERLOADED

    def _advance(self) -> None:
        now = self._clock()
        kept = math.exp(-max(0.0, now - self._since) / self._window)
        self._saturation = self._saturation * kept + (1 - kept) * (self._waiting > 0)
        self._since = now
