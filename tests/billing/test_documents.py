"""Invoices a business can send, through the real CLI: parties, due date and payment details; printed to PDF by
headless Chromium; voided by a numbered credit note; an empty month refused unless asked for."""

import asyncio
import re
import shutil
import subprocess
from datetime import date

import pytest
from helpers import SELLER

from vigint.store import Store, UsageDelta

OCTOBER = 1_790_812_800  # 2026-10-01T00:00:00Z
CHROMIUM = shutil.which("chromium")


def bill(cli, db_path, *, usage: bool = True) -> dict:
    client = cli("client", "create", "--name", "Boulangerie Martin", "--email", "compta@martin.test", "--json").json()
    if usage:
        async def record():
            async with await Store.open(db_path) as store:
                await store.record_usage([UsageDelta(client["key_id"], OCTOBER + 3600, 36_000.0, 5 * 10**9)], {})
        asyncio.run(record())
    return client


def test_an_invoice_names_both_parties_when_it_is_due_and_how_to_pay(cli, db_path, seller, tmp_path):
    client = bill(cli, db_path)
    updated = cli("client", "update", "--client-id", str(client["client_id"]), "--address", "  12 rue Haute,\n Lyon ",
                  "--vat-id", "FR40303265045")
    assert updated.code == 0 and "next invoices are addressed to 12 rue Haute, Lyon" in updated.out
    out = tmp_path / "invoice.html"
    issued = cli("invoice", "--client-id", str(client["client_id"]), "--period", "2026-10", "--out", str(out))
    assert issued.code == 0, issued.err
    page = out.read_text()
    for shown in ("Invoice 1", SELLER["VIGINT_BILLING_SELLER_NAME"], SELLER["VIGINT_BILLING_SELLER_ADDRESS"],
                  "Boulangerie Martin", "compta@martin.test", "12 rue Haute, Lyon", "VAT FR40303265045",
                  "Period</th><td>2026-10", "Due</th><td>",
                  "IBAN FR76 3000 6000 0112 3456 7890 189", "reference <b>Invoice 1</b>"):
        assert shown in page, shown
    issued_on, due_on = (re.search(rf"{label}</th><td>([\d-]+)", page)[1] for label in ("Issued", "Due"))
    assert (date.fromisoformat(due_on) - date.fromisoformat(issued_on)).days == 30


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium to print to PDF (.ci/run installs it)")
def test_the_invoice_prints_to_one_pdf_page_in_headless_chromium(cli, db_path, seller, tmp_path):
    client = bill(cli, db_path)
    html = tmp_path / "invoice.html"
    assert cli("invoice", "--client-id", str(client["client_id"]), "--period", "2026-10", "--out", str(html)).code == 0
    pdf = tmp_path / "invoice.pdf"
    printed = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              f"--user-data-dir={tmp_path / 'profile'}", "--no-pdf-header-footer",
                              f"--print-to-pdf={pdf}", html.as_uri()], capture_output=True, timeout=60)
    assert pdf.is_file(), printed.stderr.decode()[-2000:]
    document = pdf.read_bytes()
    assert document.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page\b", document)) == 1


def test_a_credit_note_voids_an_invoice_with_the_next_number(cli, db_path, seller):
    client = bill(cli, db_path)
    first = cli("invoice", "--client-id", str(client["client_id"]), "--period", "2026-10")
    assert first.code == 0 and "Invoice 1" in first.out
    refused = cli("invoice", "void", "--number", "1", "--reason", " ")
    assert refused.code == 1 and "--reason" in refused.err
    voided = cli("invoice", "void", "--number", "1", "--reason", "wrong price table")
    assert voided.code == 0, voided.err
    assert "Credit note 2" in voided.out and "Voids invoice 1: wrong price table" in voided.out
    total = re.search(r"Total \(EUR\)</th><th class=n>(-[\d.]+)<", voided.out)[1]
    assert total == "-" + re.search(r"Total \(EUR\)</th><th class=n>([\d.]+)<", first.out)[1]
    assert "voided by credit note 2" in voided.err
    again = cli("invoice", "void", "--number", "1", "--reason", "twice")
    assert again.code == 1 and "voided already, by credit note 2" in again.err
    note = cli("invoice", "void", "--number", "2", "--reason", "x")
    assert note.code == 1 and "is a credit note" in note.err
    reprint = cli("invoice", "--number", "1")
    assert "Voided by credit note 2" in reprint.out and "Please pay" not in reprint.out
    corrected = cli("invoice", "--client-id", str(client["client_id"]), "--period", "2026-10")
    assert corrected.code == 0 and "Invoice 3" in corrected.out  # the month invoiced again, numbered next
    audit = cli("audit")
    assert "invoice.void" in audit.out


def test_an_empty_month_is_refused_unless_asked_for(cli, db_path, seller):
    client = bill(cli, db_path, usage=False)
    refused = cli("invoice", "--client-id", str(client["client_id"]), "--period", "2026-10")
    assert refused.code == 1
    assert re.fullmatch(r"vigint: error: client \d+ \(Boulangerie Martin\) used nothing in 2026-10 \(it was created "
                        r"on [\d-]+\): no invoice issued; --allow-empty issues one for 0.00\n", refused.err)
    empty = cli("invoice", "--client-id", str(client["client_id"]), "--period", "2026-10", "--allow-empty")
    assert empty.code == 0 and "Invoice 1" in empty.out


def test_no_invoice_before_the_seller_is_known(cli, db_path):
    client = bill(cli, db_path)
    refused = cli("invoice", "--client-id", str(client["client_id"]), "--period", "2026-10")
    assert refused.code == 1 and refused.err == (
        "vigint: error: set [billing] seller_name, seller_address, payment_details before issuing an invoice (in "
        "config.ini, or VIGINT_BILLING_SELLER_NAME, VIGINT_BILLING_SELLER_ADDRESS, VIGINT_BILLING_PAYMENT_DETAILS)\n")
