"""The `vigint` command line: argument parsing, and rendering of results as rich tables or JSON.

Each subcommand is one small async handler that calls the store and prints. A VigintError becomes one
line on stderr and exit code 1 (a traceback only with --debug); argparse answers bad usage with code 2.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vigint import __version__, keys, protocol
from vigint.billing import invoices as billing
from vigint.billing.issuing import closed_month, issue_invoice
from vigint.config import Settings, load_settings
from vigint.errors import InvalidInputError, VigintError
from vigint.store import ApiKey, Client, Store

# The server, the agent, the demo and TLS certificates import PyAV, numpy, websockets or cryptography:
# their handlers import them when run, so `vigint --help` and the admin commands start fast (the
# one-file executable unpacks itself at every start, and every second counts there).

log = logging.getLogger("vigint")

# Deliberately loose: the mail server is the judge of deliverability; this catches typos and pastes.
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MAX_NAME_LENGTH = 200
SECONDS_PER_DAY = 86400
# Command-line flags that override a setting, by argparse destination.
FLAG_SETTINGS = {"db": ("database", "path"), "host": ("server", "host"), "port": ("server", "port"),
                 "tls_cert": ("server", "tls_cert"), "tls_key": ("server", "tls_key")}


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


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _local(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _key_document(key: ApiKey, now: float) -> dict:
    return {"id": key.id, "client_id": key.client_id, "prefix": key.prefix, "label": key.label,
            "state": key.state(now).value, "created_at": _iso(key.created_at), "expires_at": _iso(key.expires_at),
            "revoked_at": _iso(key.revoked_at), "last_used_at": _iso(key.last_used_at)}


def _print_json(document) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _print_new_key(console: Console, heading: str, api_key: str) -> None:
    console.print(heading)
    console.print("The API key is shown only this once; give it to the customer for their .env file:")
    # Plain print: rich would wrap or highlight a long token, and this line is meant to be copied whole.
    print(f"\nVIGINT_API_KEY={api_key}\n")


def _listing(args, console: Console, documents: list[dict], title: str, columns: tuple[str, ...],
             rows: list[tuple[str, ...]], right: frozenset[str] = frozenset()) -> int:
    """Print `documents` as one JSON document with --json, else `rows` as a table; return exit code 0."""
    if args.json:
        _print_json(documents)
        return 0
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


def _open_store(settings: Settings):
    return Store.open(settings.database.path)


async def client_create(args, settings: Settings, console: Console) -> int:
    name, email = validate_name(args.name), validate_email(args.email)
    api_key = keys.generate()
    async with await _open_store(settings) as store:
        client, key = await store.create_client(name, email, keys.hash_key(api_key), keys.display_prefix(api_key))
    if args.json:
        _print_json({"client_id": client.id, "key_id": key.id, "api_key": api_key})
    else:
        _print_new_key(console, f"Created client {client.id} ({client.name}, {client.email}) with key {key.id} "
                                f"({key.prefix}…).", api_key)
    return 0


async def _live_streams(store: Store, settings: Settings, now: float) -> list[dict] | None:
    """The running server's streams from its latest snapshot; None if no server has written one lately."""
    status = await store.server_status()
    fresh = status is not None and not status[1].get("stopped") \
        and now - status[0] < 3 * settings.server.usage_flush_seconds
    return status[1]["streams"] if fresh else None


async def client_list(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await _open_store(settings) as store:
        clients, all_keys = await store.list_clients(), await store.list_keys()
        streams = await _live_streams(store, settings, now) or []
        flags = await store.flags(since=now - 7 * SECONDS_PER_DAY)
    keys_by_client: dict[int, list[ApiKey]] = {}
    for key in all_keys:
        keys_by_client.setdefault(key.client_id, []).append(key)

    def last_seen(client: Client) -> float | None:
        return max((k.last_used_at for k in keys_by_client.get(client.id, []) if k.last_used_at), default=None)

    def cameras(client: Client) -> list[str]:
        return sorted(stream["camera"] for stream in streams if stream["client_id"] == client.id)

    def flag_kinds(client: Client) -> list[str]:
        return sorted({flag.kind for flag in flags if flag.client_id == client.id})

    documents = [{"id": c.id, "name": c.name, "email": c.email, "status": c.status.value,
                  "created_at": _iso(c.created_at), "updated_at": _iso(c.updated_at), "last_seen_at": _iso(last_seen(c)),
                  "live_cameras": cameras(c), "flags": flag_kinds(c),
                  "keys": [_key_document(k, now) for k in keys_by_client.get(c.id, [])]} for c in clients]
    rows = [(str(c.id), c.name, c.email, c.status.value,
             "\n".join(f"#{k.id} {k.prefix}… {k.state(now).value}" for k in keys_by_client.get(c.id, [])),
             str(len(cameras(c))), _local(c.created_at), _local(last_seen(c)), ", ".join(flag_kinds(c)))
            for c in clients]
    return _listing(args, console, documents, f"{len(clients)} client(s)",
                    ("ID", "Name", "Email", "Status", "Keys", "Live", "Created", "Last seen", "Flags (7 days)"), rows)


async def client_revoke(args, settings: Settings, console: Console) -> int:
    async with await _open_store(settings) as store:
        count = await store.revoke_client(args.client_id)
    console.print(f"Client {args.client_id} revoked: {count} key(s) deactivated. "
                  "Its open streams are closed within a second.")
    return 0


async def client_reactivate(args, settings: Settings, console: Console) -> int:
    async with await _open_store(settings) as store:
        count = await store.reactivate_client(args.client_id, args.key_id)
    console.print(f"Client {args.client_id} reactivated: {count} key(s) work again.")
    return 0


async def client_delete(args, settings: Settings, console: Console) -> int:
    async with await _open_store(settings) as store:
        client = await store.get_client(args.client_id)
        if not args.yes:
            raise InvalidInputError(f"deleting client {client.id} ({client.name}) removes its keys, usage, "
                                    "incidents and clips for good: add --yes to confirm")
        clip_paths = [i.clip_path for i in await store.list_incidents(client.id) if i.clip_path]
        await store.delete_client(client.id)
    # Files go only after the rows are committed: a crash in between leaves orphan files on disk, never an
    # incident pointing to a missing clip.
    removed = _remove_clips(settings.storage.data_dir, client.id, clip_paths)
    console.print(f"Client {client.id} ({client.name}) deleted with its keys, usage and incidents; "
                  f"{removed} clip file(s) removed.")
    return 0


def _remove_clips(data_dir: Path, client_id: int, clip_paths: list[str]) -> int:
    """Delete a deleted client's clip files and its then-empty clips folder; return how many files went."""
    folder = data_dir / "clips" / str(client_id)
    removed = 0
    for relative in clip_paths:
        path = data_dir / relative
        # Only inside the client's own folder, whatever a row says: a delete never reaches another file.
        if path.parent.resolve() != folder.resolve():
            log.warning("client %d: clip %s is outside %s, left in place", client_id, relative, folder)
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:  # already gone (retention, or a clip that was never written)
            pass
        except OSError as error:  # the rows are gone already: report the file and carry on with the others
            log.warning("client %d: cannot remove clip %s: %s", client_id, path, error.strerror)
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass
    except OSError as error:  # not empty: files the database does not know, kept for the operator to judge
        log.warning("client %d: %s kept: %s", client_id, folder, error.strerror)
    return removed


async def key_create(args, settings: Settings, console: Console) -> int:
    if args.expires_in is not None and args.expires_in <= 0:
        raise InvalidInputError("--expires-in must be a positive number of days")
    api_key = keys.generate()
    expires_at = None if args.expires_in is None else time.time() + args.expires_in * SECONDS_PER_DAY
    async with await _open_store(settings) as store:
        key = await store.create_key(args.client_id, keys.hash_key(api_key), keys.display_prefix(api_key),
                                     args.name.strip(), expires_at)
    if args.json:
        _print_json({"client_id": key.client_id, "key_id": key.id, "api_key": api_key})
    else:
        expiry = f", expires {_local(key.expires_at)}" if key.expires_at else ""
        _print_new_key(console, f"Created key {key.id} ({key.prefix}…) for client {key.client_id}{expiry}.", api_key)
    return 0


async def key_list(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await _open_store(settings) as store:
        found = await store.list_keys(args.client_id)
    rows = [(str(k.id), str(k.client_id), f"{k.prefix}…", k.label, k.state(now).value, _local(k.created_at),
             _local(k.expires_at), _local(k.last_used_at)) for k in found]
    return _listing(args, console, [_key_document(k, now) for k in found], f"{len(found)} key(s)",
                    ("ID", "Client", "Prefix", "Label", "State", "Created", "Expires", "Last used"), rows)


async def key_revoke(args, settings: Settings, console: Console) -> int:
    async with await _open_store(settings) as store:
        key = await store.revoke_key(args.key_id)
    console.print(f"Key {key.id} ({key.prefix}…) of client {key.client_id} revoked. "
                  "Streams using it are closed within a second.")
    return 0


async def audit(args, settings: Settings, console: Console) -> int:
    async with await _open_store(settings) as store:
        entries = await store.list_audit(args.client_id)
    documents = [{"id": e.id, "at": _iso(e.at), "action": e.action, "client_id": e.client_id, "key_id": e.key_id,
                  "detail": e.detail} for e in entries]
    rows = [(_local(e.at), e.action, str(e.client_id or "—"), str(e.key_id or "—"), e.detail) for e in entries]
    return _listing(args, console, documents, f"{len(entries)} admin action(s), newest first",
                    ("When", "Action", "Client", "Key", "Detail"), rows)


async def serve(args, settings: Settings, console: Console) -> int:
    from vigint.ingest.server import Server

    logging.getLogger("vigint.websockets").setLevel(logging.WARNING)  # one line per connection is ours
    async with await _open_store(settings) as store:
        server = Server(settings, store)
        await server.start()
        scheme = "wss" if server.tls else "ws"
        console.print(f"Vigint {__version__} serving\n"
                      f"  listening  {scheme}://{settings.server.host}:{server.port}{protocol.PATH} "
                      f"(TLS {'on' if server.tls else 'off'}; /healthz and /metrics on the same port)\n"
                      f"  database   {settings.database.path.resolve()} ({await store.count_clients()} clients)\n"
                      f"  settings   {settings.source or 'embedded defaults'}\n"
                      f"  files      open-file limit {server.open_file_limit} (one per stream or waiting socket)",
                      highlight=False)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stopping.is_set():
                print("vigint: second signal: exiting now", file=sys.stderr)
                os._exit(130)
            stopping.set()

        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, on_signal)
        await stopping.wait()
        console.print("Shutting down: closing streams and writing usage…", highlight=False)
        await server.stop()
    console.print("Stopped.", highlight=False)
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-31") from None


def _utc_midnight(day: date | None) -> float | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


async def usage(args, settings: Settings, console: Console) -> int:
    until = None if args.until is None else args.until + timedelta(days=1)  # --until is inclusive
    async with await _open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        rows = await store.usage_report(args.client_id, _utc_midnight(args.since), _utc_midnight(until))
    documents = [{"client_id": r.client_id, "client_name": r.client_name, "key_id": r.key_id,
                  "key_prefix": r.key_prefix, "stream_seconds": round(r.stream_seconds, 3),
                  "bytes_received": r.bytes_received, "frames_decoded": r.frames_decoded, "ai_calls": r.ai_calls,
                  "ai_tokens": r.ai_tokens, "alerts_sent": r.alerts_sent, "incidents": r.incidents} for r in rows]
    table_rows = [(str(r.client_id), r.client_name, f"#{r.key_id} {r.key_prefix}…", f"{r.stream_seconds / 3600:.2f}",
                   f"{r.bytes_received / 1e9:,.3f}", f"{r.frames_decoded:,}", str(r.incidents), str(r.ai_calls),
                   f"{r.ai_tokens:,}", str(r.alerts_sent)) for r in rows]
    period = f"{args.since or 'the start'} to {args.until or 'now'} (UTC days)"
    numbers = ("Stream hours", "GB received", "Frames decoded", "Incidents", "AI calls", "AI tokens", "Alerts sent")
    return _listing(args, console, documents, f"Usage from {period}", ("Client", "Name", "Key", *numbers),
                    table_rows, right=frozenset(numbers))


async def incidents_list(args, settings: Settings, console: Console) -> int:
    async with await _open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        found = await store.list_incidents(args.client_id, _utc_midnight(args.since))
    documents = [{"id": i.id, "client_id": i.client_id, "camera": i.camera, "started_at": _iso(i.started_at),
                  "ended_at": _iso(i.ended_at), "type": i.type, "description": i.description, "threat": i.threat,
                  "verdict": i.verdict, "clip": i.clip_path, "alert_state": i.alert_state} for i in found]
    rows = [(str(i.id), str(i.client_id), i.camera, _local(i.started_at), _local(i.ended_at),
             i.type + (f": {i.description}" if i.description else ""), str(i.threat), i.verdict,
             "yes" if i.clip_path else "—", i.alert_state) for i in found]
    return _listing(args, console, documents, f"{len(found)} incident(s), newest first",
                    ("ID", "Client", "Camera", "Started", "Ended", "Type", "Threat", "AI", "Clip", "Alert"), rows)


async def invoice(args, settings: Settings, console: Console) -> int:
    month = closed_month(args.period, time.time())  # a bad period is refused before the database is opened
    async with await _open_store(settings) as store:
        issued = await issue_invoice(store, settings.billing, args.client_id, month)
    text = billing.to_html(issued) if args.format == "html" else billing.to_csv(issued)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        console.print(f"Invoice {issued.number} for client {issued.client_id}, {issued.period}: "
                      f"{issued.total} {issued.currency} written to {args.out}", highlight=False)
    return 0


async def alerts_list(args, settings: Settings, console: Console) -> int:
    async with await _open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        flags = await store.flags(args.client_id)
    documents = [{"id": f.id, "at": _iso(f.at), "kind": f.kind, "client_id": f.client_id, "key_id": f.key_id,
                  "detail": f.detail, "emailed_at": _iso(f.notified_at)} for f in flags]
    rows = [(str(f.id), _local(f.at), f.kind, str(f.client_id or "—"), f.detail, _local(f.notified_at)) for f in flags]
    return _listing(args, console, documents, f"{len(flags)} unusual-usage flag(s), newest first",
                    ("ID", "When", "Kind", "Client", "Detail", "Emailed"), rows)


async def status(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await _open_store(settings) as store:
        snapshot = await store.server_status()
        streams = await _live_streams(store, settings, now)
        cameras = await store.cameras()
        flags = await store.flags(since=now - SECONDS_PER_DAY)
    down = [c for c in cameras if c.down_since is not None]
    document = {"server_running": streams is not None, "last_snapshot_at": _iso(snapshot[0]) if snapshot else None,
                "frames_per_second": snapshot[1].get("frames_per_second") if streams is not None else 0,
                "decode_lag_p99_seconds": snapshot[1].get("decode_lag_p99_seconds") if streams is not None else None,
                "streams": streams or [],
                "clients_streaming": sorted({s["client_id"] for s in streams or []}),
                "cameras_down": [{"client_id": c.client_id, "camera": c.camera, "since": _iso(c.down_since)}
                                 for c in down],
                "flags_last_day": len(flags)}
    if args.json:
        _print_json(document)
        return 0
    state = (f"running: {len(streams)} stream(s) from {len(document['clients_streaming'])} client(s), "
             f"{document['frames_per_second']} frames/s decoded, decode lag p99 ≤ {document['decode_lag_p99_seconds']} s"
             if streams is not None else
             f"not running (last snapshot {_local(snapshot[0]) if snapshot else 'never'})")
    console.print(f"Server {state}; {len(down)} camera(s) down; {len(flags)} flag(s) in the last day.",
                  highlight=False)
    table = Table(title="Streams")
    for column in ("Client", "Camera", "Key", "Address", "Since"):
        table.add_column(column)
    for stream in streams or []:
        table.add_row(str(stream["client_id"]), stream["camera"], f"{stream['key_prefix']}…", stream["address"],
                      _local(stream["connected_at"]))
    console.print(table)
    if down:
        table = Table(title="Cameras down")
        for column in ("Client", "Camera", "Down since"):
            table.add_column(column)
        for camera in down:
            table.add_row(str(camera.client_id), camera.camera, _local(camera.down_since))
        console.print(table)
    return 0


async def demo(args, settings: Settings | None, console: Console) -> int:
    from vigint.admin.demo import run_demo

    return await run_demo(console)


async def make_cert(args, settings: Settings, console: Console) -> int:
    from vigint.admin import cert

    cert_path, key_path = cert.write_self_signed(args.cert_host, args.out_dir, overwrite=args.force)
    console.print(f"Wrote {cert_path} and {key_path} (private, owner-only) for {args.cert_host}.\n"
                  f"Serve with: vigint serve --tls-cert {cert_path} --tls-key {key_path}\n"
                  f"Agents trust it with: vigint agent --ca-cert {cert_path} …", highlight=False)
    return 0


async def agent(args, settings: Settings | None, console: Console) -> int:
    from vigint.agent.settings import load_agent_settings
    from vigint.agent.supervisor import run_agent

    agent_settings = load_agent_settings(vars(args))
    await run_agent(agent_settings, console)
    return 0


class _SourceAction(argparse.Action):
    """--source appends a source, and an unnamed slot in --camera's list beside it."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.sources = [*(namespace.sources or []), value]
        namespace.cameras = [*(namespace.cameras or []), None]


class _CameraAction(argparse.Action):
    """--camera names the --source just before it."""

    def __call__(self, parser, namespace, value, option_string=None):
        if not namespace.sources or namespace.cameras[-1] is not None:
            parser.error(f"--camera {value}: each --camera follows the --source it names")
        namespace.cameras[-1] = value


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after the subcommand's name."""
    parent = argparse.ArgumentParser(add_help=False)
    default = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    parent.add_argument("--db", type=Path, default=default(None),
                        help="SQLite database file (default: [database] path, ./vigint.db)")
    parent.add_argument("--config", type=Path, default=default(None),
                        help="settings file (default: $VIGINT_CONFIG, else ./config.ini when present)")
    parent.add_argument("--debug", action="store_true", default=default(False),
                        help="log debug detail and show tracebacks")
    return parent


class _Commands:
    """Adds subcommands: each takes the common options, and listings take --json."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.top = parser.add_subparsers(title="commands", metavar="COMMAND")
        self._common = _common_options(defaults=False)

    def command(self, group, name: str, handler, help_text: str, *, listing: bool = False):
        sub = group.add_parser(name, parents=[self._common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        if listing:
            sub.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
        return sub

    def group(self, name: str, help_text: str):
        sub = self.top.add_parser(name, help=help_text, description=help_text)
        return sub.add_subparsers(title="actions", metavar="ACTION", required=True)


def _add_admin_commands(cli: _Commands) -> None:
    clients = cli.group("client", "create, list, revoke, reactivate or delete customers")
    sub = cli.command(clients, "create", client_create, "create a client and print its first API key once",
                  listing=True)
    sub.add_argument("--name", required=True, help="the customer's name")
    sub.add_argument("--email", required=True, help="where incident alerts are sent")
    cli.command(clients, "list", client_list, "list clients with their keys and last activity", listing=True)
    sub = cli.command(clients, "revoke", client_revoke, "cut a client off: all its keys stop working at once")
    sub.add_argument("--client-id", type=int, required=True)
    sub = cli.command(clients, "reactivate", client_reactivate,
                  "restore a revoked client: the keys its revocation stopped work again")
    sub.add_argument("--client-id", type=int, required=True)
    sub.add_argument("--key-id", type=int, help="restore only this key")
    sub = cli.command(clients, "delete", client_delete, "delete a client with its keys, usage and incidents")
    sub.add_argument("--client-id", type=int, required=True)
    sub.add_argument("--yes", action="store_true", help="confirm the deletion")

    api_keys = cli.group("key", "create, list or revoke API keys (rotation)")
    sub = cli.command(api_keys, "create", key_create, "add an API key to a client and print it once", listing=True)
    sub.add_argument("--client-id", type=int, required=True)
    sub.add_argument("--name", default="", help="a label, such as the site the key is for")
    sub.add_argument("--expires-in", type=float, metavar="DAYS", help="the key stops working after DAYS days")
    sub = cli.command(api_keys, "list", key_list, "list API keys (prefixes only) and their state", listing=True)
    sub.add_argument("--client-id", type=int)
    sub = cli.command(api_keys, "revoke", key_revoke, "revoke one API key; the client's other keys keep working")
    sub.add_argument("--key-id", type=int, required=True)

    sub = cli.command(cli.top, "audit", audit, "show admin actions, newest first", listing=True)
    sub.add_argument("--client-id", type=int)


def _add_server_commands(cli: _Commands) -> None:
    sub = cli.command(cli.top, "serve", serve, "run the server: authenticated camera streams, decoding, analysis")
    sub.add_argument("--host", help="address to listen on (default: [server] host, 127.0.0.1)")
    sub.add_argument("--port", type=int, help="TCP port (default: [server] port, 5002; 0 picks a free one)")
    sub.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve wss://")
    sub.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")

    sub = cli.top.add_parser("demo", help="see Vigint work: server, camera, incident and alert, on this machine",
                             description="Run a server, a demo customer and an agent streaming a test pattern, "
                             "in a temporary folder; show the incidents and alert emails as they come. Ctrl-C stops.")
    sub.set_defaults(handler=demo, server_side=False)

    sub = cli.command(cli.top, "cert", make_cert, "write a self-signed TLS certificate and key for a first deployment")
    sub.add_argument("--host", dest="cert_host", required=True, help="the name or IP address agents connect to")
    sub.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the two files (default: .)")
    sub.add_argument("--force", action="store_true", help="replace existing files")


def _add_business_commands(cli: _Commands) -> None:
    sub = cli.command(cli.top, "usage", usage, "usage per client and key: stream time, bytes, frames", listing=True)
    sub.add_argument("--client-id", type=int)
    sub.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="first day counted (UTC)")
    sub.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="last day counted, inclusive (UTC)")

    sub = cli.command(cli.top, "alerts", alerts_list, "unusual-usage flags: leaked keys, spikes, refused hellos",
                  listing=True)
    sub.add_argument("--client-id", type=int)
    cli.command(cli.top, "status", status, "the fleet: who streams, cameras down, decode load", listing=True)

    sub = cli.command(cli.top, "invoice", invoice, "issue (or print again) a client's invoice for a month")
    sub.add_argument("--client-id", type=int, required=True)
    sub.add_argument("--period", required=True, metavar="YYYY-MM", help="the month invoiced (UTC)")
    sub.add_argument("--format", choices=("html", "csv"), default="html", help="printable HTML (default) or CSV")
    sub.add_argument("--out", type=Path, help="write to this file instead of standard output")

    incidents = cli.group("incidents", "what the cameras saw, and whether the customer was told")
    sub = cli.command(incidents, "list", incidents_list, "list incidents, newest first, with their alert delivery",
                  listing=True)
    sub.add_argument("--client-id", type=int)
    sub.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="first day shown (UTC)")


def _add_agent_command(cli: _Commands) -> None:
    sub = cli.top.add_parser("agent", help="stream cameras to the Vigint server (the customer's side)",
                             description="Stream cameras to the Vigint server. Reads VIGINT_API_KEY and "
                             "VIGINT_SERVER_URL from ./.env, the environment, or the flags below (flags win).")
    sub.set_defaults(handler=agent, server_side=False)
    sub.add_argument("--source", dest="sources", action=_SourceAction, metavar="SRC",
                     help="rtsp://… URL, video file, /dev/videoN, or 'test' for a built-in pattern; repeatable")
    sub.add_argument("--camera", dest="cameras", action=_CameraAction, metavar="NAME",
                     help="name of the --source before it (default: from the source)")
    sub.add_argument("--api-key", help="API key (default: VIGINT_API_KEY)")
    sub.add_argument("--api-url", help="server URL, e.g. wss://vigint.example.com:5002 (default: VIGINT_SERVER_URL)")
    sub.add_argument("--env-file", type=Path, help="read settings from this file instead of ./.env")
    sub.add_argument("--ca-cert", type=Path, help="trust this certificate (a self-signed server)")
    sub.add_argument("--loop", action="store_true", default=None, help="play video files again and again")
    sub.add_argument("--bitrate", type=int, help="bits per second when re-encoding a non-H.264 source (2000000)")
    sub.add_argument("--max-width", type=int, help="re-encoded video is at most this wide (1280)")
    sub.add_argument("--stall-seconds", type=float, help="reopen a source silent this long (10)")
    sub.add_argument("--max-backlog-seconds", type=float,
                     help="on a slow link, drop whole GOPs beyond this much unsent video (4)")
    sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log debug detail")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every `vigint` subcommand."""
    parser = argparse.ArgumentParser(prog="vigint", parents=[_common_options(defaults=True)],
                                     description="Vigint video security: server, agent and operator tools.")
    parser.add_argument("--version", action="version", version=f"vigint {__version__}")
    cli = _Commands(parser)
    _add_admin_commands(cli)
    _add_server_commands(cli)
    _add_business_commands(cli)
    _add_agent_command(cli)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `vigint` command line; return the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or bad usage (code 2) after argparse printed it
        return done.code
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = None
        if getattr(args, "server_side", True):  # the agent runs at the customer's: no server settings there
            overrides = {target: getattr(args, flag, None) for flag, target in FLAG_SETTINGS.items()}
            settings = load_settings(args.config, overrides=overrides)
        # Piped output is read by people in logs and mail too: wide enough that tables don't wrap keys.
        console = Console() if sys.stdout.isatty() else Console(width=160)
        return asyncio.run(args.handler(args, settings, console))
    except VigintError as error:
        if args.debug:
            log.exception("failed")
        print(f"vigint: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
