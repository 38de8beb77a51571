"""Owner-only files and folders: clips, captured emails and secrets are customers' data or keys."""

import os
import secrets
from pathlib import Path


def make_private_folders(folder: Path) -> None:
    """Create `folder` and its missing parents owner-only (0700); folders that exist keep their mode."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # made by another process or worker meanwhile: its mode is its creator's
            continue
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask


def write_private(path: Path, data: bytes) -> None:
    """Write `path` owner-only (0600), whole or not at all, and durably; its folders are made 0700.

    Written to a temporary name beside it and renamed: a full disk or a crash leaves either nothing or
    the whole file, never an empty or truncated one (an empty link secret would sign with ""). Raises OSError.
    """
    make_private_folders(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX: the folder's entry is data of its own)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
