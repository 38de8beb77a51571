"""`vigint key …`: a client's API keys made, listed, rotated and revoked; and how a new key reaches its
customer.

A new key is printed once, or with `--handover` handed over by a one-time link on the customer's page
(web/handover.py): the command then prints the link, and neither the key nor the link's token is stored.
"""

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from rich.console import Console

from vigint import keys
from vigint.cli import render
from vigint.cli.commands import Commands, open_store, option
from vigint.config import Settings
from vigint.errors import InvalidInputError
from vigint.media import SECONDS_PER_DAY
from vigint.store import ApiKey, Handover, KeyState
from vigint.words import plural

HANDOVER_HELP = ("print a one-time link to the customer's page that shows the key once, instead of the key; "
                 "the key works once the link is opened ([web] handover_hours)")
# The suffix a rotation adds to the successor's label.
ROTATED = re.compile(r"\s*\(rotated \d{4}-\d\d-\d\d\)$")

commands = Commands()
key_commands = commands.group("key", "create, list, rotate or revoke API keys")


@dataclass(frozen=True)
class NewKey:
    """A key a command makes: its hash and prefix for the store, and what reaches the customer: the key
    itself, or a hand-over link."""

    key_hash: str
    prefix: str
    api_key: str | None = field(default=None, repr=False)
    link: str | None = field(default=None, repr=False)  # carries the token that derives the key
    handover: Handover | None = None


def issue_key(settings: Settings, handover: bool) -> NewKey:
    """Make a new key: drawn at random, or derived from a new hand-over link (`handover`)."""
    if not handover:
        api_key = keys.generate()
        return NewKey(keys.hash_key(api_key), keys.display_prefix(api_key), api_key=api_key)
    from vigint.web.handover import new_handover  # the page's code loads only for commands that need it

    made = new_handover(settings)
    return NewKey(made.key_hash, made.key_prefix, link=made.url, handover=made.handover)


def print_issued(as_json: bool, console: Console, heading: str, issued: NewKey, document: dict) -> None:
    """Print a new key once, or its hand-over link, under `heading`; with `as_json`, `document` with them."""
    if as_json and issued.api_key:
        render.print_json({**document, "api_key": issued.api_key})
    elif as_json:
        render.print_json({**document, "handover_url": issued.link,
                           "handover_expires_at": render.iso(issued.handover.expires_at)})
    elif issued.api_key:
        render.print_new_key(console, heading, issued.api_key)
    else:
        render.print_handover(console, heading, issued.link, issued.handover.expires_at)


def key_state(key: ApiKey, now: float) -> str:
    """A key's state for a table: "active, expires in 6 days", "awaiting pick-up until …", "revoked"…"""
    state = key.state(now)
    if state is KeyState.AWAITING_PICKUP:
        return f"awaiting pick-up until {render.local(key.handover_expires_at)}"
    if state is KeyState.EXPIRED and key.awaits_pickup:
        return "expired: link never opened"
    said = [state.value]
    if state is KeyState.ACTIVE and key.expires_at is not None:
        said.append(keys.expires_in(key.expires_at, now))
    if key.picked_up_at is not None:
        said.append(f"picked up {render.local(key.picked_up_at)}")
    return ", ".join(said)


def key_document(key: ApiKey, now: float) -> dict:
    """A key for JSON: its record, state, and its hand-over link's fate if it was handed over by one."""
    handover = None
    if key.handover_expires_at is not None:
        fate = ("picked_up" if key.picked_up_at is not None
                else "awaiting_pickup" if key.handover_expires_at > now else "expired")
        handover = {"state": fate, "link_expires_at": render.iso(key.handover_expires_at),
                    "picked_up_at": render.iso(key.picked_up_at)}
    return {"id": key.id, "client_id": key.client_id, "prefix": key.prefix, "label": key.label,
            "state": key.state(now).value, "created_at": render.iso(key.created_at),
            "expires_at": render.iso(key.expires_at), "revoked_at": render.iso(key.revoked_at),
            "last_used_at": render.iso(key.last_used_at), "handover": handover}


def successor_label(label: str, now: float) -> str:
    """The label of a rotated key's successor: the old label with the day of the rotation (the previous one's,
    if it had one, replaced)."""
    day = datetime.fromtimestamp(now, timezone.utc).date().isoformat()
    return f"{ROTATED.sub('', label)} (rotated {day})".strip()


@key_commands.command("create", "add an API key to a client and print it once (or its hand-over link)",
                      option("--client-id", type=int, required=True),
                      option("--name", default="", help="a label, such as the site the key is for"),
                      option("--expires-in", type=float, metavar="DAYS",
                             help="the key stops working after DAYS days"),
                      option("--handover", action="store_true", help=HANDOVER_HELP), listing=True)
async def key_create(args, settings: Settings, console: Console) -> int:
    if args.expires_in is not None and args.expires_in <= 0:
        raise InvalidInputError("--expires-in must be a positive number of days")
    issued = issue_key(settings, args.handover)
    expires_at = None if args.expires_in is None else time.time() + args.expires_in * SECONDS_PER_DAY
    async with await open_store(settings) as store:
        key = await store.create_key(args.client_id, issued.key_hash, issued.prefix, args.name.strip(),
                                     expires_at, handover=issued.handover)
    expiry = f", expires {render.local(key.expires_at)}" if key.expires_at else ""
    heading = f"Created key {key.id} ({key.prefix}…) for client {key.client_id}{expiry}."
    print_issued(args.json, console, heading, issued, {"client_id": key.client_id, "key_id": key.id})
    return 0


@key_commands.command("list", "list API keys (prefixes only), their state and expiry",
                      option("--client-id", type=int), listing=True)
async def key_list(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await open_store(settings) as store:
        found = await store.list_keys(args.client_id)
    documents = [key_document(k, now) for k in found]
    rows = [(str(k.id), str(k.client_id), f"{k.prefix}…", k.label, key_state(k, now),
             render.local(k.created_at), render.local(k.expires_at), render.local(k.last_used_at))
            for k in found]
    columns = ("ID", "Client", "Prefix", "Label", "State", "Created", "Expires", "Last used")
    return render.listing(args.json, console, documents, plural(len(found), "key"), columns, rows,
                          optional=("Created", "Client"))


@key_commands.command("rotate", "give a key in use its successor, printed once (or handed over), and let "
                      "the old key expire after a grace period",
                      option("--key-id", type=int, required=True),
                      option("--grace-days", type=float, default=7.0, metavar="DAYS",
                             help="the old key keeps working this long, while agents move to the new one "
                                  "(default 7; 0: it stops now)"),
                      option("--handover", action="store_true", help=HANDOVER_HELP), listing=True)
async def key_rotate(args, settings: Settings, console: Console) -> int:
    if not 0 <= args.grace_days < float("inf"):
        raise InvalidInputError("--grace-days must be a number of days, 0 or more")
    now = time.time()
    issued = issue_key(settings, args.handover)
    async with await open_store(settings) as store:
        old = await store.get_key(args.key_id)
        label = successor_label(old.label, now)
        old_expires_at = now + args.grace_days * SECONDS_PER_DAY
        old, new = await store.rotate_key(old.id, issued.key_hash, issued.prefix, label, old_expires_at, now,
                                          issued.handover)
    heading = (f"Key {old.id} ({old.prefix}…) of client {old.client_id} "
               f"{keys.expires_in(old.expires_at, now)} ({render.local(old.expires_at)}); "
               "streams using it are closed then. "
               f"Its successor is key {new.id} ({new.prefix}…, {new.label!r}).")
    print_issued(args.json, console, heading, issued, {"client_id": new.client_id, "key_id": new.id,
                                                       "old_key_id": old.id,
                                                       "old_key_expires_at": render.iso(old.expires_at)})
    return 0


@key_commands.command("revoke", "revoke one API key; the client's other keys keep working",
                      option("--key-id", type=int, required=True))
async def key_revoke(args, settings: Settings, console: Console) -> int:
    async with await open_store(settings) as store:
        key = await store.revoke_key(args.key_id)
    console.print(f"Key {key.id} ({key.prefix}…) of client {key.client_id} revoked. "
                  "Streams using it are closed within a second.")
    return 0
