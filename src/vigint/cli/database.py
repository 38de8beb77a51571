"""`vigint db backup`: a consistent copy of the SQLite file while servers run; `vigint db copy`: move up from
the embedded SQLite file to PostgreSQL, every row and id, counts verified.

The copy itself is the store's (`vigint.store.copy`); this module checks what it is asked, prints the progress
and the verified counts, and copies the clips to object storage with them (`--clips`).
"""

import argparse
import asyncio
import dataclasses
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from rich.console import Console

from vigint.alerts.links import LINK_SECRET_FILE
from vigint.cli import render
from vigint.cli.commands import Commands, check_clips_found, live_streams, open_store, option
from vigint.config import Settings
from vigint.errors import InvalidInputError, StoreError
from vigint.incidents import storage
from vigint.incidents.storage import incident_files, open_clip_storage
from vigint.locations import clips_location
from vigint.store import Store
from vigint.store.copy import check_targets, copy_database, ensure_empty
from vigint.store.engine import is_postgres

commands = Commands()
db_commands = commands.group("db", "back up the SQLite database, or move it up: copy it into PostgreSQL")


def _s3_url(text: str) -> str:
    """Parse --clips; argparse turns the error into a usage error (exit code 2)."""
    if not text.startswith("s3://") or len(text) <= len("s3://"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an s3://bucket/prefix URL")
    return text


def copy_clips(settings: Settings, clips_url: str, clip_names: list[str]) -> int:
    """Copy the clips the incidents name (`clip_names`) from the local clips folder into the storage at
    `clips_url` (with the [storage] s3_* settings or the AWS variables); return how many were copied. Copying
    a clip again is harmless, so a failed run can simply be run again.

    Raises:
        InvalidInputError: the clips are not in a local folder now.
        ConfigError, StorageError, OSError: the target cannot be opened or refuses a clip.
    """
    source = clips_location(settings.storage.clips)
    if source is not None and not isinstance(source, Path):
        raise InvalidInputError(f"the clips are already in object storage ({settings.storage.clips}): "
                                "copy them with your storage's own tools")
    folder = source or settings.storage.data_dir / "clips"
    check_clips_found(folder, clip_names, settings)
    target = open_clip_storage(dataclasses.replace(settings.storage, clips=clips_url))
    return storage.copy_clips(folder, target, clip_names)


@db_commands.command(
    "copy", "copy this SQLite database into an empty PostgreSQL database, ids kept, counts verified",
    option("--to", required=True, metavar="postgresql://…",
           help="the empty PostgreSQL database to copy into"),
    option("--clips", type=_s3_url, metavar="s3://bucket/prefix",
           help="also copy the incidents' clips there"),
    description="Copy every table of the SQLite database (--db, $VIGINT_DB, [database] path) into an empty "
                "PostgreSQL database, keeping every id (key hashes, incident ids in clip links, invoice "
                "numbers), in one transaction; then compare every table's row count on both sides. "
                "Stop vigint serve first.")
async def db_copy(args, settings: Settings, console: Console) -> int:
    source = settings.database.path
    check_targets(source, args.to)
    async with await Store.open(source) as origin, await Store.open(args.to) as target:
        if await live_streams(origin, settings, time.time()) is not None:
            raise StoreError(f"a vigint serve is running on {origin.name}: stop it first, or what it writes "
                             "during the copy would be missing from the copy")
        await ensure_empty(target)
        console.print(f"Copying {origin.name} into {target.name}:", highlight=False, markup=False)
        if args.clips is not None:  # first: clips can be copied again, a filled database cannot
            names = [name for incident in await origin.list_incidents() for name in incident_files(incident)]
            copied = await asyncio.to_thread(copy_clips, settings, args.clips, names)
            console.print(f"  clips          {copied:>12,} copied to {args.clips}",
                          highlight=False, markup=False)
        counts = await copy_database(origin, target, lambda table, rows: console.print(
            f"  {table:<14} {rows:>12,} rows copied", highlight=False, markup=False))
    console.print(render.table("Row counts, verified", ("Table", "SQLite", "PostgreSQL"),
                               [(c.table, f"{c.source:,}", f"{c.target:,}") for c in counts],
                               right=frozenset({"SQLite", "PostgreSQL"})))
    console.print(f"Copied {sum(c.target for c in counts):,} rows into {target.name}. Point [database] path "
                  "(or VIGINT_DB) at it, then start vigint serve.", highlight=False, markup=False)
    return 0


@db_commands.command("backup",
                     "copy the SQLite database to a new file, consistent even while servers write to it",
                     option("--to", type=Path, required=True, help="the backup file to create (owner-only)"))
async def db_backup(args, settings: Settings, console: Console) -> int:
    source = settings.database.path
    if is_postgres(source):
        raise InvalidInputError("a PostgreSQL database is backed up with PostgreSQL's tools: "
                                "pg_dump --format=custom")
    if args.to.exists():
        raise InvalidInputError(f"{args.to} exists already: name a new file")
    async with await open_store(settings):  # refuses a database that does not exist, migrates an old one
        pass
    size = await asyncio.to_thread(_backup, Path(source).expanduser(), args.to)
    secret = settings.storage.data_dir / LINK_SECRET_FILE
    console.print(f"Backed up {source} to {args.to} ({size / 1e6:.1f} MB). Keep it with the clip-link secret "
                  f"({secret} unless [alerts] link_secret is set): links already sent need it.",
                  markup=False, highlight=False, soft_wrap=True)
    return 0


def _backup(source: Path, target: Path) -> int:
    """Copy `source` with SQLite's online backup into `target`, owner-only and whole or not at all; return its
    size. The copy is a snapshot: writers go on meanwhile."""
    partial = target.with_name(target.name + ".part")
    descriptor = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(descriptor)
    try:
        with closing(sqlite3.connect(source)) as origin, closing(sqlite3.connect(partial)) as copy:
            origin.backup(copy)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size
