"""Events per key over a sliding window, pure, with a bounded memory: failed hellos per address, AI calls
per client."""

from collections import OrderedDict, deque


class RateLimiter:
    """Block a key (an address, a client) after `max_failures` events within `window_seconds`.

    A key is blocked until its oldest counted event leaves the window. At most `max_addresses` keys
    are remembered (least recently seen forgotten first), so a flood of spoofed sources cannot grow
    memory without bound.
    """

    def __init__(self, max_failures: int, window_seconds: float, max_addresses: int = 10_000):
        self._max = max_failures
        self._window = window_seconds
        self._max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address) or deque(maxlen=self._max)
        while times and times[0] <= now - self._window:
            times.popleft()
        return times

    def retry_after(self, address: str, now: float) -> float:
        """Return the seconds until `address` may try again; 0 if it is not blocked."""
        times = self._recent(address, now)
        if len(times) < self._max:
            return 0.0
        return times[-self._max] + self._window - now

    def blocked(self, now: float) -> list[tuple[str, int]]:
        """Return the keys blocked now, with how many events in the window put them there."""
        return [(key, len(self._recent(key, now))) for key in list(self._failures)
                if len(self._recent(key, now)) >= self._max]

    def record(self, address: str, now: float) -> None:
        """Count one event (a failed hello, a call) for `address` at time `now`."""
        times = self._recent(address, now)
        times.append(now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)
