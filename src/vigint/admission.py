"""Admission of connections that have not yet authenticated, pure: how many per address and in total.

An open socket costs a file descriptor whether or not it ever says hello. Agents say hello at once, so
the connections that stay unauthenticated are idle ones, and those are the ones to give up: past the
per-address cap the newcomer is refused (one host cannot take the whole allowance), past the total cap
the oldest waiting connection goes (a legitimate agent that just connected is never the oldest for
long). Tokens are whatever the caller uses to close a connection.
"""

from collections import Counter, OrderedDict
from collections.abc import Hashable


class Admission:
    """Unauthenticated connections, oldest first, at most `max_total` and `max_per_address` of them."""

    def __init__(self, max_total: int, max_per_address: int):
        self._max_total = max_total
        self._max_per_address = max_per_address
        self._waiting: OrderedDict[Hashable, str] = OrderedDict()
        self._per_address: Counter[str] = Counter()

    def admit(self, token: Hashable, address: str) -> list[Hashable]:
        """Count a new connection from `address`; return the connections to close now.

        That is `token` itself when its address already has `max_per_address` waiting, else the oldest
        waiting connections beyond `max_total` (possibly none).
        """
        if self._per_address[address] >= self._max_per_address:
            return [token]
        self._waiting[token] = address
        self._per_address[address] += 1
        evicted = []
        while len(self._waiting) > self._max_total:
            oldest, _ = next(iter(self._waiting.items()))
            self.release(oldest)
            evicted.append(oldest)
        return evicted

    def release(self, token: Hashable) -> None:
        """Stop counting a connection: it authenticated, was refused or closed. Unknown tokens are ignored."""
        address = self._waiting.pop(token, None)
        if address is None:
            return
        self._per_address[address] -= 1
        if not self._per_address[address]:
            del self._per_address[address]

    def __len__(self) -> int:
        return len(self._waiting)
