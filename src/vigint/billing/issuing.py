"""Issuing invoices: a client's metered usage for a month that is over, priced, numbered and stored once.

An invoice is issued at most once per client and month; asking again returns the stored one, so a reprint
is identical and keeps its number, even after the client is deleted.
"""

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from vigint.billing.invoices import Invoice, Usage, period_bounds, price
from vigint.config import BillingSettings
from vigint.errors import ConfigError, InvalidInputError
from vigint.store import Store, UsageRow


@dataclass(frozen=True)
class ClosedMonth:
    """A month that is over: its usage is final, so it can be invoiced. Build it with `closed_month`."""

    period: str  # YYYY-MM
    since: float  # Unix seconds, UTC, inclusive
    until: float  # exclusive


def closed_month(period: str, now: float) -> ClosedMonth:
    """Return the month `period` (YYYY-MM, UTC) if it is over at `now`.

    Raises InvalidInputError if `period` is malformed or not over yet (its usage could still grow).
    """
    since, until = period_bounds(period)
    if until > now:
        raise InvalidInputError(f"period {period} is not over yet: invoice it from the 1st of the next month")
    return ClosedMonth(period, since, until)


def _total(rows: list[UsageRow]) -> Usage:
    """Sum a client's usage over its keys; stream and footage time to the millisecond, as the meter records
    them; the video received live and recovered after outages."""
    return Usage(Decimal(str(round(sum(r.stream_seconds for r in rows), 3))),
                 sum(r.bytes_received + r.backfill_bytes for r in rows), sum(r.ai_calls for r in rows),
                 sum(r.ai_tokens for r in rows), sum(r.alerts_sent for r in rows),
                 Decimal(str(round(sum(r.backfill_seconds for r in rows), 3))),
                 Decimal(str(round(sum(r.live_view_seconds for r in rows), 3))))


def missing_seller_details(billing: BillingSettings) -> list[str]:
    """Name the [billing] settings an invoice cannot go without that are empty."""
    required = ("seller_name", "seller_address", "payment_details")
    return [name for name in required if not getattr(billing, name).strip()]


async def issue_invoice(store: Store, billing: BillingSettings, client_id: int, month: ClosedMonth,
                        allow_empty: bool = False, today: date | None = None) -> Invoice:
    """Return the client's invoice for `month`, issuing it (priced with `billing`, next number, due after the
    payment terms) if none is in force.

    Takes the client's id, not the client: an issued invoice is found even after its client is deleted.

    Raises:
        NotFoundError: no invoice was issued yet and there is no such client.
        ConfigError: the seller's details or payment details are not set (naming each missing setting).
        InvalidInputError: the client used nothing that month, and not `allow_empty`.
    """
    issued = await store.find_invoice(client_id, month.period)
    if issued is not None:
        return issued
    missing = missing_seller_details(billing)
    if missing:
        raise ConfigError(f"set [billing] {', '.join(missing)} before issuing an invoice (in config.ini, or "
                          f"{', '.join('VIGINT_BILLING_' + name.upper() for name in missing)})")
    client = await store.get_client(client_id)
    usage = _total(await store.usage_report(client.id, month.since, month.until))
    lines = price(usage, billing)
    if not lines and not allow_empty:
        created = date.fromtimestamp(client.created_at).isoformat()
        # a few seconds of streaming are usage all the same: "used nothing" would send the operator looking
        # for a bug
        used = (f"'s usage in {month.period} rounds to 0.00 {billing.currency}"
                if any(dataclasses.astuple(usage)) else f" used nothing in {month.period}")
        since = f" (it was created on {created})" if created[:7] > month.period else ""
        raise InvalidInputError(f"client {client.id} ({client.name}){used}{since}: no invoice "
                                "issued; --allow-empty issues one for 0.00")
    today = today or date.today()
    return await store.issue_invoice(Invoice(
        0, today.isoformat(), month.period, client.id, client.name, client.email, billing.currency, lines,
        billing.vat_rate, billing.seller_name, billing.seller_address, billing.seller_vat_id,
        client_address=client.address or "", client_vat_id=client.vat_id or "",
        due_on=(today + timedelta(days=billing.payment_terms_days)).isoformat(),
        payment_details=billing.payment_details))


async def void_invoice(store: Store, number: int, reason: str, today: date | None = None) -> Invoice:
    """Void an invoice with a credit note numbered next: the same parties and lines, amounts negated; return
    it. Raises NotFoundError, or InvalidInputError (an empty reason, a credit note, an invoice voided
    already)."""
    if not reason.strip():
        raise InvalidInputError("say why the invoice is voided (--reason), for the credit note and the "
                                "audit log")
    issued_on = (today or date.today()).isoformat()

    def credit_note(invoice: Invoice) -> Invoice:
        lines = tuple(dataclasses.replace(line, quantity=-line.quantity, amount=-line.amount)
                      for line in invoice.lines)
        return dataclasses.replace(invoice, number=0, issued_on=issued_on, lines=lines, due_on="",
                                   voids=invoice.number, reason=reason.strip(), voided_by=None)
    return await store.void_invoice(number, credit_note)
