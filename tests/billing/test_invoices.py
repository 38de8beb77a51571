import csv
import io
from decimal import Decimal

import pytest

from vigint.billing import invoices
from vigint.config import BillingSettings
from vigint.errors import InvalidInputError

PRICES = BillingSettings(currency="EUR", vat_rate=Decimal("0.20"), price_per_camera_hour=Decimal("0.015"),
                         price_per_gb=Decimal("0.05"), price_per_ai_call=Decimal("0.002"),
                         price_per_1k_tokens=Decimal("0.001"), price_per_alert=Decimal("0.01"))


def test_usage_is_priced_exactly_with_half_up_rounding():
    usage = invoices.Usage(Decimal("2678400"), 1_234_567_890_123, 301, 123_456, 7)  # 744 camera-hours
    lines = invoices.price(usage, PRICES)
    assert [(l.description, l.quantity, l.amount) for l in lines] == [
        ("Camera streaming", Decimal("744.00"), Decimal("11.16")),
        ("Video received", Decimal("1234.568"), Decimal("61.73")),  # 61.7284 → 61.73
        ("AI verifications", Decimal("301"), Decimal("0.60")),  # 0.602 → 0.60
        ("AI tokens", Decimal("123.456"), Decimal("0.12")),
        ("Alerts delivered", Decimal("7"), Decimal("0.07")),
    ]
    invoice = invoices.Invoice(1, "2026-02-01", "2026-01", 5, "Shop", "s@x.test", "EUR", lines, Decimal("0.20"),
                              "Seller", "", "")
    assert (invoice.subtotal, invoice.vat, invoice.total) == (Decimal("73.68"), Decimal("14.74"), Decimal("88.42"))


def test_footage_recovered_after_an_outage_is_priced_like_streaming():
    lines = invoices.price(invoices.Usage(Decimal("3600"), 0, 0, 0, 0, backfill_seconds=Decimal("5400")), PRICES)
    assert [(l.description, l.quantity, l.unit, l.amount) for l in lines] == [
        ("Camera streaming", Decimal("1.00"), "camera-hour", Decimal("0.02")),  # 0.015 → 0.02
        ("Footage recovered after outages", Decimal("1.50"), "camera-hour", Decimal("0.02")),  # 0.0225 → 0.02
    ]


def test_nothing_used_costs_nothing():
    assert invoices.price(invoices.Usage(Decimal(0), 0, 0, 0, 0), PRICES) == ()


def test_periods():
    assert invoices.period_bounds("2026-12") == (1796083200.0, 1798761600.0)
    with pytest.raises(InvalidInputError):
        invoices.period_bounds("2026-13")


def test_csv_parses_with_the_csv_module():
    lines = invoices.price(invoices.Usage(Decimal("3600"), 0, 0, 0, 1), PRICES)
    invoice = invoices.Invoice(9, "2026-02-01", "2026-01", 5, 'Shop, "the corner"', "s@x.test", "EUR", lines,
                              Decimal("0.055"), "Seller", "", "")
    rows = list(csv.DictReader(io.StringIO(invoices.to_csv(invoice))))
    assert [row["description"] for row in rows] == ["Camera streaming", "Alerts delivered", "Subtotal", "VAT 5.5 %",
                                                    "Total"]
    assert rows[0]["client"] == 'Shop, "the corner"' and rows[-1]["amount"] == "0.03"
    page = invoices.to_html(invoice)
    assert "<th class=n>0.03</th>" in page and "Shop, &quot;the corner&quot;" in page and "VAT 5.5 %" in page
