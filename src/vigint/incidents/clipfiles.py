"""The blocking work on an incident's clip and still files, shared by the recorder and the recovery.

Finishing a clip (a faststart MP4 with its strip of stills), writing a still and checking the disk's free room
all block on files and decoders: each is called in a worker thread of the server's pool (`ClipContext.pool`),
whether the recorder finishes the clip it grew or a node's recovery finishes one a dead run left.
"""

import logging
import shutil
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import av

from vigint.config import Settings
from vigint.files import write_private
from vigint.incidents import clips, stills
from vigint.incidents.storage import ClipStorage, still_name
from vigint.media import MICROSECONDS
from vigint.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipContext:
    """What the recorders of one server share: settings, where clips go, counters and the worker pool."""

    settings: Settings
    storage: ClipStorage
    metrics: Metrics
    pool: Executor


class NoRoom(Exception):
    """The disk the clips grow on keeps less than min_free_mb free (the message says where)."""


def check_room(context: ClipContext) -> None:
    """Raise NoRoom unless the disk the clips grow on keeps min_free_mb free (measured on the folder's nearest
    parent that exists: the folder itself is made with the first clip). Blocks: call it in a worker thread."""
    folder = context.storage.growing_folder
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    least = context.settings.storage.min_free_mb
    if shutil.disk_usage(folder).free < least * 2**20:
        raise NoRoom(f"less than {least} MB free in {context.storage.growing_folder}")


def strip_times(start: int, last: int, base: int, stills_made: int) -> tuple[list[float], float]:
    """Return when an incident's strip of stills is taken (seconds into its clip, whose time 0 is the capture
    time `base`), spread over its event from `start` to `last` (µs), after the `stills_made` it has; and
    after when (the thumbnail's time, if it has one, else -1)."""
    times = [start + (last - start) * index // (stills.MAX_STILLS - 1)
             for index in range(stills_made, stills.MAX_STILLS)]
    thumbnail = (start - base) / MICROSECONDS if stills_made else -1.0
    return [(at - base) / MICROSECONDS for at in times], thumbnail


def finished_clip(context: ClipContext, growing: Path, path: Path, until: int,
                  strip: tuple[list[float], float]) -> tuple[float, list[bytes]]:
    """Write the clip growing (or grown, closed) at `growing` to `path` as a faststart MP4 of its packets
    decoded up to `until` (MP4 ticks), and return its duration and its strip of stills taken at `strip` (see
    `strip_times`; none if they cannot be made: the clip matters more). Raises NoRoom (a finished copy takes
    as much room again), OSError or ClipError. Blocks: call it in a worker thread."""
    check_room(context)
    duration = clips.finish(growing, path, until)
    try:
        return duration, stills.strip(path, *strip)
    except av.FFmpegError as error:
        log.warning("%s: no strip of stills: %s", path.name, error)
        return duration, []


def write_still(context: ClipContext, client_id: int, incident_id: int, index: int, jpeg: bytes) -> None:
    """Store `jpeg` as an incident's still number `index`. Raises OSError or StorageError. Blocks."""
    context.storage.write(still_name(client_id, incident_id, index), partial(write_private, data=jpeg))
