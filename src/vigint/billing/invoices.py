"""Invoices, pure: usage totals priced with decimal arithmetic, rendered as printable HTML or CSV."""

import csv
import html
import io
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from vigint.config import BillingSettings
from vigint.errors import InvalidInputError
from vigint.store.records import CENT, Invoice, Line

PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Usage:
    """A client's usage over a period (sums over its keys)."""

    stream_seconds: Decimal
    bytes_received: int
    ai_calls: int
    ai_tokens: int
    alerts_sent: int
    backfill_seconds: Decimal = Decimal(0)  # footage recorded during outages and recovered later


def period_bounds(period: str) -> tuple[float, float]:
    """Return the start and end (Unix seconds, UTC) of a YYYY-MM period. Raises InvalidInputError."""
    match = PERIOD.fullmatch(period)
    if match is None:
        raise InvalidInputError(f"{period!r} is not a period like 2026-01")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return start.timestamp(), end.timestamp()


def price(usage: Usage, billing: BillingSettings) -> tuple[Line, ...]:
    """Price a period's usage; lines with nothing used are left out."""
    quantities = [
        ("Camera streaming", (usage.stream_seconds / 3600).quantize(CENT, ROUND_HALF_UP), "camera-hour",
         billing.price_per_camera_hour),
        # Footage recorded while the camera was offline and sent later is analysed like live video, priced alike.
        ("Footage recovered after outages", (usage.backfill_seconds / 3600).quantize(CENT, ROUND_HALF_UP),
         "camera-hour", billing.price_per_camera_hour),
        ("Video received", (Decimal(usage.bytes_received) / 10**9).quantize(Decimal("0.001"), ROUND_HALF_UP), "GB",
         billing.price_per_gb),
        ("AI verifications", Decimal(usage.ai_calls), "call", billing.price_per_ai_call),
        ("AI tokens", (Decimal(usage.ai_tokens) / 1000).quantize(Decimal("0.001"), ROUND_HALF_UP), "1k tokens",
         billing.price_per_1k_tokens),
        ("Alerts delivered", Decimal(usage.alerts_sent), "alert", billing.price_per_alert),
    ]
    return tuple(Line(description, quantity, unit, unit_price, (quantity * unit_price).quantize(CENT, ROUND_HALF_UP))
                 for description, quantity, unit, unit_price in quantities if quantity)


def to_csv(invoice: Invoice) -> str:
    """Return the invoice as CSV: one row per line, then subtotal, VAT and total rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["invoice", "issued", "period", "client_id", "client", "description", "quantity", "unit",
                     "unit_price", "amount", "currency"])
    head = [invoice.number, invoice.issued_on, invoice.period, invoice.client_id, invoice.client_name]
    for line in invoice.lines:
        writer.writerow([*head, line.description, line.quantity, line.unit, line.unit_price, line.amount,
                         invoice.currency])
    writer.writerow([*head, "Subtotal", "", "", "", invoice.subtotal, invoice.currency])
    writer.writerow([*head, f"VAT {invoice.vat_rate * 100:f}".rstrip("0").rstrip(".") + " %", "", "", "",
                     invoice.vat, invoice.currency])
    writer.writerow([*head, "Total", "", "", "", invoice.total, invoice.currency])
    return out.getvalue()


def to_html(invoice: Invoice) -> str:
    """Return the invoice as a self-contained HTML page that prints on one A4 sheet."""
    e = html.escape
    rows = "\n".join(f"<tr><td>{e(line.description)}</td><td class=n>{line.quantity}</td><td>{e(line.unit)}</td>"
                     f"<td class=n>{line.unit_price}</td><td class=n>{line.amount}</td></tr>" for line in invoice.lines)
    vat_percent = f"{invoice.vat_rate * 100:f}".rstrip("0").rstrip(".")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {invoice.number}</title>
<style>body{{font:14px system-ui,sans-serif;max-width:50em;margin:2em auto}}table{{width:100%;border-collapse:collapse}}
td,th{{padding:.3em;border-bottom:1px solid #ccc;text-align:left}}.n{{text-align:right}}
@media print{{body{{margin:0}}}}</style></head><body>
<h1>Invoice {invoice.number}</h1>
<p><b>{e(invoice.seller_name)}</b><br>{e(invoice.seller_address)}<br>{('VAT ' + e(invoice.seller_vat_id)) if invoice.seller_vat_id else ''}</p>
<p>Billed to: <b>{e(invoice.client_name)}</b> ({e(invoice.client_email)}), client {invoice.client_id}<br>
Issued {invoice.issued_on} for {invoice.period}. Amounts in {e(invoice.currency)}.</p>
<table><tr><th>Description</th><th class=n>Quantity</th><th>Unit</th><th class=n>Unit price</th><th class=n>Amount</th></tr>
{rows}
<tr><td colspan=4>Subtotal</td><td class=n>{invoice.subtotal}</td></tr>
<tr><td colspan=4>VAT {vat_percent} %</td><td class=n>{invoice.vat}</td></tr>
<tr><th colspan=4>Total</th><th class=n>{invoice.total}</th></tr></table>
</body></html>
"""
