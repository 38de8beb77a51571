"""Owner-only files and folders: clips, captured emails and secrets are customers' data or keys."""

import os
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


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX: the folder's entry is data of its own)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
