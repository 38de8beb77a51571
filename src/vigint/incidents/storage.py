"""Clip storage: where clips and stills are kept, read back for signed links and pages, and removed (a folder
or S3).

Every clip has one name, the same in every storage: `clips/<client>/<incident>.mp4`, kept in the incident's
row, and its stills are named beside it (`still_name`). The folder keeps it at
`<folder>/<client>/<incident>.mp4` (default folder: data_dir/clips), S3 at `<prefix>/<client>/<incident>.mp4`,
so rows move between storages unchanged. A clip grows in a local file while its incident is recorded
(`growing`): a folder's is the clip itself, served as it grows; S3's is in a private local folder, uploaded
when asked (`publish`) and once finished. Every method blocks: call them in a worker thread, never on the
event loop.
"""

import enum
import logging
import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from vigint.config import StorageSettings
from vigint.errors import ConfigError, VigintError
from vigint.files import make_private_folders
from vigint.locations import clips_location
from vigint.store import Incident

log = logging.getLogger(__name__)

T = TypeVar("T")
CLIP_NAME = re.compile(r"clips/(\d+)/([^/\\]+)")


def still_name(client_id: int, incident_id: int, index: int) -> str:
    """Return the name of an incident's still number `index` (a JPEG beside its clip; the first is its
    thumbnail)."""
    return f"clips/{client_id}/{incident_id}-{index}.jpg"


def incident_files(incident: Incident) -> list[str]:
    """Return the names of an incident's files: its clip, if it has one, and its stills."""
    stills = [still_name(incident.client_id, incident.id, index) for index in range(incident.stills)]
    return [incident.clip_path, *stills] if incident.clip_path else stills


class StorageError(VigintError):
    """Clip storage refused or could not be reached; the message names the clip, never a credential."""


@dataclass(frozen=True)
class StoredObject:
    """A file as object storage holds it now: its size in bytes and its entity tag (quoted, as HTTP sends
    it)."""

    size: int
    etag: str


class Chunks(Protocol):
    """Bytes of a stored object read in bounded chunks; both methods block (call them in a worker thread)."""

    def read(self) -> bytes:
        """Return the next chunk, b"" after the last. Raises StorageError if the storage fails meanwhile."""

    def close(self) -> None:
        """Let go of the storage's connection, whether or not every chunk was read."""


class Removal(enum.Enum):
    REMOVED = enum.auto()
    GONE = enum.auto()  # already gone (retention, or a clip that was never written)
    KEPT = enum.auto()  # outside the client's own place, or the storage refused: logged


def client_clip(client_id: int, name: str) -> str | None:
    """Return the file name of `name` if it is one of `client_id`'s clips (`clips/<client>/<file>`), else
    None: whatever a row says, a removal never reaches another client's clip."""
    match = CLIP_NAME.fullmatch(name)
    if match is None or int(match[1]) != client_id or match[2] in (".", ".."):
        return None
    return match[2]


class ClipStorage(ABC):
    """Where clips live. `local_folder` is the folder they are kept in, where a clip grows in place and is
    read as it grows, or None for object storage; `growing_folder` the folder clips grow in, whose disk space
    is checked."""

    local_folder: Path | None = None
    growing_folder: Path

    @abstractmethod
    def write(self, name: str, make: Callable[[Path], T]) -> T:
        """Store clip `name`, written by `make(path)` to a local file (owner-only), whole or not at all;
        return what `make` returned. Raises what `make` raises, OSError, or StorageError."""

    @abstractmethod
    def growing(self, name: str) -> Path:
        """Return the local file clip `name` grows in while its incident is recorded. Raises ValueError if
        `name` is not `clips/<client>/<file>`."""

    @abstractmethod
    def publish(self, name: str) -> None:
        """Make clip `name` readable as it has grown so far. Raises OSError or StorageError."""

    @abstractmethod
    def finish(self, name: str, make: Callable[[Path], T]) -> T:
        """Store clip `name` as `make(path)` writes it (from its growing file) to a local file, whole or not
        at all; return what `make` returned. A folder's growing file is the clip: replaced, or kept as it grew
        if this fails; object storage's goes whatever happens (the clip as last published stays). Raises what
        `make` raises, OSError, or StorageError."""

    @abstractmethod
    def put(self, source: Path, name: str) -> None:
        """Store the finished local file `source` as clip `name`, whole or not at all. Raises OSError or
        StorageError."""

    @abstractmethod
    def read(self, name: str) -> bytes | None:
        """Return file `name`'s bytes, or None if there is none: for small files (stills in an email). Raises
        StorageError if the storage fails."""

    def describe(self, name: str) -> StoredObject | None:
        """Object storage (no `local_folder`): return file `name` as stored now, or None if there is none. A
        folder's files are served from the folder. Raises StorageError if the storage fails."""
        raise NotImplementedError

    def open_part(self, name: str, stored: StoredObject, part: range, chunk_bytes: int) -> Chunks:
        """Object storage (no `local_folder`): open the bytes `part` of file `name`, read at most
        `chunk_bytes` at a time (what a request holds in memory). Raises StorageError if the storage fails or
        the file is no longer the one `stored` describes."""
        raise NotImplementedError

    @abstractmethod
    def remove(self, client_id: int, name: str) -> Removal:
        """Remove one of a client's clips, only in the client's own place whatever `name` says."""

    def remove_client(self, client_id: int, names: Iterable[str]) -> int:
        """Remove a deleted client's clips; return how many went. What the database does not know is kept and
        logged, for the operator to judge."""
        return sum(self.remove(client_id, name) is Removal.REMOVED for name in names)


class FolderStorage(ClipStorage):
    """Clips in a local folder: `<folder>/<client>/<incident>.mp4`, files 0600 in folders 0700."""

    def __init__(self, folder: Path):
        self.local_folder = self.growing_folder = self._folder = folder

    def __repr__(self) -> str:
        return f"FolderStorage({str(self._folder)!r})"

    def path(self, name: str) -> Path:
        """Return where clip `name` is kept. Raises ValueError if `name` is not `clips/<client>/<file>`."""
        match = CLIP_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"{name!r} is not a clip name")
        return self._folder / match[1] / match[2]

    def write(self, name: str, make: Callable[[Path], T]) -> T:
        # `make` writes beside the path and renames (clips.finish, write_private)
        return make(self.path(name))

    def growing(self, name: str) -> Path:
        return self.path(name)  # the clip itself: served, and linked, as it grows

    def publish(self, name: str) -> None:
        pass  # the growing file is the clip

    def finish(self, name: str, make: Callable[[Path], T]) -> T:
        return self.write(name, make)  # over the growing file, by a rename

    def put(self, source: Path, name: str) -> None:
        path = self.path(name)
        partial = path.with_name(path.name + ".part")
        make_private_folders(path.parent)
        try:
            descriptor = os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            os.fchmod(descriptor, 0o600)  # a .part left by a crash keeps its old mode through O_CREAT
            with os.fdopen(descriptor, "wb") as target, source.open("rb") as origin:
                shutil.copyfileobj(origin, target)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def read(self, name: str) -> bytes | None:
        try:
            return self.path(name).read_bytes()
        except (ValueError, OSError):
            return None

    def remove(self, client_id: int, name: str) -> Removal:
        folder = self._folder / str(client_id)
        if client_clip(client_id, name) is None:
            log.warning("client %d: clip %s is outside %s, left in place", client_id, name, folder)
            return Removal.KEPT
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return Removal.GONE
        except OSError as error:
            log.warning("client %d: cannot remove clip %s: %s", client_id, path, error.strerror)
            return Removal.KEPT
        return Removal.REMOVED

    def remove_client(self, client_id: int, names: Iterable[str]) -> int:
        removed = super().remove_client(client_id, names)
        folder = self._folder / str(client_id)
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass
        # not empty: files the database does not know, kept for the operator to judge
        except OSError as error:
            log.warning("client %d: %s kept: %s", client_id, folder, error.strerror)
        return removed


def open_clip_storage(settings: StorageSettings) -> ClipStorage:
    """Return the clip storage `settings` name. Raises ConfigError for a bad `clips` value, or when S3 is
    asked for and its library is not installed."""
    try:
        location = clips_location(settings.clips)
    except ValueError as error:
        raise ConfigError(f"[storage] clips: {error}") from None
    if location is None:
        return FolderStorage(settings.data_dir / "clips")
    if isinstance(location, Path):
        return FolderStorage(location)
    from vigint.incidents.s3 import S3Storage  # only here: the S3 library is an optional extra

    return S3Storage(location, settings)


def copy_clips(source_folder: Path, target: ClipStorage, names: Iterable[str]) -> int:
    """Copy the clips `names` (`clips/<client>/<incident>.mp4`, as rows hold them) from the local clips folder
    `source_folder` (data_dir/clips) into `target`; return how many were copied. A clip missing from the
    folder is skipped with a warning; a name that is not a clip's is refused. Raises OSError or StorageError
    when the target refuses a clip (those copied before it stay: copying again is harmless)."""
    source = FolderStorage(source_folder)
    copied = 0
    for name in names:
        try:
            path = source.path(name)
        except ValueError:
            log.warning("%r is not a clip name: not copied", name)
            continue
        if not path.is_file():
            log.warning("clip %s is not in %s: not copied", name, source_folder)
            continue
        target.put(path, name)
        copied += 1
    return copied
