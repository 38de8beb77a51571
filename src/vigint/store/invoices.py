"""Issued invoices: each keeps a copy of everything it shows, so it prints the same years later."""

import json
import time
from collections.abc import Callable
from decimal import Decimal

from vigint.errors import InvalidInputError, NotFoundError
from vigint.store.audit import record_audit
from vigint.store.engine import Engine, Row, Transaction
from vigint.store.records import Invoice, Line


def _invoice(row: Row) -> Invoice:
    document = json.loads(row["document"])
    lines = tuple(Line(description, Decimal(quantity), unit, Decimal(unit_price), Decimal(amount))
                  for description, quantity, unit, unit_price, amount in document.pop("lines"))
    return Invoice(row["number"], row["issued_on"], row["period"], row["client_id"], lines=lines,
                   vat_rate=Decimal(document.pop("vat_rate")), voids=row["voids"], voided_by=row["voided_by"],
                   **document)


def _document(draft: Invoice) -> str:
    """What an invoice keeps of its parties and lines: all it prints, so a reprint is the same years later."""
    kept = {name: getattr(draft, name) for name in (
        "client_name", "client_email", "client_address", "client_vat_id", "currency", "seller_name",
        "seller_address", "seller_vat_id", "due_on", "payment_details", "reason")}
    return json.dumps({**kept, "vat_rate": str(draft.vat_rate), "lines": [
        [line.description, str(line.quantity), line.unit, str(line.unit_price), str(line.amount)]
        for line in draft.lines]})


class InvoiceQueries(Engine):
    """Numbering and storing invoices."""

    async def find_invoice(self, client_id: int, period: str) -> Invoice | None:
        """Return a client's invoice in force for a period (issued, not voided), if any."""
        row = await self._fetch_one(
            "SELECT * FROM invoices WHERE client_id = ? AND period = ? AND voids IS NULL "
            "AND voided_by IS NULL", (client_id, period))
        return None if row is None else _invoice(row)

    async def get_invoice(self, number: int) -> Invoice:
        """Return an invoice or credit note by its number. Raises NotFoundError."""
        row = await self._fetch_one("SELECT * FROM invoices WHERE number = ?", (number,))
        if row is None:
            raise NotFoundError(f"no invoice numbered {number}")
        return _invoice(row)

    async def issue_invoice(self, draft: Invoice) -> Invoice:
        """Store a new invoice and give it the next number (the draft's number is ignored), with no gap in the
        numbering on either engine (a PostgreSQL sequence would skip the number of a rolled-back issue); if
        the client's invoice for the period was issued meanwhile (another command), return that one."""
        async with self._transaction() as db:
            await db.serialize("invoice numbers")
            issued = await self.find_invoice(draft.client_id, draft.period)
            if issued is not None:
                return issued
            number = await self._next_number(db, draft)
            await record_audit(db, time.time(), "invoice.issue", draft.client_id,
                               detail=f"period={draft.period}")
        return await self.get_invoice(number)

    async def void_invoice(self, number: int, credit_note: Callable[[Invoice], Invoice]) -> Invoice:
        """Void an invoice with a credit note, `credit_note(invoice)`, given the next number; return the note.

        Raises:
            NotFoundError: no such invoice.
            InvalidInputError: it is a credit note, or voided already.
        """
        async with self._transaction() as db:
            await db.serialize("invoice numbers")
            invoice = await self.get_invoice(number)
            if invoice.is_credit_note:
                raise InvalidInputError(f"{number} is a credit note (voiding invoice {invoice.voids}), "
                                        "not an invoice")
            if invoice.voided_by is not None:
                raise InvalidInputError(f"invoice {number} is voided already, "
                                        f"by credit note {invoice.voided_by}")
            note = credit_note(invoice)
            issued = await self._next_number(db, note)
            await db.execute("UPDATE invoices SET voided_by = ? WHERE number = ?", (issued, number))
            await record_audit(db, time.time(), "invoice.void", invoice.client_id,
                               detail=f"invoice {number} voided by credit note {issued}: {note.reason}")
        return await self.get_invoice(issued)

    @staticmethod
    async def _next_number(db: Transaction, draft: Invoice) -> int:
        (row,) = await db.fetch_all("SELECT coalesce(max(number), 0) + 1 AS next FROM invoices")
        await db.execute("INSERT INTO invoices (number, client_id, period, issued_on, document, voids) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (row["next"], draft.client_id, draft.period, draft.issued_on, _document(draft),
                          draft.voids))
        return row["next"]
