"""The agent's send queue, pure: whole GOPs, dropped whole when the link is slower than the camera."""

from collections import deque

from vigint.media import Packet


class GopQueue:
    """Access units waiting to be sent, grouped by GOP (a keyframe and what depends on it).

    When the unsent backlog spans more than `max_seconds`, the oldest GOPs not yet started are dropped,
    whole: the server then never receives a frame whose reference is missing, so a slow link costs
    video but never a decode error. A GOP already being sent is always finished.
    """

    def __init__(self, max_seconds: float):
        self._max_us = int(max_seconds * 1_000_000)
        self._waiting: deque[list[Packet]] = deque()  # GOPs not started, oldest first
        self._current: deque[Packet] = deque()  # the rest of the GOP being sent
        self._current_open = False  # the GOP being sent may still grow
        self.dropped_gops = 0

    def push(self, packet: Packet) -> None:
        """Queue a unit from the camera; units before the first keyframe cannot be decoded and are dropped."""
        if packet.keyframe:
            self._waiting.append([packet])
            self._current_open = False
        elif self._waiting:
            self._waiting[-1].append(packet)
        elif self._current_open:
            self._current.append(packet)
        self._trim(packet.dts)

    def _trim(self, newest_dts: int) -> None:
        while len(self._waiting) > 1 and newest_dts - self._oldest_dts() > self._max_us:
            self._waiting.popleft()
            self.dropped_gops += 1

    def _oldest_dts(self) -> int:
        return self._current[0].dts if self._current else self._waiting[0][0].dts

    def pop(self) -> Packet | None:
        """Return the next unit to send, or None if there is none now."""
        if not self._current and self._waiting:
            self._current = deque(self._waiting.popleft())
            self._current_open = not self._waiting
        return self._current.popleft() if self._current else None

    def restart(self) -> None:
        """After a reconnection: forget the rest of a half-sent GOP, so the next unit sent is a keyframe."""
        if self._current or self._current_open:
            self.dropped_gops += 1
        self._current.clear()
        self._current_open = False

    def __len__(self) -> int:
        return len(self._current) + sum(len(gop) for gop in self._waiting)
