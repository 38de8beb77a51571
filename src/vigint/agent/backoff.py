"""Reconnection delays, pure: exponential with jitter, capped, reset after a healthy period."""

import random


class Backoff:
    """Delays for successive retries: base × 2^n seconds, at most `cap`, each scaled by a random 0.5–1.

    Jitter spreads the reconnections of many agents after a server restart. A connection that stayed
    healthy for `healthy_seconds` resets the sequence, so one blip after a day of streaming waits `base`.
    """

    def __init__(self, base: float = 1.0, cap: float = 30.0, healthy_seconds: float = 60.0,
                 rng: random.Random | None = None):
        self._base = base
        self._cap = cap
        self._healthy = healthy_seconds
        self._rng = rng or random.Random()
        self._failures = 0
        self._up_since: float | None = None

    def connected(self, now: float) -> None:
        """Note that a connection (or source) started working at `now`."""
        self._up_since = now

    def soon(self) -> float:
        """Return a short delay, base × a random 0–1, that leaves the sequence as it is: for a stream the
        server closed to hand it on (a node shutting down or draining), where another node, or the same one
        restarted, is expected at once. Jitter still spreads many agents; a failed retry then backs off."""
        return self._base * self._rng.uniform(0.0, 1.0)

    def next_delay(self, now: float) -> float:
        """Return how long to wait before the next try, after a failure at `now`."""
        if self._up_since is not None and now - self._up_since >= self._healthy:
            self._failures = 0
        self._up_since = None
        ceiling = min(self._cap, self._base * 2 ** self._failures)
        self._failures += 1
        return ceiling * self._rng.uniform(0.5, 1.0)
