"""Invoices (`vigint invoice`): issue a month's invoice the first time it is asked for, print it again, or
void it with a credit note. billing.issuing decides what is billed; this module only asks and prints."""

import sys
import time
from pathlib import Path

from rich.console import Console

from vigint.billing.invoices import to_csv, to_html
from vigint.billing.issuing import closed_month, issue_invoice, void_invoice
from vigint.cli.commands import Commands, open_store, option
from vigint.config import Settings
from vigint.errors import InvalidInputError, NotFoundError
from vigint.store import Store

commands = Commands()


@commands.command("invoice",
                  "issue (or print again) a client's invoice for a month; void one with a credit note",
                  option("action", nargs="?", choices=("void",),
                         help="void: cancel an issued invoice with a credit note numbered next "
                              "(--number, --reason)"),
                  option("--client-id", type=int),
                  option("--period", metavar="YYYY-MM", help="the month invoiced (UTC)"),
                  option("--allow-empty", action="store_true",
                         help="invoice a month with no usage (0.00) all the same"),
                  option("--number", type=int, help="an issued invoice: to print again, or to void"),
                  option("--reason", help="why the invoice is voided, printed on the credit note"),
                  option("--format", choices=("html", "csv"), default="html",
                         help="printable HTML (default) or CSV"),
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
        language = await _language(store, issued.client_id) or settings.alerts.language
    text = to_html(issued, language) if args.format == "html" else to_csv(issued)
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


async def _language(store: Store, client_id: int) -> str | None:
    """The language of the document a client reads (the CSV, for the operator's books, has none): the client's
    own, if it set one and still exists (an invoice outlives its client)."""
    try:
        return (await store.get_client(client_id)).language
    except NotFoundError:
        return None
