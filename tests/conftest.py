"""Shared fixtures: a temporary database, the real CLI in-process, real servers, a mailbox, S3 and PostgreSQL.
What tests import lives in helpers.py: a test never imports this module."""

import dataclasses
import os
import time
from pathlib import Path

import postgres_server
import pytest
from helpers import SELLER, Mailbox, Result, serving

from vigint.cli.main import main
from vigint.config import DatabaseSettings, ServerSettings, Settings, StorageSettings
from vigint.serve.server import Server
from vigint.store import Store

# pytest-xdist's workers set COLUMNS=80, which the CLI honours as the reader's screen width (a table then
# wraps its values and drops optional columns); tests that want a width say so in the environment they pass.
os.environ.pop("COLUMNS", None)


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


@pytest.fixture
async def start(db_path, tmp_path):
    """Start a real server on 127.0.0.1 port 0 with the given [server] settings, on the test's SQLite file or the
    given `database`; stopped after the test. Several servers on one PostgreSQL `database` are several nodes."""
    started = []

    async def run(settings: Settings | None = None, database: str | None = None, clock=time.time,
                  **server_settings) -> Server:
        # Tests send video faster than real time: let the decode queue hold all of it unless told otherwise.
        server_settings = {"port": 0, "usage_flush_seconds": 0.2, "max_decode_backlog_seconds": 10_000,
                           "max_decode_catchup_seconds": 10_000, "max_decode_backlog_bytes": 2**30, **server_settings}
        database = database or str(db_path)
        settings = settings or Settings(storage=StorageSettings(data_dir=tmp_path / "data"))
        settings = dataclasses.replace(settings, database=DatabaseSettings(database),
                                       server=ServerSettings(**server_settings),
                                       web=dataclasses.replace(settings.web, port=0))
        store = await Store.open(database)
        server = Server(settings, store, clock)  # a test's clock arms cameras at its own date
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


@pytest.fixture
def mailbox():
    with serving(Mailbox()) as box:
        yield box


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
