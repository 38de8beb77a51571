"""Shared fixtures: a temporary database and the real CLI, in-process or as a subprocess."""

import asyncio
import dataclasses
import email
import email.policy
import inspect
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import postgres_server
import pytest
from aiosmtpd.controller import Controller

from vigint import keys, protocol
from vigint.alerts import emails
from vigint.cli.main import main
from vigint.config import DatabaseSettings, ServerSettings, Settings, StorageSettings
from vigint.ingest.server import Server
from vigint.store import Store

# pytest-xdist's workers set COLUMNS=80, which the CLI honours as the reader's screen width (a table then wraps
# its values and drops optional columns); tests that want a width say so in the environment they pass.
os.environ.pop("COLUMNS", None)

# Tests whose assertions hold a latency (a ping, a hello, a second of billing) or that load a core for seconds:
# `pytest -n 3 --dist loadgroup` (the default) runs them one after another on one worker, never two at once.
REALTIME = pytest.mark.xdist_group("realtime")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vigint.db"


@pytest.fixture(scope="session")
def postgres_cluster():
    """A real PostgreSQL server for this test process, or a skip saying why there is none."""
    cluster = postgres_server.start_cluster()
    if isinstance(cluster, str):
        pytest.skip(cluster)
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster) -> str:
    """The URL of an empty database (a fresh schema) on the test PostgreSQL server."""
    return postgres_cluster.new_schema()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    """Each engine in turn: a SQLite file path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "vigint.db")
    return request.getfixturevalue("postgres_url")


# The seller's details an invoice needs ([billing]), as an operator sets them.
SELLER = {"VIGINT_BILLING_SELLER_NAME": "Vigint Ops SARL", "VIGINT_BILLING_SELLER_ADDRESS": "1 rue de la Paix, Paris",
          "VIGINT_BILLING_PAYMENT_DETAILS": "IBAN FR76 3000 6000 0112 3456 7890 189, BIC AGRIFRPP"}


@pytest.fixture
def seller(monkeypatch):
    """The operator's [billing] seller and payment details, set in the environment."""
    for name, value in SELLER.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def cli(db_path, capsys, monkeypatch, tmp_path):
    """Run `vigint ARGS --db <temp db>` in this process; return its exit code and output."""
    monkeypatch.chdir(tmp_path)  # no stray ./config.ini is picked up

    def run(*args: str) -> Result:
        code = main([*args, "--db", str(db_path)])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_vigint(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the real `vigint` executable of this environment in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "vigint", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


async def add_client(store, email: str = "ops@acme.test", name: str = "Acme") -> tuple[int, int, str]:
    """Create a client through the store; return (client id, key id, API key)."""
    api_key = keys.generate()
    client, key = await store.create_client(name, email, keys.hash_key(api_key), keys.display_prefix(api_key))
    return client.id, key.id, api_key


async def eventually(condition, timeout: float = 10.0, interval: float = 0.02):
    """Wait until `condition()` is true (awaited first if it returns an awaitable, e.g. a store query); return
    its value, or fail the test with its last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition still false after {timeout} s: {value!r}")
        await asyncio.sleep(interval)


@pytest.fixture
async def start(db_path, tmp_path):
    """Start a real server on 127.0.0.1 port 0 with the given [server] settings, on the test's SQLite file or the
    given `database`; stopped after the test. Several servers on one PostgreSQL `database` are several nodes."""
    started = []

    async def run(settings: Settings | None = None, database: str | None = None, **server_settings) -> Server:
        # Tests send video faster than real time: let the decode queue hold all of it unless told otherwise.
        server_settings = {"port": 0, "usage_flush_seconds": 0.2, "max_decode_backlog_seconds": 10_000,
                           "max_decode_catchup_seconds": 10_000, "max_decode_backlog_bytes": 2**30, **server_settings}
        database = database or str(db_path)
        settings = settings or Settings(storage=StorageSettings(data_dir=tmp_path / "data"))
        settings = dataclasses.replace(settings, database=DatabaseSettings(database),
                                       server=ServerSettings(**server_settings),
                                       web=dataclasses.replace(settings.web, port=0))
        store = await Store.open(database)
        server = Server(settings, store)
        try:
            await server.start()
        except BaseException:
            await store.close()
            raise
        started.append(server)
        return server

    yield run
    for server in started:
        try:
            await server.stop()
        finally:
            await server.store.close()


class Mailbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 endpoint on loopback (moto's server, see s3.py), started once per test process."""
    from s3 import start_endpoint

    server, endpoint = start_endpoint()
    yield endpoint
    server.stop()


@pytest.fixture
def bucket(s3_endpoint):
    """A new bucket of the loopback S3 endpoint, this test's own."""
    from s3 import Bucket

    return Bucket.create(s3_endpoint)


def link_in(message) -> str:
    """Return the clip link in an alert email."""
    body = emails.text_of(message)
    return next(line for line in body.splitlines() if "/clips/" in line).strip()


def url(server: Server) -> str:
    return f"{'wss' if server.tls else 'ws'}://127.0.0.1:{server.port}{protocol.PATH}"
