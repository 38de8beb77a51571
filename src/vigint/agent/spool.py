"""The agent's on-disk spool: whole GOPs that could not be sent live, kept until the server acks them.

Layout: one directory per camera (camera names are safe as directory names, see protocol.CAMERA_NAME),
one file per GOP named `<first_dts:020d>-<last_dts:020d>.gop`. A file is written as `NAME.tmp`, fsynced
and renamed, so an agent killed mid-write loses at most the GOP it was writing; a restarted agent removes
leftover `.tmp` files and finds the rest by their names alone (no file is read at start: a 2 GB spool
would take that long to open). A file found damaged when read is deleted, counted and logged.

A file is a magic line, then per access unit a 4-byte big-endian length and a `protocol.media` message;
the first unit is the GOP's keyframe. Disk errors never stop the agent: they are logged once, and the
GOP is counted as dropped.
"""

import bisect
import logging
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vigint import protocol
from vigint.media import MICROSECONDS, Packet

log = logging.getLogger(__name__)

MAGIC = b"VIGINT-GOP 1\n"
_LENGTH = struct.Struct(">I")
_NAME = re.compile(r"(\d{20})-(\d{20})\.gop")


@dataclass(frozen=True)
class SpooledGop:
    """One GOP on disk: its decode times (µs since the Unix epoch) come from its file name."""

    path: Path
    first_dts: int
    last_dts: int
    size: int


@dataclass(frozen=True)
class SpoolStats:
    """What one camera's spool holds, for the live view and the live hello."""

    bytes: int = 0
    gops: int = 0
    seconds: float = 0.0  # footage spooled: each GOP counts from its first to its last decode time
    oldest_us: int | None = None  # capture time of the oldest spooled GOP (how far behind the backfill is)
    dropped_gops: int = 0  # lost for good: evicted for the cap, unwritable, or found damaged


@dataclass
class _Shelf:
    """One camera's GOPs, oldest first, and its counters."""

    gops: list[SpooledGop] = field(default_factory=list)
    bytes: int = 0
    micros: int = 0
    dropped: int = 0

    def add(self, gop: SpooledGop) -> None:
        bisect.insort(self.gops, gop, key=lambda spooled: spooled.first_dts)
        self.bytes += gop.size
        self.micros += gop.last_dts - gop.first_dts

    def remove(self, gop: SpooledGop) -> None:
        self.gops.remove(gop)
        self.bytes -= gop.size
        self.micros -= gop.last_dts - gop.first_dts


def encode(gop: Sequence[Packet]) -> bytes:
    """Return a GOP's file contents."""
    records = [MAGIC]
    for packet in gop:
        message = protocol.media(packet.pts, packet.dts, packet.data)
        records += [_LENGTH.pack(len(message)), message]
    return b"".join(records)


def decode(data: bytes) -> list[Packet] | None:
    """Return the access units of a GOP's file contents, or None if they are truncated or not a GOP file."""
    if not data.startswith(MAGIC):
        return None
    packets = []
    position = len(MAGIC)
    while position < len(data):
        if position + _LENGTH.size > len(data):
            return None
        (size,) = _LENGTH.unpack_from(data, position)
        position += _LENGTH.size
        if position + size > len(data):
            return None
        try:
            message = protocol.parse_media(data[position:position + size])
        except protocol.ProtocolViolation:
            return None
        packets.append(Packet(message.pts, message.dts, not packets, message.data))
        position += size
    return packets or None


class Spool:
    """Whole GOPs on disk, per camera, under one byte cap shared by every camera.

    Every method runs on the event loop's thread: a GOP is written at most once per GOP duration per
    camera, and its fsync is what makes the file survive a crash.
    """

    def __init__(self, directory: Path, max_bytes: int):
        self.directory = directory
        self.max_bytes = max_bytes
        self._shelves: dict[str, _Shelf] = {}
        self._failing = False  # a disk error was logged and nothing has been written since
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # footage is private
            self._scan()
        except OSError as error:
            self._report(error)

    def _scan(self) -> None:
        for camera_dir in self.directory.iterdir():
            if not camera_dir.is_dir() or not protocol.is_camera_name(camera_dir.name):
                continue
            shelf = self._shelf(camera_dir.name)
            for path in camera_dir.iterdir():
                if path.suffix == ".tmp":  # a GOP being written when the agent died
                    path.unlink(missing_ok=True)
                    shelf.dropped += 1
                    log.warning("camera %s: removed %s, left half-written by an agent that did not stop "
                                "cleanly", camera_dir.name, path)
                elif match := _NAME.fullmatch(path.name):
                    shelf.add(SpooledGop(path, int(match[1]), int(match[2]), path.stat().st_size))
        found = {name: shelf.gops for name, shelf in self._shelves.items() if shelf.gops}
        for name, gops in found.items():
            log.info("camera %s: %d GOPs of recorded video waiting in %s", name, len(gops),
                     self.directory / name)

    def _shelf(self, camera: str) -> _Shelf:
        return self._shelves.setdefault(camera, _Shelf())

    def write(self, camera: str, gop: Sequence[Packet]) -> bool:
        """Spool one whole GOP (a keyframe first), evicting the oldest GOPs of any camera to stay under the
        cap.

        Returns whether it was written; if not, the error is logged (once until a write succeeds again)
        and the GOP counted as dropped.
        """
        data = encode(gop)
        self._make_room(len(data))
        shelf = self._shelf(camera)
        path = self.directory / camera / f"{gop[0].dts:020d}-{gop[-1].dts:020d}.gop"
        temporary = path.with_suffix(".tmp")
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except OSError as error:
            _remove(temporary)
            shelf.dropped += 1
            self._report(error)
            return False
        if self._failing:
            self._failing = False
            log.info("the spool %s is writable again", self.directory)
        for same in [spooled for spooled in shelf.gops if spooled.path == path]:
            shelf.remove(same)  # the same times again (a file source played twice): replaced, not doubled
        shelf.add(SpooledGop(path, gop[0].dts, gop[-1].dts, len(data)))
        return True

    def _make_room(self, size: int) -> None:
        """Evict the globally oldest GOPs until `size` more bytes fit under the cap."""
        while self._total() + size > self.max_bytes:
            shelves = [shelf for shelf in self._shelves.values() if shelf.gops]
            if not shelves:
                return  # a GOP larger than the whole cap: written anyway, alone
            oldest = min(shelves, key=lambda shelf: shelf.gops[0].first_dts)
            self._discard(oldest, oldest.gops[0])
            oldest.dropped += 1

    def _total(self) -> int:
        return sum(shelf.bytes for shelf in self._shelves.values())

    def _discard(self, shelf: _Shelf, gop: SpooledGop) -> None:
        shelf.remove(gop)
        _remove(gop.path)

    def _report(self, error: OSError) -> None:
        if not self._failing:
            self._failing = True
            log.error("cannot write recorded video to %s (%s): video the server does not get live is lost "
                      "until this is fixed; live video goes on", self.directory, error.strerror or error)

    def cameras(self) -> list[str]:
        """Return the name of every camera with GOPs spooled, configured or not."""
        return sorted(name for name, shelf in self._shelves.items() if shelf.gops)

    def gops(self, camera: str) -> list[SpooledGop]:
        """Return a camera's spooled GOPs, oldest first."""
        return list(self._shelf(camera).gops)

    def next_gop(self, camera: str, after_dts: int | None) -> SpooledGop | None:
        """Return the oldest spooled GOP starting after `after_dts` (None: the oldest of all), or None."""
        gops = self._shelf(camera).gops
        if after_dts is None:
            return gops[0] if gops else None
        index = bisect.bisect_right(gops, after_dts, key=lambda gop: gop.first_dts)
        return gops[index] if index < len(gops) else None

    def read(self, camera: str, gop: SpooledGop) -> list[Packet] | None:
        """Return a spooled GOP's access units, or None if it is gone or damaged (then deleted and
        counted)."""
        shelf = self._shelf(camera)
        try:
            packets = decode(gop.path.read_bytes())
        except FileNotFoundError:
            packets = None
        except OSError as error:
            log.warning("camera %s: cannot read spooled video %s: %s", camera, gop.path, error.strerror)
            return None
        if packets is None or packets[0].dts != gop.first_dts or packets[-1].dts != gop.last_dts:
            log.warning("camera %s: spooled video %s is damaged or missing; deleted", camera, gop.path)
            if gop in shelf.gops:
                self._discard(shelf, gop)
            shelf.dropped += 1
            return None
        return packets

    def acknowledge(self, camera: str, until: int) -> int:
        """Delete every spooled GOP whose last decode time is at most `until` (the server has it); return how
        many."""
        shelf = self._shelf(camera)
        done = [gop for gop in shelf.gops if gop.last_dts <= until]
        for gop in done:
            self._discard(shelf, gop)
        return len(done)

    def stats(self, camera: str) -> SpoolStats:
        """Return what the spool holds for `camera`."""
        shelf = self._shelf(camera)
        oldest_us = shelf.gops[0].first_dts if shelf.gops else None
        return SpoolStats(bytes=shelf.bytes, gops=len(shelf.gops), seconds=shelf.micros / MICROSECONDS,
                          oldest_us=oldest_us, dropped_gops=shelf.dropped)


def _remove(path: Path) -> None:
    """Delete a file, ignoring a failure: the spool is best effort, and the next start cleans up again."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
