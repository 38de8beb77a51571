"""The regular review of who holds keys (`vigint review`): each client's active keys, when it was last seen,
and the keys nobody has used for a while, which are leaks nobody would notice. Read-only."""

import time

from rich.console import Console

from vigint.cli import render
from vigint.cli.commands import Commands, keys_by_client, last_seen, open_store
from vigint.config import Settings
from vigint.media import SECONDS_PER_DAY
from vigint.store import KeyState
from vigint.words import plural

UNUSED_DAYS = 30  # a key unused this long is probably forgotten: a leak nobody would notice
commands = Commands()


@commands.command("review", "the regular review: each client's keys, when it was last seen, keys unused for "
                  f"{UNUSED_DAYS} days (revoke what nobody uses)", listing=True)
async def review(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await open_store(settings) as store:
        clients = await store.list_clients()
        keys = await store.list_keys()
    owned = keys_by_client(keys)
    forgotten = now - UNUSED_DAYS * SECONDS_PER_DAY
    documents = []
    rows = []
    for client in clients:
        own = owned.get(client.id, [])
        active = [key for key in own if key.state(now) is KeyState.ACTIVE]
        unused = [key for key in active if (key.last_used_at or key.created_at) < forgotten]
        seen = last_seen(own)
        documents.append({"client_id": client.id, "name": client.name, "status": client.status.value,
                          "active_keys": len(active), "last_seen_at": render.iso(seen),
                          "unused_keys": [{"key_id": key.id, "prefix": key.prefix, "label": key.label,
                                           "last_used_at": render.iso(key.last_used_at)} for key in unused]})
        rows.append((str(client.id), client.name, client.status.value, str(len(active)), render.local(seen),
                     ", ".join(f"#{key.id} {key.prefix}… {key.label}".strip() for key in unused) or "—"))
    flagged = sum(bool(d["unused_keys"]) for d in documents)
    title = f"{plural(len(clients), 'client')}; {flagged} with keys unused for {UNUSED_DAYS} days"
    columns = ("Client", "Name", "Status", "Active keys", "Last seen", f"Unused {UNUSED_DAYS} days")
    return render.listing(args.json, console, documents, title, columns, rows)
