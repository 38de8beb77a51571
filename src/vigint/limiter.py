"""Failed-hello limiter per remote address, pure: a sliding window with a bounded memory."""

from collections import OrderedDict, deque


class FailureLimiter:
    """Block an address after `max_failures` failed hellos within `window_seconds`.

    An address is blocked until its oldest counted failure leaves the window. At most `max_addresses`
    are remembered (least recently failed forgotten first), so a flood of spoofed sources cannot grow
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

    def record_failure(self, address: str, now: float) -> None:
        """Count one failed hello from `address` at time `now`."""
        times = self._recent(address, now)
        times.append(now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)
