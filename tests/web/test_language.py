"""The customer's page in the customer's language, over real HTTP: a client's own language once signed in
(set by the operator's CLI), the browser's before sign-in, else the server's; dates as that language writes
them."""

import asyncio
import re
import time
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from helpers import add_client

from vigint.config import AlertSettings, Settings, StorageSettings
from vigint.store import Invoice, Line
from vigint.web.access import new_sign_in_link

D0, D1 = Decimal(0), Decimal(1)
FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                 "octobre", "novembre", "décembre")
FRENCH_MOMENT = re.compile(r"jusqu'au (lun|mar|mer|jeu|ven|sam|dim)\. (\d\d) "
                           r"(janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.) "
                           r"(\d{4}), \d\d:\d\d:\d\d (CET|CEST)")


@pytest.fixture
def vigint(cli):
    """The operator's real CLI, in a worker thread: it runs its own event loop beside the server's."""
    return lambda *args: asyncio.to_thread(cli, *args)


async def serve(start, tmp_path, language: str = "en"):
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                                  alerts=AlertSettings(language=language)))
    server.base = f"http://127.0.0.1:{server.page.port}"
    return server


@pytest.fixture
async def site(start, tmp_path, monkeypatch):
    server = await serve(start, tmp_path)
    monkeypatch.setenv("VIGINT_WEB_PUBLIC_URL", server.base)  # how the operator's `vigint` names the page
    return server


async def signed_in(server, client_id: int, accept_language: str) -> aiohttp.ClientSession:
    """A browser asking for `accept_language`, signed in as the client through a one-time link."""
    link = await new_sign_in_link(server.store, server.settings.web, server.base, client_id)
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                    headers={"Accept-Language": accept_language})
    async with session.post(link, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    return session


async def page(session: aiohttp.ClientSession, url: str, status: int = 200) -> str:
    async with session.get(url) as response:
        assert response.status == status, url
        return await response.text()


async def invoice_for(server, client_id: int) -> int:
    hours = Line("Camera hours", D1, "h", Decimal("12.5"), Decimal("12.5"))
    issued = await server.store.issue_invoice(Invoice(0, "2026-11-01", "2026-10", client_id, "Acme",
                                                      "ops@acme.test", "EUR", (hours,), D0, "Vigint", "", ""))
    return issued.number


async def test_a_french_client_reads_its_account_in_french_whatever_its_browser_says(site, vigint):
    client_id, _, _ = await add_client(site.store)
    assert (await vigint("client", "update", "--client-id", str(client_id), "--language", "fr",
                         "--timezone", "Europe/Paris")).code == 0
    number = await invoice_for(site, client_id)
    async with await signed_in(site, client_id, "en-US,en;q=0.9") as browser:
        shown = await page(browser, f"{site.base}/account")
        document = await page(browser, f"{site.base}/invoices/{number}")
    month = datetime.now(ZoneInfo("Europe/Paris"))
    assert '<html lang="fr">' in document and f"<h1>Facture {number}</h1>" in document
    assert "<th>Émise le</th><td>01/11/2026</td>" in document and "Total TTC (EUR)" in document
    assert '<td class=n>12,50</td>' in document and "Invoice" not in document
    assert '<html lang="fr">' in shown
    assert '<a href="/cameras">Caméras</a>' in shown and "Consommation et factures</a>" in shown
    assert "<button>Se déconnecter</button>" in shown
    assert f"<h1>Consommation de {FRENCH_MONTHS[month.month - 1]} {month.year}, à ce jour</h1>" in shown
    assert f"Facture {number}</a>" in shown and "<td>octobre 2026</td>" in shown
    assert "<td>01/11/2026</td>" in shown
    assert "<td>12,50 EUR</td>" in shown and "0,0 heures" in shown and "Aucune" not in shown
    assert "Invoice" not in shown and "Sign out" not in shown and "Usage" not in shown


async def test_an_english_client_reads_english_even_from_a_french_browser(site, vigint):
    client_id, _, _ = await add_client(site.store)
    assert (await vigint("client", "update", "--client-id", str(client_id), "--language", "en")).code == 0
    number = await invoice_for(site, client_id)
    async with await signed_in(site, client_id, "fr-FR,fr;q=0.9") as browser:
        shown = await page(browser, f"{site.base}/account")
        document = await page(browser, f"{site.base}/invoices/{number}")
    assert f"<h1>Invoice {number}</h1>" in document and "<th>Issued</th><td>2026-11-01</td>" in document
    assert '<html lang="en">' in shown and "<button>Sign out</button>" in shown
    assert "Usage &amp; invoices" in shown and f"Invoice {number}</a>" in shown
    assert "<td>October 2026</td>" in shown and "<td>2026-11-01</td>" in shown
    assert "<td>12.50 EUR</td>" in shown and "Consommation" not in shown and "Facture" not in shown


@pytest.mark.parametrize(("accept_language", "server_language", "expected"), [
    ("fr-FR,fr;q=0.9,en;q=0.8", "en", "fr"),
    ("de-DE,fr;q=0.5", "en", "fr"),  # the first language the page speaks
    ("en-GB", "fr", "en"),
    ("de-DE", "fr", "fr"),  # none the page speaks: the server's
    ("", "fr", "fr"),
    ("", "en", "en"),
])
async def test_the_sign_in_page_follows_the_browser_else_the_server(start, tmp_path, accept_language,
                                                                    server_language, expected):
    server = await serve(start, tmp_path, server_language)
    headers = {"Accept-Language": accept_language} if accept_language else {}
    async with aiohttp.ClientSession(headers=headers) as browser:
        shown = await page(browser, f"{server.base}/sign-in")
    assert f'<html lang="{expected}">' in shown
    if expected == "fr":
        assert "<h1>Connexion à Vigint</h1>" in shown and "Recevoir un lien par e-mail</button>" in shown
        assert 'aria-label="Adresse e-mail"' in shown and "Sign in" not in shown
        assert "Se déconnecter" not in shown  # not signed in: no menu
    else:
        assert "<h1>Sign in to Vigint</h1>" in shown and "Email me a link</button>" in shown
        assert "Connexion" not in shown


async def test_refusals_before_sign_in_speak_the_browsers_language(site):
    client_id, _, _ = await add_client(site.store)
    spent = await new_sign_in_link(site.store, site.settings.web, site.base, client_id,
                                   now=time.time() - 3600)
    async with aiohttp.ClientSession(headers={"Accept-Language": "fr-CA"}) as browser:
        async with browser.post(spent) as answer:
            shown = await answer.text()
            assert answer.status == 400 and '<html lang="fr">' in shown
            assert "<h1>Ce lien ne fonctionne plus</h1>" in shown and "Demandez-en un nouveau." in shown
        async with browser.post(f"{site.base}/sign-in", data={"email": "ops@acme.test"},
                                headers={"Origin": "https://elsewhere.test"}) as answer:
            shown = await answer.text()
            assert answer.status == 403 and "<h1>Envoyé depuis un autre site</h1>" in shown
        async with browser.post(f"{site.base}/sign-in", data={"email": "ops@acme.test"}) as answer:
            shown = await answer.text()  # this server has no mail relay: it says so
            assert answer.status == 200 and "n'envoie pas de lien de connexion par e-mail" in shown


async def test_a_hand_over_link_speaks_its_clients_language_with_the_expiry_in_its_zone(site, vigint):
    created = (await vigint("client", "create", "--name", "Épicerie", "--email", "ops@epicerie.test",
                            "--language", "fr", "--timezone", "Europe/Paris", "--handover", "--json")).json()
    async with aiohttp.ClientSession(headers={"Accept-Language": "en"}) as browser:
        shown = await page(browser, created["handover_url"])
        found = FRENCH_MOMENT.search(shown)
        assert '<html lang="fr">' in shown and "Afficher ma clé d'API</button>" in shown and found, shown
        # The date shown is the link's end in Paris: 48 hours on, give or take this test's seconds.
        end = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(hours=site.settings.web.handover_hours)
        assert int(found[2]) == end.day and int(found[4]) == end.year and found[5] == end.strftime("%Z")
        assert "Se déconnecter" not in shown  # not signed in: no menu
        async with browser.post(created["handover_url"]) as picked:
            shown = await picked.text()
            assert picked.status == 200 and "copiez-la maintenant" in shown
            assert 'data-copied="Copié"' in shown and ">Copier</button>" in shown
