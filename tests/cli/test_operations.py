"""`vigint serve` stopping as a person or a service manager stops it, what its banner says, the data folder every
command finds from any folder, and `vigint email test`."""

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, run_vigint

from vigint.alerts.links import clip_link
from vigint.incidents.storage import incident_files
from vigint.store import Store


def test_a_stop_as_soon_as_it_serves_drains_and_exits_0(tmp_path):
    # systemctl stop just after start: the signal handlers are in place before the banner says it serves.
    server = subprocess.Popen([sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", "0",
                               "--db", str(tmp_path / "vigint.db")], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in server.stdout:  # the banner's last line
            if "open-file limit" in line:
                break
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0 and "Draining" in out and "Stopped." in out, err
    assert "Traceback" not in err


@contextlib.contextmanager
def serving(cwd: Path, *flags: str, env: dict | None = None):
    """Run `vigint serve FLAGS` in `cwd` until the block ends; yield its banner and its stream port."""
    server = subprocess.Popen([sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", "0", *flags],
                              cwd=cwd, text=True, env={**os.environ, **(env or {})},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        banner = ""
        for line in server.stdout:
            banner += line
            if "open-file limit" in line:
                break
        assert "open-file limit" in banner, server.communicate(timeout=30)[1]
        yield banner, int(re.search(r"ws://127\.0\.0\.1:(\d+)/", banner)[1])
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
    finally:
        server.kill()


@pytest.mark.slow  # a server and the CLI run from three folders
def test_every_folder_finds_the_databases_data_folder_link_secret_and_clips(tmp_path):
    site, elsewhere, third = tmp_path / "srv", tmp_path / "elsewhere", tmp_path / "third"
    for folder in (site, elsewhere, third):
        folder.mkdir()
    created = run_vigint("client", "create", "--name", "Acme", "--email", "ops@acme.test", "--json", cwd=site)
    client_id = json.loads(created.stdout)["client_id"]
    with serving(site, "--db", "vigint.db") as (banner, _):
        assert f"data       {site / 'vigint-data'}" in banner
    secret = (site / "vigint-data" / "link-secret").read_text()

    async def record_an_incident():  # what a first server left: an incident, its clip and its stills
        async with await Store.open(site / "vigint.db") as store:
            incident = await store.create_incident(client_id, 1, "door", time.time())
            await store.update_incident(incident.id, clip_path=f"clips/{client_id}/{incident.id}.mp4", stills=2)
            incident = await store.get_incident(incident.id)
        for name in incident_files(incident):
            (site / "vigint-data" / name).parent.mkdir(parents=True, exist_ok=True)
            (site / "vigint-data" / name).write_bytes(b"footage " + name.encode())
        return incident

    incident = asyncio.run(record_an_incident())
    with serving(elsewhere, "--db", str(site / "vigint.db")) as (banner, port):  # a new folder, the same data
        assert f"data       {site / 'vigint-data'}" in banner
        assert "relative paths start from the database's folder" in banner
        link = clip_link(f"http://127.0.0.1:{port}", secret, incident, int(time.time()) + 3600)
        with urllib.request.urlopen(link, timeout=10) as answer:  # a link emailed before the move still opens
            assert answer.read() == f"footage clips/{client_id}/{incident.id}.mp4".encode()
    assert not (elsewhere / "vigint-data").exists()
    deleted = run_vigint("--db", str(site / "vigint.db"), "client", "delete", "--client-id", str(client_id), "--yes",
                         cwd=third)
    assert deleted.returncode == 0, deleted.stderr
    assert "3 clip files removed" in deleted.stdout  # the clip and its two stills
    assert not (site / "vigint-data" / "clips" / str(client_id)).exists()


def test_a_command_that_cannot_find_the_clips_refuses_and_changes_nothing(tmp_path):
    created = run_vigint("--db", "vigint.db", "client", "create", "--name", "Acme", "--email", "ops@acme.test",
                         "--json", cwd=tmp_path)
    client_id = json.loads(created.stdout)["client_id"]

    async def record_an_incident():
        async with await Store.open(tmp_path / "vigint.db") as store:
            incident = await store.create_incident(client_id, 1, "door", time.time())
            await store.update_incident(incident.id, clip_path=f"clips/{client_id}/{incident.id}.mp4")

    asyncio.run(record_an_incident())  # its clip is in a data folder this database's settings do not name
    deleted = run_vigint("--db", "vigint.db", "client", "delete", "--client-id", str(client_id), "--yes",
                         cwd=tmp_path, env={"VIGINT_STORAGE_DATA_DIR": "moved-data"})
    assert deleted.returncode == 1
    assert deleted.stderr.startswith(f"vigint: error: no clips folder at {tmp_path / 'moved-data' / 'clips'}")
    assert len(deleted.stderr.splitlines()) == 1
    listed = run_vigint("--db", "vigint.db", "client", "list", "--json", cwd=tmp_path)
    assert [client["id"] for client in json.loads(listed.stdout)] == [client_id]  # nothing was deleted


@pytest.mark.slow  # two servers started as processes
def test_the_banner_says_what_is_off(tmp_path):
    with serving(tmp_path, "--db", "vigint.db") as (banner, _):
        off = banner[banner.index("  off "):banner.index("  files ")]
    assert "email: no [email] smtp_host" in off and "AI check" in off and "TLS" in off
    configured = {"VIGINT_EMAIL_SMTP_HOST": "127.0.0.1", "VIGINT_AI_PROVIDER": "openai"}
    with serving(tmp_path, "--db", "vigint.db", env=configured) as (banner, _):
        off = banner[banner.index("  off "):banner.index("  files ")]
    assert "email:" not in off and "AI check" not in off and "TLS" in off


def test_email_test_sends_through_the_configured_server_and_prints_its_answer(tmp_path, mailbox):
    run_vigint("--db", "vigint.db", "client", "create", "--name", "Acme", "--email", "ops@acme.test", cwd=tmp_path)
    smtp = {"VIGINT_EMAIL_SMTP_HOST": "127.0.0.1", "VIGINT_EMAIL_SMTP_PORT": str(mailbox.port),
            "VIGINT_EMAIL_SECURITY": "none", "VIGINT_EMAIL_SENDER": "alerts@vigint.test"}
    sent = run_vigint("--db", "vigint.db", "email", "test", "--to", "ops@acme.test", cwd=tmp_path, env=smtp)
    assert sent.returncode == 0, sent.stderr
    assert f"through 127.0.0.1:{mailbox.port} (none); the server answered: 250 OK" in sent.stdout
    [message] = mailbox.messages
    assert message["To"] == "ops@acme.test" and message["From"] == "alerts@vigint.test"
    dead = run_vigint("--db", "vigint.db", "email", "test", "--to", "ops@acme.test", cwd=tmp_path,
                      env={**smtp, "VIGINT_EMAIL_SMTP_PORT": str(free_port())})
    assert dead.returncode == 1
    assert dead.stderr.startswith("vigint: error: cannot send through 127.0.0.1:") and "refused" in dead.stderr
    assert len(dead.stderr.splitlines()) == 1
    unset = run_vigint("--db", "vigint.db", "email", "test", "--to", "ops@acme.test", cwd=tmp_path)
    assert unset.returncode == 1 and "email is off: set [email] smtp_host" in unset.stderr


@pytest.mark.slow  # four servers started one after another
def test_status_after_four_restarts_lists_one_node(tmp_path):
    port = free_port()
    for _ in range(4):
        with serving(tmp_path, "--db", "vigint.db", "--port", str(port)):
            pass
    status = run_vigint("--db", "vigint.db", "status", "--json", cwd=tmp_path)
    [node] = json.loads(status.stdout)["nodes"]
    assert node["id"].endswith(f":{port}") and not node["running"]
    with serving(tmp_path, "--db", "vigint.db", "--port", str(port)):
        status = run_vigint("--db", "vigint.db", "status", cwd=tmp_path)
    assert "Server running on 1 node:" in status.stdout and "Nodes" not in status.stdout  # no table of past runs
