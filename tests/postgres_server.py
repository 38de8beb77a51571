"""A real PostgreSQL server for tests: Debian's binaries, one throwaway cluster per test process on loopback,
and a fresh schema per test (a ``search_path`` in the URL), so tests never see each other's rows."""

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A PostgreSQL server in a temporary folder, trusting local connections; `stop` removes it all."""

    def __init__(self):
        self.bin = _binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="vigint-pg-"))
        self.port = _free_port()
        # PostgreSQL refuses to run as root: CI runs as root, so the cluster then belongs to `postgres`.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.folder, "postgres")

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, text=True, timeout=60)

    def start(self, durable: bool = False) -> None:
        """Start the server: for tests without fsync (nothing here must survive a crash); `durable` keeps
        PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on), as a deployment would."""
        data = self.folder / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w",
                  "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def base_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_schema(self) -> str:
        """Create an empty schema; return a URL whose connections use it."""
        name = f"t_{secrets.token_hex(6)}"
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                        "-c", f"CREATE SCHEMA {name}"], check=True, capture_output=True, timeout=30)
        return f"{self.base_url}?search_path={name}"


def start_cluster(durable: bool = False) -> Cluster | str:
    """Start a cluster (`durable`: see `Cluster.start`); return it, or why none can run here (the tests that
    need it are skipped with it)."""
    cluster = Cluster()
    if cluster.bin is None or shutil.which("psql") is None:
        return "PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it)"
    try:
        import asyncpg  # noqa: F401 - the postgres extra
    except ImportError:
        return "asyncpg is not installed (pip install -e '.[dev]')"
    started = time.monotonic()
    try:
        cluster.start(durable)
    except (OSError, subprocess.SubprocessError) as error:
        cluster.stop()
        return f"PostgreSQL did not start: {getattr(error, 'stderr', '') or error}"
    cluster.started_in = time.monotonic() - started
    return cluster
