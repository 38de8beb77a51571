"""The agent's send queue, pure: whole GOPs, handed over for the spool when they cannot be sent live."""

from collections import deque

from vigint.media import Packet


class GopQueue:
    """Access units waiting to be sent live, grouped by GOP (a keyframe and what depends on it).

    Nothing leaves the queue unsent except as whole GOPs, returned to the caller for the spool: then
    neither live video nor backfill ever holds a frame whose reference is missing. While `streaming`,
    the oldest GOPs not yet started leave when the unsent backlog spans more than `max_seconds` (the
    link is slower than the camera); while not, every GOP leaves once complete, and only the GOP still
    being recorded stays. The GOP being sent keeps all its units until it is complete and sent, so one
    cut off by a lost connection can still be spooled whole.
    """

    def __init__(self, max_seconds: float):
        self._max_us = int(max_seconds * 1_000_000)
        self._waiting: deque[list[Packet]] = deque()  # GOPs not started, oldest first; the last is recording
        self._current: list[Packet] = []  # the GOP being sent, whole; recording too while nothing waits
        self._sent = 0  # units of `_current` already handed out by `pop`
        self.streaming = False

    def push(self, packet: Packet) -> list[list[Packet]]:
        """Queue a unit from the camera; return the GOPs that leave the queue unsent, oldest first.

        Units before the first keyframe cannot be decoded and are dropped.
        """
        leaving = []
        if packet.keyframe:
            if not self.streaming:
                leaving += self._waiting  # all complete now
                self._waiting.clear()
            self._waiting.append([packet])
        elif self._waiting:
            self._waiting[-1].append(packet)
        elif self._current:
            self._current.append(packet)
        if self.streaming:
            leaving += self._trim(packet.dts)
        return leaving

    def _trim(self, newest_dts: int) -> list[list[Packet]]:
        leaving = []
        while len(self._waiting) > 1 and newest_dts - self._oldest_unsent_dts() > self._max_us:
            leaving.append(self._waiting.popleft())
        return leaving

    def _oldest_unsent_dts(self) -> int:
        return self._current[self._sent].dts if self._sent < len(self._current) else self._waiting[0][0].dts

    def pop(self) -> Packet | None:
        """Return the next unit to send, or None if there is none now."""
        if self._sent == len(self._current) and self._waiting:
            # the previous GOP is complete and sent
            self._current = self._waiting.popleft()
            self._sent = 0
        if self._sent == len(self._current):
            return None
        self._sent += 1
        return self._current[self._sent - 1]

    def pause(self) -> list[list[Packet]]:
        """The live connection is down: return every complete GOP not wholly sent, keep the recording one."""
        self.streaming = False
        if self._current and (self._sent < len(self._current) or not self._waiting):
            self._waiting.appendleft(self._current)  # its rest needs its keyframe: it starts again, whole
        self._current = []
        self._sent = 0
        leaving = list(self._waiting)[:-1]
        while len(self._waiting) > 1:
            self._waiting.popleft()
        return leaving

    def resume(self) -> None:
        """The live connection is up: the next unit `pop` returns is a keyframe (the server's decoder is
        new)."""
        self.streaming = True

    def delivered(self) -> None:
        """The server has every unit `pop` handed out (the connection closed cleanly after them): a GOP wholly
        sent leaves the queue. One sent in part stays whole: its rest cannot be decoded without its
        keyframe."""
        if self._sent == len(self._current):
            self._current = []
            self._sent = 0

    def drain(self) -> list[list[Packet]]:
        """The agent stops: return every GOP the server is not known to have, whole, and empty the queue.

        A unit handed out by `pop` counts as sent only once `delivered` says so: written to a connection that
        was then lost, it may never have arrived.
        """
        leaving = ([self._current] if self._current else []) + list(self._waiting)
        self._current = []
        self._sent = 0
        self._waiting.clear()
        return leaving

    @property
    def waiting_gops(self) -> int:
        """GOPs not started yet, the one being recorded included (the backfill sends while this is at most
        1)."""
        return len(self._waiting)

    def __len__(self) -> int:
        return len(self._current) - self._sent + sum(len(gop) for gop in self._waiting)
