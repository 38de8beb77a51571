"""The operator's view of the business: usage, unusual-usage alerts, the fleet's status, invoices, incidents.

Read-only reports from the store, except `invoice`, which issues a month's invoice the first time it is
asked for (billing.issuing decides what is billed; this module only prints it).
"""

import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from vigint.admin import render
from vigint.admin.commands import (
    Commands,
    keys_by_client,
    last_seen,
    live_streams,
    open_store,
    option,
    parse_day,
    running,
)
from vigint.billing import invoices
from vigint.billing.issuing import closed_month, issue_invoice, void_invoice
from vigint.config import Settings
from vigint.errors import InvalidInputError
from vigint.media import SECONDS_PER_DAY
from vigint.store import Incident, KeyState, Verdict
from vigint.words import plural

UNUSED_DAYS = 30  # a key unused this long is probably forgotten: a leak nobody would notice
commands = Commands()


def _utc_midnight(day: date | None) -> float | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


@commands.command("usage", "usage per client and key: stream time, bytes, frames",
                  option("--client-id", type=int),
                  option("--since", type=parse_day, metavar="YYYY-MM-DD", help="first day counted (UTC)"),
                  option("--until", type=parse_day, metavar="YYYY-MM-DD", help="last day counted, inclusive (UTC)"),
                  listing=True)
async def usage(args, settings: Settings, console: Console) -> int:
    if args.since and args.until and args.since > args.until:
        raise InvalidInputError(f"--since {args.since} is after --until {args.until}: the period is empty; swap them")
    until = None if args.until is None else args.until + timedelta(days=1)  # --until is inclusive
    async with await open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        rows = await store.usage_report(args.client_id, _utc_midnight(args.since), _utc_midnight(until))
    documents = [{"client_id": r.client_id, "client_name": r.client_name, "key_id": r.key_id,
                  "key_prefix": r.key_prefix, "stream_seconds": round(r.stream_seconds, 3),
                  "bytes_received": r.bytes_received, "frames_decoded": r.frames_decoded, "ai_calls": r.ai_calls,
                  "ai_tokens": r.ai_tokens, "alerts_sent": r.alerts_sent, "incidents": r.incidents,
                  "backfill_bytes": r.backfill_bytes, "backfill_seconds": round(r.backfill_seconds, 3)} for r in rows]
    table_rows = [(str(r.client_id), r.client_name, f"#{r.key_id} {r.key_prefix}…", f"{r.stream_seconds / 3600:.2f}",
                   f"{r.bytes_received / 1e9:,.3f}", f"{r.backfill_seconds / 3600:.2f}", f"{r.backfill_bytes / 1e9:,.3f}",
                   f"{r.frames_decoded:,}", str(r.incidents), str(r.ai_calls), f"{r.ai_tokens:,}", str(r.alerts_sent))
                  for r in rows]
    period = f"{args.since or 'the start'} to {args.until or 'now'} (UTC days)"
    # Recorded footage sent after an outage (backfill) apart from live streams; invoices charge live usage only.
    numbers = ("Stream hours", "GB received", "Backfill hours", "Backfill GB", "Frames decoded", "Incidents",
               "AI calls", "AI tokens", "Alerts sent")
    return render.listing(args.json, console, documents, f"Usage from {period}", ("Client", "Name", "Key", *numbers),
                          table_rows, right=frozenset(numbers),
                          optional=("Backfill GB", "Backfill hours", "AI tokens", "Frames decoded", "AI calls", "Key"))


@commands.command("alerts", "unusual-usage flags (leaked keys, spikes, refused hellos) and alerts given up",
                  option("--client-id", type=int), listing=True)
async def alerts_list(args, settings: Settings, console: Console) -> int:
    async with await open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        flags = await store.flags(args.client_id)
    documents = [{"id": f.id, "at": render.iso(f.at), "kind": f.kind, "client_id": f.client_id, "key_id": f.key_id,
                  "detail": f.detail, "emailed_at": render.iso(f.notified_at)} for f in flags]
    # A detail may quote a mail server's reply: shown as written, never read as rich markup.
    rows = [(str(f.id), render.local(f.at), f.kind, str(f.client_id or "—"), escape(f.detail),
             render.local(f.notified_at)) for f in flags]
    return render.listing(args.json, console, documents, f"{plural(len(flags), 'flag')}, newest first",
                          ("ID", "When", "Kind", "Client", "Detail", "Emailed"), rows)


@commands.command("status", "the fleet: who streams, cameras down, decode load", listing=True)
async def status(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await open_store(settings) as store:
        nodes = await store.nodes()
        streams = await live_streams(store, settings, now)
        cameras = await store.cameras()
        flags = await store.flags(since=now - SECONDS_PER_DAY)
    down = [c for c in cameras if c.down_since is not None]
    up = running(nodes, settings, now)
    document = {"server_running": bool(up),
                "last_snapshot_at": render.iso(max(node.seen_at for node in nodes)) if nodes else None,
                "frames_per_second": round(sum(node.document["frames_per_second"] for node in up), 1),
                "decode_lag_p99_seconds": max((node.document["decode_lag_p99_seconds"] for node in up), default=None),
                "nodes": [{"id": node.id, "running": node in up, "started_at": render.iso(node.started_at),
                           "seen_at": render.iso(node.seen_at), "streams": len(node.document["streams"]),
                           "frames_per_second": node.document["frames_per_second"],
                           "decode_lag_p99_seconds": node.document["decode_lag_p99_seconds"]} for node in nodes],
                "streams": [{**s, "connected_at": render.iso(s["connected_at"])} for s in streams or []],
                "clients_streaming": sorted({s["client_id"] for s in streams or []}),
                "cameras_down": [{"client_id": c.client_id, "camera": c.camera, "since": render.iso(c.down_since)}
                                 for c in down],
                "flags_last_day": len(flags)}
    if args.json:
        render.print_json(document)
        return 0
    backfills = sum(s.get("mode") == "backfill" for s in streams or [])
    counted = plural(len(streams or []) - backfills, "stream") + (f" and {plural(backfills, 'backfill')}"
                                                                  if backfills else "")
    clients = plural(len(document["clients_streaming"]), "client")
    state = (f"running on {plural(len(up), 'node')}: {counted} from {clients}, "
             f"{document['frames_per_second']} frames/s decoded, decode lag p99 ≤ "
             f"{document['decode_lag_p99_seconds']} s" if up else
             f"not running (last snapshot {render.local(max(n.seen_at for n in nodes)) if nodes else 'never'})")
    console.print(f"Server {state}; {plural(len(down), 'camera')} down; {plural(len(flags), 'flag')} in the last day.",
                  highlight=False)
    if len(nodes) > 1 or any(node not in up for node in nodes):
        console.print(render.table("Nodes", ("Node", "State", "Streams", "Frames/s", "Lag p99 (s)", "Last seen"),
                                   [(n["id"], "running" if n["running"] else "stopped or silent", str(n["streams"]),
                                     str(n["frames_per_second"]), str(n["decode_lag_p99_seconds"]),
                                     render.local(node.seen_at)) for n, node in zip(document["nodes"], nodes)]))
    console.print(render.fitted(console, "Streams", ("Client", "Camera", "Key", "Address", "Since", "Mode", "Node"),
                                [(str(s["client_id"]), s["camera"], f"{s['key_prefix']}…", s["address"],
                                  render.local(s["connected_at"]), s.get("mode", "active"), s["node"])
                                 for s in streams or []], optional=("Key", "Address", "Node", "Mode")))
    if down:
        console.print(render.table("Cameras down", ("Client", "Camera", "Down since"),
                                   [(str(c.client_id), c.camera, render.local(c.down_since)) for c in down]))
    return 0


@commands.command("review", "the regular review: each client's keys, when it was last seen, keys unused for "
                  f"{UNUSED_DAYS} days (revoke what nobody uses)", listing=True)
async def review(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await open_store(settings) as store:
        clients, keys = await store.list_clients(), await store.list_keys()
    documents, rows, owned = [], [], keys_by_client(keys)
    for client in clients:
        own = owned.get(client.id, [])
        active = [key for key in own if key.state(now) is KeyState.ACTIVE]
        unused = [key for key in active if (key.last_used_at or key.created_at) < now - UNUSED_DAYS * SECONDS_PER_DAY]
        seen = last_seen(own)
        documents.append({"client_id": client.id, "name": client.name, "status": client.status.value,
                          "active_keys": len(active), "last_seen_at": render.iso(seen),
                          "unused_keys": [{"key_id": key.id, "prefix": key.prefix, "label": key.label,
                                           "last_used_at": render.iso(key.last_used_at)} for key in unused]})
        rows.append((str(client.id), client.name, client.status.value, str(len(active)), render.local(seen),
                     ", ".join(f"#{key.id} {key.prefix}… {key.label}".strip() for key in unused) or "—"))
    flagged = sum(bool(d["unused_keys"]) for d in documents)
    return render.listing(args.json, console, documents, f"{plural(len(clients), 'client')}; {flagged} with keys "
                          f"unused for {UNUSED_DAYS} days",
                          ("Client", "Name", "Status", "Active keys", "Last seen", f"Unused {UNUSED_DAYS} days"), rows)


@commands.command("invoice", "issue (or print again) a client's invoice for a month; void one with a credit note",
                  option("action", nargs="?", choices=("void",),
                         help="void: cancel an issued invoice with a credit note numbered next (--number, --reason)"),
                  option("--client-id", type=int), option("--period", metavar="YYYY-MM", help="the month invoiced (UTC)"),
                  option("--allow-empty", action="store_true", help="invoice a month with no usage (0.00) all the same"),
                  option("--number", type=int, help="an issued invoice: to print again, or to void"),
                  option("--reason", help="why the invoice is voided, printed on the credit note"),
                  option("--format", choices=("html", "csv"), default="html", help="printable HTML (default) or CSV"),
                  option("--out", type=Path, help="write to this file instead of standard output"))
async def invoice(args, settings: Settings, console: Console) -> int:
    if args.action == "void" and (args.number is None or args.reason is None):
        raise InvalidInputError("vigint invoice void needs --number N and --reason TEXT")
    if args.action is None and args.number is None and (args.client_id is None or args.period is None):
        raise InvalidInputError("name the invoice: --client-id N --period YYYY-MM (issued if it was not), or "
                                "--number N")
    # A bad period is refused before the database is opened.
    month = closed_month(args.period, time.time()) if args.action is None and args.number is None else None
    async with await open_store(settings) as store:
        if args.action == "void":
            issued = await void_invoice(store, args.number, args.reason)
        elif month is None:
            issued = await store.get_invoice(args.number)
        else:
            issued = await issue_invoice(store, settings.billing, args.client_id, month, args.allow_empty)
    text = invoices.to_html(issued) if args.format == "html" else invoices.to_csv(issued)
    kind = "Credit note" if issued.is_credit_note else "Invoice"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        console.print(f"{kind} {issued.number} for client {issued.client_id}, {issued.period}: "
                      f"{issued.total} {issued.currency} written to {args.out}", highlight=False)
    if args.action == "void":
        print(f"vigint: invoice {args.number} voided by credit note {issued.number}", file=sys.stderr)
    return 0


incident_commands = commands.group("incidents", "what the cameras saw, and whether the customer was told")


@incident_commands.command("list", "list incidents, newest first, with their alert delivery",
                           option("--client-id", type=int),
                           option("--since", type=parse_day, metavar="YYYY-MM-DD", help="first day shown (UTC)"),
                           listing=True)
async def incidents_list(args, settings: Settings, console: Console) -> int:
    async with await open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        found = await store.list_incidents(args.client_id, _utc_midnight(args.since))
    documents = [{"id": i.id, "client_id": i.client_id, "camera": i.camera, "started_at": render.iso(i.started_at),
                  "ended_at": render.iso(i.ended_at), "type": i.type, "description": i.description,
                  "threat": i.threat, "verdict": i.verdict, "clip": i.clip_path, "alert_state": i.alert_state,
                  "offline": i.offline} for i in found]
    rows = [(str(i.id), str(i.client_id), i.camera, render.local(i.started_at),
             render.local(i.ended_at) if i.ended_at else "going on",
             i.type + (" (recorded while offline)" if i.offline else "") + (f": {i.description}" if i.description
                                                                            else ""), *_ai_check(i),
             "yes" if i.clip_path else "—", i.alert_state) for i in found]
    return render.listing(args.json, console, documents, f"{plural(len(found), 'incident')}, newest first",
                          ("ID", "Client", "Camera", "Started", "Ended", "Type", "Threat", "AI", "Clip", "Alert"), rows,
                          optional=("Threat", "Clip", "Client", "Ended"))


def _ai_check(incident: Incident) -> tuple[str, str]:
    """The Threat and AI cells: a threat level is the AI's, so none is shown where no AI looked."""
    if incident.verdict == Verdict.NOT_CHECKED:
        return "—", "not checked"
    return str(incident.threat), incident.verdict
