"""Admission of connections that have not yet authenticated, pure: how many per address and in total.

An open socket costs a file descriptor whether or not it ever says hello. Agents say hello at once, so
the connections that stay unauthenticated are idle ones, and those are the ones to give up: past the
per-address cap the oldest waiting connection of that address goes (one host cannot take the whole
allowance, and one idle host behind a shop's NAT cannot lock out the shop's agent, whose fresh connection
is never the oldest for long), past the total cap the oldest waiting connection of all goes. Tokens are
whatever the caller uses to close a connection.
"""

from collections import OrderedDict
from collections.abc import Hashable


class Admission:
    """Unauthenticated connections, oldest first, at most `max_total` and `max_per_address` of them."""

    def __init__(self, max_total: int, max_per_address: int):
        self._max_total = max_total
        self._max_per_address = max_per_address
        self._waiting: OrderedDict[Hashable, str] = OrderedDict()
        self._by_address: dict[str, OrderedDict[Hashable, None]] = {}  # each address's, oldest first

    def admit(self, token: Hashable, address: str) -> list[Hashable]:
        """Count a new connection from `address`; return the connections to close now: the oldest waiting ones
        of its address beyond `max_per_address`, then the oldest of all beyond `max_total` (possibly none)."""
        self._waiting[token] = address
        self._by_address.setdefault(address, OrderedDict())[token] = None
        evicted = []
        while len(self._by_address[address]) > self._max_per_address:
            evicted.append(self._evict(next(iter(self._by_address[address]))))
        while len(self._waiting) > self._max_total:
            evicted.append(self._evict(next(iter(self._waiting))))
        return evicted

    def _evict(self, token: Hashable) -> Hashable:
        self.release(token)
        return token

    def release(self, token: Hashable) -> None:
        """Stop counting a connection: it authenticated, was refused or closed. Unknown tokens are ignored."""
        address = self._waiting.pop(token, None)
        if address is None:
            return
        tokens = self._by_address[address]
        del tokens[token]
        if not tokens:
            del self._by_address[address]

    def __len__(self) -> int:
        return len(self._waiting)
