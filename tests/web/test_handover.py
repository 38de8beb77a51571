"""Handing a new key over by a one-time link: the operator's CLI prints the link, the customer's page shows the key
once, and the key works only from then on; over real HTTP, with a real agent."""

import asyncio
import base64
import dataclasses
import hashlib
import html
import logging
import re
import sqlite3
import time

import aiohttp
import pytest
from agent.agents import frames_of, read_log_until
from footage import open_stream
from helpers import add_client, eventually, start_agent, stop, url
from websockets.exceptions import ConnectionClosed

from vigint import keys
from vigint.config import AlertSettings, Settings, StorageSettings
from vigint.web.handover import new_handover

KEY_FIELD = re.compile(r'id="api-key"[^>]*value="(vig_\w+)"')
ENV_LINES = re.compile(r'<textarea id="env-lines"[^>]*>(.*?)</textarea>', re.S)
SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


@pytest.fixture
async def site(start, tmp_path, monkeypatch):
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                                  alerts=AlertSettings(monitor_seconds=0.1)))
    server.base = f"http://127.0.0.1:{server.page.port}"
    monkeypatch.setenv("VIGINT_WEB_PUBLIC_URL", server.base)  # how the operator's `vigint` names the page
    return server


@pytest.fixture
def vigint(cli):
    """The real CLI, in a worker thread: it runs its own event loop beside the server's."""
    return lambda *args: asyncio.to_thread(cli, *args)


def seal_in(db_path, key_id: int) -> str | None:
    """The hand-over seal a copy of the database holds for a key (hex), if any."""
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT handover_seal FROM api_keys WHERE id = ?", (key_id,)).fetchone()[0]


async def listed_key(vigint, key_id: int) -> dict:
    return next(k for k in (await vigint("key", "list", "--json")).json() if k["id"] == key_id)


async def test_a_handover_link_shows_the_key_once_and_only_then_does_the_key_work_in_an_agent(site, vigint, db_path,
                                                                                            tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="vigint")
    created = (await vigint("client", "create", "--name", "Acme", "--email", "ops@acme.test",
                                       "--handover", "--json")).json()
    link, key_id = created["handover_url"], created["key_id"]
    assert "api_key" not in created and link.startswith(f"{site.base}/keys/")
    token = link.rsplit("/", 1)[1]
    # Someone holding both the link and a copy of the database could derive the key: it does not work yet.
    early = keys.derive(token, bytes.fromhex(seal_in(db_path, key_id)))
    with pytest.raises(ConnectionClosed) as refused:
        await open_stream(url(site), early)
    assert refused.value.rcvd.code == 4401 and refused.value.rcvd.reason == "invalid API key"
    assert "refused: its hand-over link has not been opened yet" in caplog.text
    waiting = await listed_key(vigint, key_id)
    assert waiting["state"] == "awaiting_pickup" and waiting["handover"]["state"] == "awaiting_pickup"
    async with aiohttp.ClientSession() as browser:
        async with browser.get(link) as page:  # opening it (a mail scanner would) shows a button, not the key
            text = await page.text()
            assert page.status == 200 and "Show my API key" in text and "vig_" not in text
        async with browser.post(link) as page:
            text, headers = await page.text(), page.headers
        for method in (browser.get, browser.post):  # the second time: nothing
            async with method(link) as again:
                assert again.status == 404 and "no longer works" in await again.text()
                assert "vig_" not in await again.text() and again.headers["Cache-Control"] == "no-store"
    api_key = KEY_FIELD.search(text)[1]
    assert page.status == 200 and api_key == early and headers["Cache-Control"] == "no-store"
    assert html.unescape(ENV_LINES.search(text)[1]).splitlines() == [
        f"VIGINT_API_KEY={api_key}", f"VIGINT_SERVER_URL=ws://127.0.0.1:{site.port}"]
    # The copy buttons' one script runs by its hash; every other page allows none.
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.search(text)[1].encode()).digest()).decode()
    assert f"script-src 'sha256-{script_hash}'" in headers["Content-Security-Policy"]
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert (waiting["handover"]["link_expires_at"]
            and (await listed_key(vigint, key_id))["handover"]["state"] == "picked_up")

    # The customer pastes the page's lines into the .env beside the agent: it streams.
    (tmp_path / ".env").write_text(html.unescape(ENV_LINES.search(text)[1]) + "\n")
    (tmp_path / ".env").chmod(0o600)
    agent = await start_agent(tmp_path, "--source", "test", "--camera", "door")
    await read_log_until(agent, "camera door: streaming")
    await eventually(lambda: frames_of(site, created["client_id"], "door") > 0)
    code, _ = await stop(agent)
    assert code == 0

    audit = {entry["action"]: entry["detail"] for entry in (await vigint("audit", "--json")).json()}
    assert "handover_until=" in audit["key.create"] and "key.pickup" in audit
    assert seal_in(db_path, key_id) is None  # the link is now only a dead token
    for path in db_path.parent.glob("vigint.db*"):  # nor the key, nor the link's token, anywhere in the files
        raw = path.read_bytes()
        assert api_key.encode() not in raw and api_key[10:30].encode() not in raw and token.encode() not in raw
    assert api_key[10:] not in caplog.text and token not in caplog.text


async def test_expired_forged_and_revoked_links_show_nothing_and_a_dead_link_is_audited(site, vigint, db_path):
    settings = dataclasses.replace(site.settings, web=dataclasses.replace(site.settings.web, public_url=site.base))
    client_id, _, _ = await add_client(site.store)
    dead = new_handover(settings, now=time.time() - 49 * 3600)  # made 49 hours ago: its 48 hours are over
    dead_key = await site.store.create_key(client_id, dead.key_hash, dead.key_prefix, handover=dead.handover)
    live = new_handover(settings)
    await site.store.create_key(client_id, live.key_hash, live.key_prefix, handover=live.handover)
    revoked_client, _, _ = await add_client(site.store, "gone@b.test", "Gone")
    revoked = new_handover(settings)
    await site.store.create_key(revoked_client, revoked.key_hash, revoked.key_prefix, handover=revoked.handover)
    await site.store.revoke_client(revoked_client)
    forged = live.url[:-3] + ("AAA" if not live.url.endswith("AAA") else "BBB")
    async with aiohttp.ClientSession() as browser:
        for link in (dead.url, forged, revoked.url, f"{site.base}/keys/short", f"{site.base}/keys/{'x' * 5000}"):
            for method in (browser.get, browser.post):
                async with method(link) as answer:
                    text = await answer.text()
                    assert answer.status == 404 and "no longer works" in text and "vig_" not in text, link
        async with browser.get(live.url) as page:  # the genuine link, untouched by all that
            assert page.status == 200 and "Show my API key" in await page.text()
    # The server lets the dead link go: its seal erased, audited, and the operator sees the key never worked.
    await eventually(lambda: seal_in(db_path, dead_key.id) is None)
    [expiry] = [entry for entry in (await vigint("audit", "--json")).json() if entry["action"] == "key.handover_expire"]
    assert expiry["key_id"] == dead_key.id
    assert (await listed_key(vigint, dead_key.id))["handover"]["state"] == "expired"
    assert "expired: link never opened" in (await vigint("client", "list")).out


def database_files(db_path) -> bytes:
    """Every byte of the database's files: the file itself, its write-ahead log and its shared-memory index."""
    return b"".join(path.read_bytes() for path in sorted(db_path.parent.glob(f"{db_path.name}*")))


async def test_a_picked_up_seal_is_in_neither_the_database_file_nor_its_write_ahead_log(site, vigint, db_path):
    created = (await vigint("client", "create", "--name", "Acme", "--email", "ops@acme.test", "--handover",
                            "--json")).json()
    seal = seal_in(db_path, created["key_id"])
    assert seal.encode() in database_files(db_path)  # written there by the CLI: this check can see it
    async with aiohttp.ClientSession() as browser, browser.post(created["handover_url"]) as page:
        assert page.status == 200 and KEY_FIELD.search(await page.text())
    raw = database_files(db_path)
    assert seal.encode() not in raw and seal.upper().encode() not in raw and bytes.fromhex(seal) not in raw


async def test_a_link_made_before_a_revocation_stays_dead_after_reactivation(site, vigint, db_path):
    created = (await vigint("client", "create", "--name", "Acme", "--email", "ops@acme.test", "--handover",
                            "--json")).json()
    client_id, link = str(created["client_id"]), created["handover_url"]
    assert (await vigint("client", "revoke", "--client-id", client_id)).code == 0
    assert seal_in(db_path, created["key_id"]) is None and created["handover_url"]
    assert (await vigint("client", "reactivate", "--client-id", client_id)).code == 0
    async with aiohttp.ClientSession() as browser:
        for method in (browser.get, browser.post):
            async with method(link) as answer:
                text = await answer.text()
                assert answer.status == 404 and "no longer works" in text and "vig_" not in text
    [ended] = [entry for entry in (await vigint("audit", "--json")).json() if entry["action"] == "key.handover_end"]
    assert ended["key_id"] == created["key_id"] and "with the revocation" in ended["detail"]
    assert (await listed_key(vigint, created["key_id"]))["handover"]["state"] == "expired"
    assert "expired: link never opened" in (await vigint("client", "list")).out
