"""`vigint key rotate`, with a real server, a real agent and a real mailbox: nobody is cut off by surprise."""

import asyncio
import re
import time
from datetime import datetime

import pytest
from agent.agents import read_log_until, stop_when_done, write_env
from footage import make_h264, open_stream, send_video
from helpers import REALTIME, add_client, eventually, start_agent, url

from vigint import protocol
from vigint.alerts import emails
from vigint.cli.apikeys import successor_label
from vigint.config import AlertSettings, EmailSettings, Settings, StorageSettings

GRACE_SECONDS = 3.0


@pytest.fixture
def vigint(cli):
    """The real CLI, in a worker thread: it runs its own event loop beside the server's."""
    return lambda *args: asyncio.to_thread(cli, *args)


@pytest.mark.slow  # 5 s of real time through the grace (CI runs pytest -m slow)
@REALTIME
async def test_rotation_lets_both_keys_stream_through_the_grace_then_only_the_new_one(start, tmp_path, mailbox,
                                                                                       vigint):
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                                  email=EmailSettings(smtp_host="127.0.0.1", smtp_port=mailbox.port, security="none"),
                                  alerts=AlertSettings(monitor_seconds=0.1, operator_email="ops@vigint.test")))
    client_id, old_id, old_key = await add_client(server.store)
    _, later_id, later_key = await add_client(server.store, "b@b.test", "Beta")
    write_env(tmp_path, old_key, server)
    agent = await start_agent(tmp_path, "--source", "test", "--camera", "door")
    await read_log_until(agent, "camera door: streaming")
    beta, _ = await open_stream(url(server), later_key, "back")  # Beta streams too: its key is in use

    assert (await vigint("key", "rotate", "--key-id", str(later_id), "--grace-days", "7")).code == 0
    rotated = (await vigint("key", "rotate", "--key-id", str(old_id), "--grace-days", f"{GRACE_SECONDS / 86_400}",
                            "--json")).json()
    expires_at = time.time() + GRACE_SECONDS
    assert rotated["old_key_id"] == old_id and rotated["client_id"] == client_id
    # During the grace, both keys stream: the agent's old one, and the new one.
    new, welcome = await open_stream(url(server), rotated["api_key"], "door-2")
    assert "key_expires_at" not in welcome
    await send_video(new, make_h264(1))
    assert set(server.streams.of_client(client_id)) >= {"door", "door-2"}
    second, welcome = await open_stream(url(server), old_key, "side")  # a new stream of the old key: told at once
    told_expiry = datetime.fromisoformat(rotated["old_key_expires_at"].replace("Z", "+00:00")).timestamp()
    assert abs(protocol.key_expiry(welcome) - told_expiry) < 1
    await second.close()
    listed = (await vigint("key", "list")).out
    assert re.search(r"active, expires in \d min", listed) and "active, expires in 6 days" in listed
    # The agent streaming all along is told too, and says so in its log (and live view).
    told = await read_log_until(agent, "API key expires in", timeout=5)
    assert "API key expires in 1 min: ask your Vigint operator for its successor" in told

    # After it, the old key's stream is closed with 4401 (the agent stops, naming the key), the new one streams on.
    code, log = await stop_when_done(agent, timeout=GRACE_SECONDS + 10)
    assert time.time() >= expires_at - 0.5
    assert code == 3 and f"refused the API key {old_key[:10]}… (invalid, revoked or expired)" in log
    await send_video(new, make_h264(1))
    await eventually(lambda: server.streams.of_client(client_id)["door-2"].analysis.frames_decoded >= 30)
    assert set(server.streams.of_client(client_id)) == {"door-2"}

    # The operator was warned once, of the key in use that expires within 3 days, not of Beta's (7 days).
    [warning] = await eventually(lambda: [m for m in mailbox.messages if m["To"] == "ops@vigint.test"])
    assert warning["Subject"] == f"[Vigint] key {old_key[:10]}… of client {client_id} (Acme) expires in 1 min"
    body = emails.text_of(warning)
    assert f"vigint key rotate --key-id {old_id} --handover" in body and "stops working on" in body
    await asyncio.sleep(0.5)  # several monitor passes later: still one
    assert [m["Subject"] for m in mailbox.messages if m["To"] == "ops@vigint.test"] == [warning["Subject"]]
    await new.close()
    await beta.close()


def test_a_successor_s_label_names_the_day_of_its_rotation_once():
    day = 1_769_860_800.0  # 2026-01-31 12:00 UTC
    assert successor_label("site-2", day) == "site-2 (rotated 2026-01-31)"
    assert successor_label("site-2 (rotated 2025-06-01)", day) == "site-2 (rotated 2026-01-31)"
    assert successor_label("", day) == "(rotated 2026-01-31)"


def test_only_a_key_in_use_can_be_rotated_and_the_grace_is_not_negative(cli):
    created = cli("client", "create", "--name", "Acme", "--email", "ops@acme.test", "--json").json()
    key_id = str(created["key_id"])
    assert "--grace-days must be a number of days, 0 or more" in cli("key", "rotate", "--key-id", key_id,
                                                                      "--grace-days", "-1").err
    rotated = cli("key", "rotate", "--key-id", key_id, "--grace-days", "0")
    assert rotated.code == 0 and "VIGINT_API_KEY=vig_" in rotated.out
    again = cli("key", "rotate", "--key-id", key_id)
    assert again.code == 1 and "key 1 is expired: only a key in use can be rotated" in again.err
    assert cli("key", "rotate", "--key-id", "42").err == "vigint: error: no key with id 42\n"
    keys = {key["id"]: key for key in cli("key", "list", "--json").json()}
    assert keys[created["key_id"]]["state"] == "expired" and keys[2]["label"].startswith("(rotated ")
    audit = [entry["action"] for entry in cli("audit", "--json").json()]
    assert audit[:2] == ["key.rotate", "key.create"]


def test_a_key_handed_over_prints_a_link_and_waits_for_its_pick_up(cli, monkeypatch):
    monkeypatch.setenv("VIGINT_WEB_PUBLIC_URL", "https://vigint.example.test/")
    client_id = cli("client", "create", "--name", "Acme", "--email", "ops@acme.test", "--json").json()["client_id"]
    shown = cli("key", "create", "--client-id", str(client_id), "--name", "site-2", "--handover")
    assert shown.code == 0 and "VIGINT_API_KEY" not in shown.out and "vig_" in shown.out  # the prefix only
    assert re.search(r"^https://vigint\.example\.test/keys/[\w-]{43}$", shown.out, re.M)
    assert "it shows the key once, until" in shown.out
    document = cli("key", "create", "--client-id", str(client_id), "--handover", "--json").json()
    assert set(document) == {"client_id", "key_id", "handover_url", "handover_expires_at"}
    hours = (datetime.fromisoformat(document["handover_expires_at"].replace("Z", "+00:00")).timestamp()
             - time.time()) / 3600
    assert 47.9 < hours <= 48  # [web] handover_hours
    table = cli("key", "list", "--client-id", str(client_id)).out
    assert table.count("awaiting pick-up until") == 2 and "site-2" in table
    [client] = cli("client", "list", "--json").json()
    assert [key["handover"] and key["handover"]["state"] for key in client["keys"]] == [None, "awaiting_pickup",
                                                                                       "awaiting_pickup"]
