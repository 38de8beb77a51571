"""`vigint client …` and `vigint audit`: customers, with their keys at a glance, and the admin trail.

Every change here is audited by the store; a new key's plaintext is printed once (or handed over by a link,
see apikeys.py) and never stored.
"""

import asyncio
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console

from vigint.alerts.templates import LANGUAGES
from vigint.cli import render
from vigint.cli.apikeys import HANDOVER_HELP, issue_key, key_document, key_state, print_issued
from vigint.cli.commands import (
    Commands,
    check_clips_found,
    is_new_database,
    keys_by_client,
    last_seen,
    live_streams,
    open_store,
    option,
    parse_day,
)
from vigint.config import Settings
from vigint.errors import InvalidInputError
from vigint.incidents.storage import incident_files, open_clip_storage
from vigint.media import SECONDS_PER_DAY
from vigint.store import Client, ClientStatus
from vigint.words import plural

# Deliberately loose: the mail server is the judge of deliverability; this catches typos and pastes.
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MAX_NAME_LENGTH = 200

commands = Commands()
client_commands = commands.group("client", "create, list, revoke, reactivate or delete customers")


def validate_name(name: str) -> str:
    """Return the client name stripped of outer spaces. Raises InvalidInputError if empty or too long."""
    name = name.strip()
    if not name:
        raise InvalidInputError("the client name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"the client name is longer than {MAX_NAME_LENGTH} characters")
    return name


def validate_email(email: str) -> str:
    """Return the email stripped of outer spaces. Raises InvalidInputError if it is not an address."""
    email = email.strip()
    if not EMAIL_PATTERN.fullmatch(email):
        raise InvalidInputError(f"{email!r} is not an email address")
    return email


def validate_timezone(name: str | None) -> str | None:
    """Return an IANA time zone name as given, or None for an empty one (the server's zone).

    Raises:
        InvalidInputError: no such zone in the system's time zone database.
    """
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not even a well-formed name ("../x")
        raise InvalidInputError(f"unknown time zone {name!r}: use an IANA name such as Europe/Paris "
                                "(`timedatectl list-timezones` lists them)") from None
    return name


def validate_language(code: str | None) -> str | None:
    """Return a language of alerts (en, fr; case and outer spaces ignored), or None for an empty one (the
    server's `[alerts] language`).

    Raises:
        InvalidInputError: a language alerts are not written in.
    """
    language = (code or "").strip().lower()
    if language and language not in LANGUAGES:
        raise InvalidInputError(f"unknown language {code!r}: alerts are written in {' or '.join(LANGUAGES)}")
    return language or None


TIMEZONE_HELP = "time zone of its alerts, e.g. Europe/Paris (default: the server's)"
LANGUAGE_HELP = (f"language of its alerts and page: {', '.join(LANGUAGES)} "
                 "(default: the server's [alerts] language)")


@client_commands.command("create", "create a client and print its first API key once (or its hand-over link)",
                         option("--name", required=True, help="the customer's name"),
                         option("--email", required=True, help="where incident alerts are sent"),
                         option("--timezone", help=TIMEZONE_HELP), option("--language", help=LANGUAGE_HELP),
                         option("--handover", action="store_true", help=HANDOVER_HELP), listing=True)
async def client_create(args, settings: Settings, console: Console) -> int:
    name = validate_name(args.name)
    email = validate_email(args.email)
    zone = validate_timezone(args.timezone)
    language = validate_language(args.language)
    issued = issue_key(settings, args.handover)
    if is_new_database(settings):
        database = Path(settings.database.path).absolute()
        print(f"vigint: creating a new database at {database}", file=sys.stderr)
    async with await open_store(settings, create=True) as store:
        client, key = await store.create_client(name, email, issued.key_hash, issued.prefix, timezone=zone,
                                                language=language, handover=issued.handover)
    heading = (f"Created client {client.id} ({client.name}, {client.email}) "
               f"with key {key.id} ({key.prefix}…).")
    print_issued(args.json, console, heading, issued, {"client_id": client.id, "key_id": key.id})
    return 0


@client_commands.command("update", "change a client's settings ('' sets the server's, or none)",
                         option("--client-id", type=int, required=True),
                         option("--timezone", help=TIMEZONE_HELP), option("--language", help=LANGUAGE_HELP),
                         option("--address", help="postal address printed on its invoices, on one line"),
                         option("--vat-id", help="VAT number printed on its invoices"))
async def client_update(args, settings: Settings, console: Console) -> int:
    checks = {"timezone": validate_timezone, "language": validate_language,
              "address": validate_billing_detail, "vat_id": validate_billing_detail}
    given = {name: getattr(args, name) for name in checks if getattr(args, name) is not None}
    changes = {name: checks[name](value) for name, value in given.items()}
    if not changes:
        raise InvalidInputError("nothing to change: give --timezone, --language, --address or --vat-id")
    async with await open_store(settings) as store:
        await store.update_client(args.client_id, **changes)
    vat = "VAT " + changes["vat_id"] if changes.get("vat_id") else "no VAT number"
    said = {"timezone": f"its alerts show times in {changes.get('timezone') or 'the server’s time zone'}",
            "language": f"its alerts are written in {changes.get('language') or 'the server’s language'}",
            "address": f"its next invoices are addressed to {changes.get('address') or 'its name alone'}",
            "vat_id": f"its next invoices show {vat}"}
    console.print(f"Client {args.client_id}: {'; '.join(said[name] for name in changes)}.", highlight=False)
    return 0


def validate_billing_detail(text: str) -> str | None:
    """An address or VAT number: one line of at most MAX_NAME_LENGTH characters; '' for none."""
    text = " ".join(text.split())
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"at most {MAX_NAME_LENGTH} characters, please (got {len(text)})")
    return text or None


@client_commands.command("list", "list clients with their keys and last activity", listing=True)
async def client_list(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await open_store(settings) as store:
        clients = await store.list_clients()
        all_keys = await store.list_keys()
        streams = await live_streams(store, settings, now) or []
        flags = await store.flags(since=now - 7 * SECONDS_PER_DAY)
        reactivated = await store.reactivations()
    owned = keys_by_client(all_keys)

    def cameras(client: Client) -> list[str]:
        return sorted(stream["camera"] for stream in streams if stream["client_id"] == client.id)

    def flag_kinds(client: Client) -> list[str]:
        return sorted({flag.kind for flag in flags if flag.client_id == client.id})

    def awaiting_agents_since(client: Client) -> float | None:
        """When the client was reactivated, while none of its agents has come back since (they retry
        slowly)."""
        since = reactivated.get(client.id)
        if since is None or client.status is not ClientStatus.ACTIVE or cameras(client):
            return None
        return since if (last_seen(owned.get(client.id, [])) or 0) < since else None

    def status(client: Client) -> str:
        since = awaiting_agents_since(client)
        if since is None:
            return client.status.value
        return f"active\nreactivated {render.local(since)}; no camera back yet"

    documents = [{"id": c.id, "name": c.name, "email": c.email, "status": c.status.value,
                  "timezone": c.timezone, "language": c.language,
                  "created_at": render.iso(c.created_at), "updated_at": render.iso(c.updated_at),
                  "last_seen_at": render.iso(last_seen(owned.get(c.id, []))), "live_cameras": cameras(c),
                  "flags": flag_kinds(c), "awaiting_agents_since": render.iso(awaiting_agents_since(c)),
                  "keys": [key_document(k, now) for k in owned.get(c.id, [])]} for c in clients]
    rows = [(str(c.id), c.name, c.email, status(c), f"{c.language or 'default'}\n{c.timezone or 'default'}",
             "\n".join(f"#{k.id} {k.prefix}… {key_state(k, now)}" for k in owned.get(c.id, [])),
             str(len(cameras(c))), render.local(c.created_at), render.local(last_seen(owned.get(c.id, []))),
             ", ".join(flag_kinds(c)))
            for c in clients]
    return render.listing(args.json, console, documents, plural(len(clients), "client"),
                          ("ID", "Name", "Email", "Status", "Alerts", "Keys", "Live", "Created", "Last seen",
                           "Flags (7 days)"), rows, optional=("Created", "Alerts", "Live", "Flags (7 days)"))


@client_commands.command("revoke", "cut a client off: all its keys stop working at once",
                         option("--client-id", type=int, required=True))
async def client_revoke(args, settings: Settings, console: Console) -> int:
    async with await open_store(settings) as store:
        count = await store.revoke_client(args.client_id)
    console.print(f"Client {args.client_id} revoked: {plural(count, 'key')} deactivated. "
                  "Its open streams are closed within a second.")
    return 0


@client_commands.command("reactivate", "restore a revoked client: the keys its revocation stopped work again",
                         option("--client-id", type=int, required=True),
                         option("--key-id", type=int, help="restore only this key"))
async def client_reactivate(args, settings: Settings, console: Console) -> int:
    async with await open_store(settings) as store:
        count = await store.reactivate_client(args.client_id, args.key_id)
    works = "works" if count == 1 else "work"
    console.print(f"Client {args.client_id} reactivated: {plural(count, 'key')} {works} again.")
    return 0


@client_commands.command("delete", "delete a client with its keys, usage and incidents",
                         option("--client-id", type=int, required=True),
                         option("--yes", action="store_true", help="confirm the deletion"))
async def client_delete(args, settings: Settings, console: Console) -> int:
    clips = open_clip_storage(settings.storage)  # a bad [storage] clips fails before anything is deleted
    async with await open_store(settings) as store:
        client = await store.get_client(args.client_id)
        if not args.yes:
            raise InvalidInputError(f"deleting client {client.id} ({client.name}) removes its keys, usage, "
                                    "incidents and clips for good: add --yes to confirm")
        clip_paths = [name for i in await store.list_incidents(client.id) for name in incident_files(i)]
        check_clips_found(clips.local_folder, clip_paths, settings)
        await store.delete_client(client.id)
    # Files go only after the rows are committed: a crash in between leaves orphan files on disk, never an
    # incident pointing to a missing clip.
    removed = await asyncio.to_thread(clips.remove_client, client.id, clip_paths)
    console.print(f"Client {client.id} ({client.name}) deleted with its keys, usage and incidents; "
                  f"{plural(removed, 'clip file')} removed.")
    return 0


@client_commands.command("link", "print a one-time sign-in link to the client's own page, to send it",
                         option("--client-id", type=int, required=True),
                         option("--json", action="store_true"))
async def client_link(args, settings: Settings, console: Console) -> int:
    from vigint.web.access import new_sign_in_link, page_url

    async with await open_store(settings) as store:
        client = await store.get_client(args.client_id)
        if client.status is not ClientStatus.ACTIVE:
            raise InvalidInputError(f"client {client.id} is revoked: reactivate it first "
                                    f"(vigint client reactivate --client-id {client.id})")
        link = await new_sign_in_link(store, settings.web, page_url(settings), client.id)
    minutes = f"{settings.web.sign_in_minutes:g}"
    if args.json:
        render.print_json({"client_id": client.id, "url": link,
                           "valid_minutes": settings.web.sign_in_minutes})
    else:
        console.print(f"Sign-in link for client {client.id} ({client.name}), valid {minutes} minutes, "
                      f"once:\n{link}", highlight=False, soft_wrap=True)
    return 0


@commands.command("audit", "show admin actions, newest first", option("--client-id", type=int),
                  option("--since", type=parse_day, metavar="YYYY-MM-DD",
                         help="from this day on (the operator's zone)"),
                  listing=True)
async def audit(args, settings: Settings, console: Console) -> int:
    since = None
    if args.since is not None:  # midnight in the operator's zone
        since = datetime.combine(args.since, datetime.min.time()).astimezone().timestamp()
    async with await open_store(settings) as store:
        entries = await store.list_audit(args.client_id, since)
    documents = [{"id": e.id, "at": render.iso(e.at), "action": e.action, "client_id": e.client_id,
                  "key_id": e.key_id, "detail": e.detail} for e in entries]
    rows = [(render.local(e.at), e.action, str(e.client_id or "—"), str(e.key_id or "—"), e.detail)
            for e in entries]
    title = f"{plural(len(entries), 'admin action')}, newest first"
    columns = ("When", "Action", "Client", "Key", "Detail")
    return render.listing(args.json, console, documents, title, columns, rows)
