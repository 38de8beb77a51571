"""`vigint db copy`: move up from the embedded SQLite file to PostgreSQL, every row and id, counts verified.

The copy itself is the store's (`vigint.store.copy`); this module checks what it is asked, prints the progress
and the verified counts, and copies the clips to object storage with them (`--clips`).
"""

import argparse
import asyncio
import dataclasses
import time
from pathlib import Path

from rich.console import Console

from vigint.admin import render
from vigint.admin.commands import Commands, live_streams, option
from vigint.config import Settings, clips_location
from vigint.errors import InvalidInputError, StoreError
from vigint.incidents import storage
from vigint.incidents.storage import incident_files, open_clip_storage
from vigint.store import Store
from vigint.store.copy import check_targets, copy_database, ensure_empty

commands = Commands()
db_commands = commands.group("db", "move the database up: copy a SQLite file into PostgreSQL")


def _s3_url(text: str) -> str:
    """Parse --clips; argparse turns the error into a usage error (exit code 2)."""
    if not text.startswith("s3://") or len(text) <= len("s3://"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an s3://bucket/prefix URL")
    return text


def copy_clips(settings: Settings, clips_url: str, clip_names: list[str]) -> int:
    """Copy the clips the incidents name (`clip_names`) from the local clips folder into the storage at `clips_url`
    (with the [storage] s3_* settings or the AWS variables); return how many were copied. Copying a clip again is
    harmless, so a failed run can simply be run again.

    Raises:
        InvalidInputError: the clips are not in a local folder now.
        ConfigError, StorageError, OSError: the target cannot be opened or refuses a clip.
    """
    source = clips_location(settings.storage.clips)
    if source is not None and not isinstance(source, Path):
        raise InvalidInputError(f"the clips are already in object storage ({settings.storage.clips}): copy them "
                                "with your storage's own tools")
    target = open_clip_storage(dataclasses.replace(settings.storage, clips=clips_url))
    return storage.copy_clips(source or settings.storage.data_dir / "clips", target, clip_names)


@db_commands.command(
    "copy", "copy this SQLite database into an empty PostgreSQL database, ids kept, counts verified",
    option("--to", required=True, metavar="postgresql://…", help="the empty PostgreSQL database to copy into"),
    option("--clips", type=_s3_url, metavar="s3://bucket/prefix", help="also copy the incidents' clips there"),
    description="Copy every table of the SQLite database (--db, $VIGINT_DB, [database] path) into an empty "
                "PostgreSQL database, keeping every id (key hashes, incident ids in clip links, invoice numbers), "
                "in one transaction; then compare every table's row count on both sides. Stop vigint serve first.")
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
            console.print(f"  clips          {copied:>12,} copied to {args.clips}", highlight=False, markup=False)
        counts = await copy_database(origin, target, lambda table, rows: console.print(
            f"  {table:<14} {rows:>12,} rows copied", highlight=False, markup=False))
    console.print(render.table("Row counts, verified", ("Table", "SQLite", "PostgreSQL"),
                               [(c.table, f"{c.source:,}", f"{c.target:,}") for c in counts],
                               right=frozenset({"SQLite", "PostgreSQL"})))
    console.print(f"Copied {sum(c.target for c in counts):,} rows into {target.name}. Point [database] path "
                  "(or VIGINT_DB) at it, then start vigint serve.", highlight=False, markup=False)
    return 0
