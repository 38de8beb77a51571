"""Invoices, pure: usage totals priced with decimal arithmetic, rendered as printable HTML or CSV."""

import csv
import html
import io
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from vigint.config import BillingSettings
from vigint.errors import InvalidInputError
from vigint.store.records import CENT, Invoice, Line

PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
MILLI = Decimal("0.001")  # gigabytes and thousands of tokens are billed to three decimals
_STYLE = """\
@page{size:A4;margin:18mm}body{font:11pt/1.4 system-ui,sans-serif;max-width:48em;margin:2em auto;color:#111}
table{width:100%;border-collapse:collapse}td,th{padding:.3em;border-bottom:1px solid #ccc;text-align:left}
.n{text-align:right}.parties{display:flex;justify-content:space-between;gap:2em;margin:1.5em 0}
.note{border:2px solid #b00;color:#b00;padding:.5em}h2{font-size:1.1em;margin-top:1.5em}
@media print{body{margin:0;max-width:none}}"""
# The document's own words in each language a client may read (its lines keep the words they were issued
# with).
WORDS = {
    "en": {"invoice": "Invoice", "credit_note": "Credit note", "vat_id": "VAT {id}", "issued": "Issued",
           "due": "Due", "period": "Period", "client": "Client", "billed_to": "Billed to:", "lines": "Lines",
           "header": ("Description", "Quantity", "Unit", "Unit price", "Amount"), "subtotal": "Subtotal",
           "vat": "VAT {rate} %", "total": "Total ({currency})", "voids": "Voids invoice {number}: {reason}",
           "voided": "Voided by credit note {number}: nothing is due on this invoice.", "payment": "Payment",
           "please_pay": "Please pay {total} {currency} by {due}, with the reference <b>{reference}</b>:"},
    "fr": {"invoice": "Facture", "credit_note": "Avoir", "vat_id": "TVA {id}", "issued": "Émise le",
           "due": "Échéance", "period": "Période", "client": "Client", "billed_to": "Facturé à :",
           "lines": "Détail", "header": ("Désignation", "Quantité", "Unité", "Prix unitaire", "Montant"),
           "subtotal": "Total HT", "vat": "TVA {rate} %", "total": "Total TTC ({currency})",
           "voids": "Annule la facture {number} : {reason}",
           "voided": "Annulée par l'avoir {number} : rien n'est dû au titre de cette facture.",
           "payment": "Paiement",
           "please_pay": "Merci de régler {total} {currency} au plus tard le {due}, avec la référence "
                         "<b>{reference}</b> :"},
}


@dataclass(frozen=True)
class Usage:
    """A client's usage over a period (sums over its keys)."""

    stream_seconds: Decimal
    bytes_received: int
    ai_calls: int
    ai_tokens: int
    alerts_sent: int
    backfill_seconds: Decimal = Decimal(0)  # footage recorded during outages and recovered later
    live_view_seconds: Decimal = Decimal(0)  # cameras watched live on the page, summed over viewers


def period_bounds(period: str) -> tuple[float, float]:
    """Return the start and end (Unix seconds, UTC) of a YYYY-MM period. Raises InvalidInputError."""
    match = PERIOD.fullmatch(period)
    if match is None:
        raise InvalidInputError(f"{period!r} is not a period like 2026-01")
    year = int(match[1])
    month = int(match[2])
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return start.timestamp(), end.timestamp()


def _rounded(value: Decimal, step: Decimal = CENT) -> Decimal:
    return value.quantize(step, ROUND_HALF_UP)


def price(usage: Usage, billing: BillingSettings) -> tuple[Line, ...]:
    """Price a period's usage; lines with nothing used are left out."""
    quantities = [
        ("Camera streaming", _rounded(usage.stream_seconds / 3600), "camera-hour",
         billing.price_per_camera_hour),
        # Footage recorded while the camera was offline and sent later is analysed like live video, priced
        # alike.
        ("Footage recovered after outages", _rounded(usage.backfill_seconds / 3600),
         "camera-hour", billing.price_per_camera_hour),
        ("Video received", _rounded(Decimal(usage.bytes_received) / 10**9, MILLI), "GB",
         billing.price_per_gb),
        ("AI verifications", Decimal(usage.ai_calls), "call", billing.price_per_ai_call),
        ("AI tokens", _rounded(Decimal(usage.ai_tokens) / 1000, MILLI), "1k tokens",
         billing.price_per_1k_tokens),
        ("Alerts delivered", Decimal(usage.alerts_sent), "alert", billing.price_per_alert),
    ]
    if billing.price_per_live_hour:  # not priced by default: no line at all
        quantities.append(("Live view", _rounded(usage.live_view_seconds / 3600), "viewer-hour",
                           billing.price_per_live_hour))
    return tuple(Line(description, quantity, unit, unit_price, _rounded(quantity * unit_price))
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


def _localised(language: str, value: object) -> str:
    """A date (YYYY-MM-DD) or an amount as `language` writes it: 01/11/2026 and 12,50 in French."""
    text = str(value)
    if language != "fr":
        return text
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        year, month, day = text.split("-")
        return f"{day}/{month}/{year}"
    return text.replace(".", ",")


def to_html(invoice: Invoice, language: str = "en") -> str:
    """Return the invoice (or credit note) as a self-contained HTML page that prints on one A4 sheet: seller
    and buyer, number, dates, lines, VAT, total, and how to pay; in `language` (en or fr)."""
    e = html.escape
    words = WORDS[language]
    number = partial(_localised, language)
    kind = words["credit_note"] if invoice.is_credit_note else words["invoice"]
    rows = "\n".join(f"<tr><td>{e(line.description)}</td><td class=n>{number(line.quantity)}</td>"
                     f"<td>{e(line.unit)}</td><td class=n>{number(line.unit_price)}</td>"
                     f"<td class=n>{number(line.amount)}</td></tr>" for line in invoice.lines)
    vat_percent = number(f"{invoice.vat_rate * 100:f}".rstrip("0").rstrip("."))

    def party(name: str, address: str, vat_id: str, email: str = "") -> str:
        vat = words["vat_id"].format(id=e(vat_id)) if vat_id else ""
        return "<br>".join(part for part in (f"<b>{e(name)}</b>", e(address), e(email), vat) if part)
    dates = [(words["issued"], number(invoice.issued_on)), (words["period"], invoice.period),
             (words["client"], str(invoice.client_id))]
    if invoice.due_on:
        dates.insert(1, (words["due"], number(invoice.due_on)))
    notes = []
    if invoice.is_credit_note:
        voids = words["voids"].format(number=invoice.voids, reason=e(invoice.reason))
        notes.append(f"<p class=note>{voids}</p>")
    if invoice.voided_by is not None:
        notes.append(f"<p class=note>{words['voided'].format(number=invoice.voided_by)}</p>")
    payable = invoice.payment_details and not invoice.is_credit_note and invoice.voided_by is None
    please_pay = words["please_pay"].format(total=number(invoice.total), currency=e(invoice.currency),
                                            due=number(invoice.due_on), reference=f"{kind} {invoice.number}")
    payment = (f"<h2>{words['payment']}</h2><p>{please_pay}<br>{e(invoice.payment_details)}</p>"
               if payable else "")
    seller = party(invoice.seller_name, invoice.seller_address, invoice.seller_vat_id)
    buyer = party(invoice.client_name, invoice.client_address, invoice.client_vat_id, invoice.client_email)
    description, quantity, unit, unit_price, amount = words["header"]
    header = (f"<tr><th>{description}</th><th class=n>{quantity}</th><th>{unit}</th>"
              f"<th class=n>{unit_price}</th><th class=n>{amount}</th></tr>")
    total = words["total"].format(currency=e(invoice.currency))
    return f"""<!doctype html>
<html lang="{language}"><head><meta charset="utf-8"><title>{kind} {invoice.number}</title>
<style>{_STYLE}</style></head><body>
<h1>{kind} {invoice.number}</h1>
<div class=parties><div>{seller}</div>
<div>{words["billed_to"]}<br>{buyer}</div></div>
<table>{"".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in dates)}</table>
{"".join(notes)}
<h2>{words["lines"]}</h2>
<table>{header}
{rows}
<tr><td colspan=4>{words["subtotal"]}</td><td class=n>{number(invoice.subtotal)}</td></tr>
<tr><td colspan=4>{words["vat"].format(rate=vat_percent)}</td><td class=n>{number(invoice.vat)}</td></tr>
<tr><th colspan=4>{total}</th><th class=n>{number(invoice.total)}</th></tr></table>
{payment}
</body></html>
"""
