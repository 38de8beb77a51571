"""Scale-out benchmark: the same `vigint serve` on a SQLite file and on PostgreSQL, side by side in one run.

Starts a throwaway PostgreSQL cluster (Debian's binaries, as the tests do, but with PostgreSQL's durable
defaults: fsync, synchronous_commit and full_page_writes on), fills both databases with `--keys` API keys
(hashes of real keys), runs one server on each, both at once, and measures:

- the server's CPU per stream for N paced busy 720p15 streams (bench/harness.py's streams and steps), on
  each engine in turn (ABBA order over `--rounds`, so drift in the machine's other load falls on both), as a
  ratio to the same run's single-threaded decode and PG ÷ SQLite; PostgreSQL's own CPU beside it;
- database writes of the PostgreSQL node per second in a steady window of each step (after its hellos and
  its incidents' first writes, before its streams close), and with no stream at all: write transactions
  counted exactly by transaction ids assigned (`pg_snapshot_xmax`: only a transaction that writes gets one),
  and WAL bytes. Not `pg_stat_database.xact_commit`: backends report it when idle, up to 10 s late on
  PostgreSQL 15, so a window of seconds would count the step's hellos and incidents too;
- hello→welcome p50/p99 over `--hellos` sequential hellos (a few real keys in turn) with `--keys` keys in
  the database, on each engine.

    python bench/scale.py [--seconds 20] [--steps 8,16] [--rounds 2] [--keys 100000] [--hellos 500]
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import asyncpg  # noqa: E402
import harness  # noqa: E402
from postgres_server import start_cluster  # noqa: E402

from vigint import keys  # noqa: E402
from vigint.store import Store  # noqa: E402

LIVE_KEYS = 64  # keys whose plaintext the streams and hellos use; the rest only fill the index
STEADY_AFTER_SECONDS = 8.0  # a step's hellos and its incidents' row, clip and alert writes are over by then
STEADY_BEFORE_END_SECONDS = 1.0  # and its streams still open until then
IDLE_WINDOW_SECONDS = 10.0  # two usage flushes and two lease renewals (every 5 s by default)


async def fill(target: str, api_keys: list[str]) -> None:
    """Create one client holding `api_keys` (stored as their hashes, as `vigint key create` would)."""
    async with await Store.open(target) as store:
        first = api_keys[0]
        client, _ = await store.create_client("Bench", "bench@example.com", keys.hash_key(first),
                                              keys.display_prefix(first))
        now = time.time()
        async with store._transaction() as db:  # one bulk insert: 100,000 create_key calls would take minutes
            await db.executemany(
                "INSERT INTO api_keys (client_id, hash, prefix, label, created_at) VALUES (?, ?, ?, '', ?)",
                [(client.id, keys.hash_key(key), keys.display_prefix(key), now) for key in api_keys[1:]])
            if store.shared:  # PostgreSQL's autovacuum would analyse the table within a minute anyway
                await db.execute("ANALYZE api_keys")


class Counters:
    """The PostgreSQL cluster's write counters and its processes' CPU, read from outside the node."""

    def __init__(self, connection, postmaster: int):
        self._connection, self._postmaster = connection, postmaster

    async def read(self) -> dict[str, float]:
        row = await self._connection.fetchrow(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xids, "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS wal")
        return {**dict(row), "cpu": self.cpu(), "at": time.monotonic()}

    def cpu(self) -> float:
        """CPU seconds of the postmaster and all its children (backends, WAL writer, checkpointer…)."""
        total = 0.0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(entry.name) == self._postmaster or int(fields[1]) == self._postmaster:
                    total += harness.process_cpu(int(entry.name))
        return total


def rates(before: dict, after: dict) -> dict[str, float]:
    """Per-second rates of the counters between two readings."""
    seconds = after["at"] - before["at"]
    return {name: (after[name] - before[name]) / seconds for name in ("xids", "wal", "cpu")}


async def steady_window(counters: Counters, seconds: float) -> dict[str, float]:
    """Rates over a step's steady part: after its hellos and incident writes, before its streams close."""
    await asyncio.sleep(STEADY_AFTER_SECONDS)
    before = await counters.read()
    await asyncio.sleep(seconds - STEADY_AFTER_SECONDS - STEADY_BEFORE_END_SECONDS)
    return rates(before, await counters.read())


async def measure(engine: str, server: harness.Serving, api_keys: list[str], count: int, video,
                  seconds: float, counters: Counters) -> dict:
    """One step on one engine: bench/harness.py's step, plus PostgreSQL's CPU and write rates beside it."""
    port = server.port
    pid = server.pid
    if engine == "sqlite":
        return vars(await harness.run_step(port, pid, api_keys, [video] * count, seconds))
    began = await counters.read()
    step, steady = await asyncio.gather(harness.run_step(port, pid, api_keys, [video] * count, seconds),
                                        steady_window(counters, seconds))
    whole = rates(began, await counters.read())
    return {**vars(step), "db_cpu_per_stream_second": whole["cpu"] / count, "steady": steady}


def show_step(engine: str, count: int, step: dict, reference: float) -> None:
    """Print one step's row."""
    line = (f"{count:>7} {engine:>10} {step['cpu_per_stream_second'] * 100:>9.2f}% "
            f"{step['cpu_per_stream_second'] / reference:>6.3f} {step['p99']:>7.3f}s "
            f"{int(step['decoded']):>8}/{step['sent']:<6}")
    if "steady" in step:
        steady = step["steady"]
        line += (f" {step['db_cpu_per_stream_second'] * 100:>8.2f}%   {steady['xids']:>5.2f}"
                 f" {steady['wal'] / 1024:>9.1f}")
    print(line, flush=True)


async def main() -> None:
    """Parse the options, start the cluster, run everything, stop the cluster."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each streaming step")
    parser.add_argument("--steps", default="8,16", help="stream counts to try")
    parser.add_argument("--rounds", type=int, default=2, help="steps per engine and count (ABBA order)")
    parser.add_argument("--keys", type=int, default=100_000, help="API keys in each database")
    parser.add_argument("--hellos", type=int, default=500, help="sequential hellos timed on each engine")
    args = parser.parse_args()
    began = time.monotonic()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} cores", flush=True)
    cluster = start_cluster(durable=True)
    if isinstance(cluster, str):
        sys.exit(f"cannot run: {cluster}")
    try:
        await run(args, cluster)
    finally:
        cluster.stop()
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"whole run {time.monotonic() - began:.0f} s")


async def run(args: argparse.Namespace, cluster) -> None:
    """Fill both databases, serve both at once and measure them."""
    workdir = Path(tempfile.mkdtemp(prefix="vigint-bench-"))
    admin = await asyncpg.connect(cluster.base_url)
    await admin.execute("CREATE DATABASE vigint")
    settings = {row["name"]: row["setting"] for row in await admin.fetch(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', "
        "'full_page_writes', 'shared_buffers', 'wal_level', 'server_version')")}
    print("PostgreSQL " + ", ".join(f"{name}={value}" for name, value in sorted(settings.items()))
          + " (shared_buffers in 8 kB pages), on loopback TCP, on the same cores")
    postmaster = int((cluster.folder / "data" / "postmaster.pid").read_text().split()[0])
    counters = Counters(admin, postmaster)
    video = harness.camera_video()
    name, per_frame = harness.reference_cpu_per_frame(video, workdir)
    reference = per_frame * video.fps
    print(f"reference ({name}): {reference * 100:.2f}% of a core per camera")
    made = time.monotonic()
    api_keys = [keys.generate() for _ in range(args.keys)]
    print(f"{args.keys:,} keys generated in {time.monotonic() - made:.1f} s", flush=True)
    targets = {"sqlite": str(workdir / "sqlite" / "bench.db"),
               "postgresql": cluster.base_url.rpartition("/")[0] + "/vigint"}
    for engine, target in targets.items():
        (workdir / engine).mkdir()
        filled = time.monotonic()
        await fill(target, api_keys)
        print(f"{args.keys:,} keys into {engine} in {time.monotonic() - filled:.1f} s", flush=True)
    live = api_keys[:LIVE_KEYS]
    with ExitStack() as stack:
        servers = {engine: stack.enter_context(harness.serving(workdir / engine, target))
                   for engine, target in targets.items()}
        await asyncio.sleep(2)
        idle = await idle_window(counters)
        await stream_steps(args, servers, live, video, reference, counters)
        print(f"\nPostgreSQL node with no stream: {idle['xids']:.2f} write transactions/s, "
              f"{idle['wal'] / 1024:.1f} KiB WAL/s, "
              f"PostgreSQL CPU {idle['cpu'] * 100:.2f}% of a core")
        await hellos(args, servers, live)
    await admin.close()
    shutil.rmtree(workdir, ignore_errors=True)


async def idle_window(counters: Counters) -> dict[str, float]:
    """PostgreSQL's rates while its node has no stream."""
    before = await counters.read()
    await asyncio.sleep(IDLE_WINDOW_SECONDS)
    return rates(before, await counters.read())


async def stream_steps(args, servers: dict, live: list[str], video, reference: float,
                       counters: Counters) -> None:
    """Each step on each engine in ABBA order, then the summary per stream count."""
    print(f"\n{'streams':>7} {'engine':>10} {'CPU/stream':>10} {'÷ ref':>6} {'p99 lag':>8} "
          f"{'decoded/sent':>15} {'PG CPU/str':>10} {'wr tx/s':>7} {'WAL KiB/s':>9}")
    summary = []
    for count in map(int, args.steps.split(",")):
        results: dict[str, list[dict]] = {engine: [] for engine in servers}
        for round_ in range(args.rounds):
            for engine in (list(servers) if round_ % 2 == 0 else list(servers)[::-1]):
                step = await measure(engine, servers[engine], live, count, video, args.seconds, counters)
                results[engine].append(step)
                show_step(engine, count, step, reference)
        summary.append((count, results))
    print(f"\n{'streams':>7} {'SQLite ÷ ref':>12} {'PG ÷ ref':>9} {'PG ÷ SQLite':>11} {'+ PG server CPU':>16}"
          f" {'wr tx/s':>8}")
    for count, results in summary:
        sqlite = statistics.mean(step["cpu_per_stream_second"] for step in results["sqlite"])
        pg = statistics.mean(step["cpu_per_stream_second"] for step in results["postgresql"])
        db = statistics.mean(step["db_cpu_per_stream_second"] for step in results["postgresql"])
        writes = statistics.mean(step["steady"]["xids"] for step in results["postgresql"])
        print(f"{count:>7} {sqlite / reference:>12.3f} {pg / reference:>9.3f} {pg / sqlite:>11.3f} "
              f"{(pg + db) / sqlite:>16.3f} {writes:>8.2f}")


async def hellos(args, servers: dict, live: list[str]) -> None:
    """Time sequential hellos on each engine."""
    print(f"\nhello→welcome, {args.hellos} sequential hellos, {args.keys:,} keys in the database:")
    for engine, server in servers.items():
        times = await harness.hello_times(server.port, live, args.hellos, prefix=f"hello-{engine}")
        p50 = times[len(times) // 2]
        p99 = times[int(0.99 * len(times))]
        print(f"{engine:>10}: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
              f"max {times[-1] * 1000:.2f} ms", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
