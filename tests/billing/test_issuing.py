from datetime import datetime, timezone

import pytest
from helpers import add_client

from vigint.billing.issuing import closed_month, issue_invoice
from vigint.config import BillingSettings
from vigint.errors import InvalidInputError
from vigint.store import Store, UsageDelta

SELLER = BillingSettings(seller_name="Vigint Ops SARL", seller_address="1 rue de la Paix, Paris",
                         payment_details="IBAN FR76 3000 6000 0112 3456 7890 189")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_only_a_month_that_is_over_can_be_invoiced():
    month = closed_month("2026-10", at("2026-11-01T00:00:00"))
    assert (month.since, month.until) == (at("2026-10-01T00:00:00"), at("2026-11-01T00:00:00"))
    with pytest.raises(InvalidInputError, match="not over yet"):
        closed_month("2026-11", at("2026-11-30T23:59:59"))
    with pytest.raises(InvalidInputError):
        closed_month("2026-13", at("2027-02-01T00:00:00"))


async def test_a_month_is_invoiced_once_from_its_usage_only(db_path):
    async with await Store.open(db_path) as store:
        client_id, key_id, _ = await add_client(store)
        inside, after = int(at("2026-10-31T23:00:00")), int(at("2026-11-01T00:00:00"))
        await store.record_usage([UsageDelta(key_id, inside, stream_seconds=3600.0),
                                  UsageDelta(key_id, after, stream_seconds=7200.0)], {})
        month = closed_month("2026-10", at("2026-11-02T00:00:00"))
        first = await issue_invoice(store, SELLER, client_id, month)
        again = await issue_invoice(store, SELLER, client_id, month)
        assert again == first and first.period == "2026-10"
        assert [line.quantity for line in first.lines if "hour" in line.unit] == [1]  # October's hour, not November's
