"""Issued invoices: each keeps a copy of everything it shows, so it prints the same years later."""

import json
import time
from decimal import Decimal

from vigint.store.audit import record_audit
from vigint.store.engine import Engine, Row
from vigint.store.records import Invoice, Line


def _invoice(row: Row) -> Invoice:
    document = json.loads(row["document"])
    lines = tuple(Line(description, Decimal(quantity), unit, Decimal(unit_price), Decimal(amount))
                  for description, quantity, unit, unit_price, amount in document["lines"])
    return Invoice(row["number"], row["issued_on"], row["period"], row["client_id"], document["client_name"],
                   document["client_email"], document["currency"], lines, Decimal(document["vat_rate"]),
                   document["seller_name"], document["seller_address"], document["seller_vat_id"])


class InvoiceQueries(Engine):
    """Numbering and storing invoices."""

    async def find_invoice(self, client_id: int, period: str) -> Invoice | None:
        """Return the invoice already issued to a client for a period, if any."""
        row = await self._fetch_one("SELECT * FROM invoices WHERE client_id = ? AND period = ?", (client_id, period))
        return None if row is None else _invoice(row)

    async def issue_invoice(self, draft: Invoice) -> Invoice:
        """Store a new invoice and give it the next number (the draft's number is ignored), with no gap in the
        numbering on either engine (a PostgreSQL sequence would skip the number of a rolled-back issue); if the
        client's invoice for the period was issued meanwhile (another command), return that one."""
        document = json.dumps({
            "client_name": draft.client_name, "client_email": draft.client_email, "currency": draft.currency,
            "vat_rate": str(draft.vat_rate), "seller_name": draft.seller_name, "seller_address": draft.seller_address,
            "seller_vat_id": draft.seller_vat_id,
            "lines": [[line.description, str(line.quantity), line.unit, str(line.unit_price), str(line.amount)]
                      for line in draft.lines]})
        async with self._transaction() as db:
            await db.serialize("invoice numbers")
            issued = await self.find_invoice(draft.client_id, draft.period)
            if issued is not None:
                return issued
            (row,) = await db.fetch_all("SELECT coalesce(max(number), 0) + 1 AS next FROM invoices")
            await db.execute("INSERT INTO invoices (number, client_id, period, issued_on, document) "
                             "VALUES (?, ?, ?, ?, ?)", (row["next"], draft.client_id, draft.period, draft.issued_on,
                                                        document))
            await record_audit(db, time.time(), "invoice.issue", draft.client_id, detail=f"period={draft.period}")
        return await self.find_invoice(draft.client_id, draft.period)
