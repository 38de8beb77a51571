"""Issuing invoices: a client's metered usage for a month that is over, priced, numbered and stored once.

An invoice is issued at most once per client and month; asking again returns the stored one, so a reprint
is identical and keeps its number, even after the client is deleted.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from vigint.billing.invoices import Invoice, Usage, period_bounds, price
from vigint.config import BillingSettings
from vigint.errors import InvalidInputError
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
    """Sum a client's usage over its keys; stream and footage time to the millisecond, as the meter records them;
    the video received live and recovered after outages."""
    return Usage(Decimal(str(round(sum(r.stream_seconds for r in rows), 3))),
                 sum(r.bytes_received + r.backfill_bytes for r in rows), sum(r.ai_calls for r in rows),
                 sum(r.ai_tokens for r in rows), sum(r.alerts_sent for r in rows),
                 Decimal(str(round(sum(r.backfill_seconds for r in rows), 3))))


async def issue_invoice(store: Store, billing: BillingSettings, client_id: int, month: ClosedMonth) -> Invoice:
    """Return the client's invoice for `month`, issuing it (priced with `billing`, next number) if none exists.

    Takes the client's id, not the client: an issued invoice is found even after its client is deleted.

    Raises:
        NotFoundError: no invoice was issued yet and there is no such client.
    """
    issued = await store.find_invoice(client_id, month.period)
    if issued is not None:
        return issued
    client = await store.get_client(client_id)
    usage = _total(await store.usage_report(client.id, month.since, month.until))
    return await store.issue_invoice(Invoice(
        0, date.today().isoformat(), month.period, client.id, client.name, client.email, billing.currency,
        price(usage, billing), billing.vat_rate, billing.seller_name, billing.seller_address, billing.seller_vat_id))
