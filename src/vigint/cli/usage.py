"""What clients use and what looks unusual: usage per client and key (what invoices charge), and the flags
raised on unusual usage (leaked keys, spikes, refused hellos) with the alerts given up. Read-only reports."""

from datetime import timedelta

from rich.console import Console
from rich.markup import escape

from vigint.cli import render
from vigint.cli.commands import Commands, open_store, option, parse_day, utc_midnight
from vigint.config import Settings
from vigint.errors import InvalidInputError
from vigint.store import UsageRow
from vigint.words import plural

commands = Commands()


@commands.command("usage", "usage per client and key: stream time, bytes, frames",
                  option("--client-id", type=int),
                  option("--since", type=parse_day, metavar="YYYY-MM-DD", help="first day counted (UTC)"),
                  option("--until", type=parse_day, metavar="YYYY-MM-DD",
                         help="last day counted, inclusive (UTC)"),
                  listing=True)
async def usage(args, settings: Settings, console: Console) -> int:
    if args.since and args.until and args.since > args.until:
        raise InvalidInputError(f"--since {args.since} is after --until {args.until}: the period is empty; "
                                "swap them")
    until = None if args.until is None else args.until + timedelta(days=1)  # --until is inclusive
    async with await open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        rows = await store.usage_report(args.client_id, utc_midnight(args.since), utc_midnight(until))
    documents = [_usage_document(r) for r in rows]
    table_rows = [_usage_row(r) for r in rows]
    period = f"{args.since or 'the start'} to {args.until or 'now'} (UTC days)"
    # Recorded footage sent after an outage (backfill) apart from live streams: invoices charge live usage
    # only.
    numbers = ("Stream hours", "GB received", "Backfill hours", "Backfill GB", "Frames decoded", "Incidents",
               "AI calls", "AI tokens", "Alerts sent", "Live view minutes")
    optional = ("Backfill GB", "Backfill hours", "AI tokens", "Frames decoded", "AI calls", "Key",
                "Live view minutes")
    return render.listing(args.json, console, documents, f"Usage from {period}",
                          ("Client", "Name", "Key", *numbers), table_rows,
                          right=frozenset(numbers), optional=optional)


def _usage_document(r: UsageRow) -> dict:
    return {"client_id": r.client_id, "client_name": r.client_name, "key_id": r.key_id,
            "key_prefix": r.key_prefix, "stream_seconds": round(r.stream_seconds, 3),
            "bytes_received": r.bytes_received, "frames_decoded": r.frames_decoded, "ai_calls": r.ai_calls,
            "ai_tokens": r.ai_tokens, "alerts_sent": r.alerts_sent, "incidents": r.incidents,
            "backfill_bytes": r.backfill_bytes, "backfill_seconds": round(r.backfill_seconds, 3),
            "live_view_seconds": round(r.live_view_seconds, 3)}


def _usage_row(r: UsageRow) -> tuple[str, ...]:
    return (str(r.client_id), r.client_name, f"#{r.key_id} {r.key_prefix}…",
            f"{r.stream_seconds / 3600:.2f}", f"{r.bytes_received / 1e9:,.3f}",
            f"{r.backfill_seconds / 3600:.2f}", f"{r.backfill_bytes / 1e9:,.3f}",
            f"{r.frames_decoded:,}", str(r.incidents), str(r.ai_calls), f"{r.ai_tokens:,}",
            str(r.alerts_sent), f"{r.live_view_seconds / 60:.1f}")


@commands.command("alerts", "unusual-usage flags (leaked keys, spikes, refused hellos) and alerts given up",
                  option("--client-id", type=int), listing=True)
async def alerts_list(args, settings: Settings, console: Console) -> int:
    async with await open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        flags = await store.flags(args.client_id)
    documents = [{"id": f.id, "at": render.iso(f.at), "kind": f.kind, "client_id": f.client_id,
                  "key_id": f.key_id, "detail": f.detail, "emailed_at": render.iso(f.notified_at)}
                 for f in flags]
    # A detail may quote a mail server's reply: shown as written, never read as rich markup.
    rows = [(str(f.id), render.local(f.at), f.kind, str(f.client_id or "—"), escape(f.detail),
             render.local(f.notified_at)) for f in flags]
    return render.listing(args.json, console, documents, f"{plural(len(flags), 'flag')}, newest first",
                          ("ID", "When", "Kind", "Client", "Detail", "Emailed"), rows)
