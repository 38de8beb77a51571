"""What the benchmarks share: their footage, the reference decode, a real `vigint serve`, paced streams, and a
measured step of them.

A server runs the code of a `src` folder (the working tree's, or a baseline commit's checked out by
`checkout`) on a database made by that same code (`make_database`), so a baseline older than the schema
still opens it. Run as a script, it makes that database: `python bench/harness.py make-keys DB COUNT`.
"""

import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import av  # noqa: E402
from footage import make_footage  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from vigint import keys, protocol  # noqa: E402
from vigint.agent import testpattern  # noqa: E402
from vigint.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
IDLE_WARM_UP_SECONDS = 12.0  # idle_after_seconds (10) and a margin
MAX_WARM_UP_SECONDS = 60.0  # many streams starting at once overload the full decode of their first seconds
SETTLE_SECONDS = 3.0  # the decode queues of a full-decode warm-up drain
SETTLE_AFTER_SECONDS = 2.0  # ended streams' last work (closing, decoding what their rings hold) is done


def camera_video() -> testpattern.EncodedVideo:
    """Return 10 s of a busy 720p15 2 Mbps camera stream, the benchmarks' load: constant motion."""
    print("Encoding 10 s of the busy 720p15 2 Mbit/s test pattern…", flush=True)
    # veryfast, like a camera, uses CABAC and the deblocking filter; ultrafast streams decode 3x cheaper.
    return testpattern.encode(10, width=1280, height=720, fps=15, gop=30, bitrate=2_000_000, busy=True,
                              preset="veryfast")


def still_video() -> testpattern.EncodedVideo:
    """Return 10 s of a still 720p15 camera: a textured room with sensor noise, x264 veryfast at 2 Mbit/s,
    a keyframe every 2 s. Its noise keeps every frame's bits spent, as on a real camera."""
    print("Encoding 10 s of a still 720p15 2 Mbit/s room…", flush=True)
    return make_footage(10, 2, noise=2.0, width=1280, height=720, bitrate=2_000_000)


def reference_cpu_per_frame(video: testpattern.EncodedVideo, workdir: Path,
                            runs: int = 5) -> tuple[str, float]:
    """Return the reference decoder's name and its median CPU seconds per frame on `video` over `runs`.

    The reference is Debian's `ffmpeg -threads 1 -f null -` when on PATH, else PyAV's own demux-decode
    with one thread (the same FFmpeg libraries the server uses, and cheaper than the `ffmpeg` program)."""
    stream = workdir / "reference.h264"
    stream.write_bytes(b"".join(unit[3] for unit in video.units))
    if shutil.which("ffmpeg"):
        name = "ffmpeg -threads 1 -f null -"
        decode = _ffmpeg_cpu
    else:
        name = "PyAV demux-decode, 1 thread"
        decode = _pyav_cpu
    return name, statistics.median(decode(stream) for _ in range(runs)) / video.frames


def _ffmpeg_cpu(stream: Path) -> float:
    before = os.times()
    subprocess.run(["ffmpeg", "-v", "error", "-threads", "1", "-f", "h264", "-i", str(stream),
                    "-f", "null", "-"], check=True)
    after = os.times()
    return (after.children_user + after.children_system) - (before.children_user + before.children_system)


def _pyav_cpu(stream: Path) -> float:
    with av.open(str(stream), format="h264") as container:
        container.streams.video[0].codec_context.thread_count = 1
        began = time.process_time()
        for _ in container.decode(video=0):
            pass
        return time.process_time() - began


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_rss(pid: int) -> int:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())[1]) * 1024


def scrape(port: int) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {name: float(value) for name, value in re.findall(r"^(\S+) (\S+)$", text, re.M)}


def lag_p99(before: dict, after: dict) -> float | None:
    """p99 of receipt-to-ring delay during a step, from the histogram's bucket deltas; None if no frame
    reached a ring after a wait (idle streams decode their keyframes without one)."""
    buckets = []
    for name, value in after.items():
        if match := re.fullmatch(r'vigint_decode_lag_seconds_bucket\{le="(.+)"\}', name):
            buckets.append((float(match[1]), value - before.get(name, 0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    return next((bound for bound, cumulative in buckets if total and cumulative >= 0.99 * total), None)


async def paced_stream(url: str, api_key: str, camera: str, video, seconds: float,
                       late: list[float]) -> None:
    async with connect(url, max_size=None) as connection:
        await connection.send(json.dumps({"type": "hello", "version": 1, "key": api_key, "camera": camera}))
        json.loads(await connection.recv())
        began = time.monotonic()
        base = int(time.time() * 1e6)
        period = video.units[-1][1] + 1_000_000 // video.fps
        index = 0
        while True:
            loop, position = divmod(index, video.frames)
            pts, dts, _, data = video.units[position]
            due = (loop * period + dts) / 1e6
            if due >= seconds:
                return
            delay = began + due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late.append(-delay)
            offset = base + loop * period
            await connection.send(protocol.media(offset + pts, offset + dts, data))
            index += 1


async def warm_up(port: int, seconds: float, idle: int) -> None:
    """Wait `seconds`; with `idle`, also until that many streams are idle (at most MAX_WARM_UP_SECONDS in
    all) and the decode queues of their full-decode start have drained."""
    await asyncio.sleep(seconds)
    if not idle:
        return
    await asyncio.sleep(max(0.0, IDLE_WARM_UP_SECONDS - seconds))
    deadline = time.monotonic() + MAX_WARM_UP_SECONDS - max(seconds, IDLE_WARM_UP_SECONDS)
    while scrape(port).get('vigint_streams{mode="idle"}', 0) < idle and time.monotonic() < deadline:
        await asyncio.sleep(1)
    await asyncio.sleep(SETTLE_SECONDS)


@dataclass(frozen=True)
class Step:
    """One measured window of paced streams into one server: `before` and `at_end` are the server's metrics
    as it opened and closed, streams still open; `sent` and `decoded` count the frames of the window."""

    streams: int
    seconds: float  # the window's length as measured
    cpu_per_stream_second: float
    rss: int
    sent: int
    decoded: float
    p99: float | None
    sender_late_p99: float
    before: dict[str, float]
    at_end: dict[str, float]

    def change(self, name: str) -> float:
        """How much the server's metric `name` grew during the window."""
        return self.at_end.get(name, 0) - self.before.get(name, 0)


async def run_step(port: int, pid: int, api_keys: list[str], videos: list, seconds: float,
                   warm_up_seconds: float = 0.0, idle: int = 0, cameras: list[str] | None = None) -> Step:
    """Stream each of `videos` on a camera of its own (named by `cameras`, else new ones: their settings and
    state start afresh), paced; after the warm-up (see `warm_up`) measure the server's CPU per stream-second
    over `seconds`, then end the streams."""
    url = f"ws://127.0.0.1:{port}{protocol.PATH}"
    late: list[float] = []
    length = (MAX_WARM_UP_SECONDS if idle else warm_up_seconds) + seconds + 5  # the window ends them
    stamp = time.monotonic_ns()
    cameras = cameras or [f"cam-{index}-{stamp}" for index in range(len(videos))]
    streams = [asyncio.ensure_future(paced_stream(url, api_keys[index % len(api_keys)], camera, video,
                                                  length, late))
               for index, (camera, video) in enumerate(zip(cameras, videos))]
    try:
        await warm_up(port, warm_up_seconds, idle)
        before = scrape(port)
        cpu_before = process_cpu(pid)
        began = time.monotonic()
        await asyncio.sleep(seconds)
        at_end = scrape(port)
        cpu = process_cpu(pid) - cpu_before
        elapsed = time.monotonic() - began
        rss = process_rss(pid)
    finally:
        for task in streams:
            task.cancel()
        outcomes = await asyncio.gather(*streams, return_exceptions=True)
    if failed := [outcome for outcome in outcomes if isinstance(outcome, Exception)]:
        raise failed[0]  # a refused or broken stream: the window did not measure what it says
    await asyncio.sleep(SETTLE_AFTER_SECONDS)
    # live frames: not those of a backfill
    decoded = sum((at_end[name] - before[name]) * sign for name, sign in
                  (("vigint_frames_decoded_total", 1), ("vigint_backfill_frames_decoded_total", -1)))
    return Step(streams=len(videos), seconds=elapsed, cpu_per_stream_second=cpu / (len(videos) * elapsed),
                rss=rss, sent=round(sum(video.fps for video in videos) * elapsed), decoded=decoded,
                p99=lag_p99(before, at_end), before=before, at_end=at_end,
                sender_late_p99=sorted(late)[int(0.99 * len(late))] if late else 0.0)


async def hello_times(port: int, api_keys: list[str], samples: int = 300,
                      prefix: str = "latency") -> list[float]:
    """Send `samples` hellos one after the other, each on a new connection with the next of `api_keys` (in
    turn) and a new camera name; return each one's hello→welcome time in seconds, sorted."""
    url = f"ws://127.0.0.1:{port}{protocol.PATH}"
    times = []
    for index in range(samples):
        async with connect(url) as connection:
            began = time.perf_counter()
            hello = {"type": "hello", "version": 1, "key": api_keys[index % len(api_keys)],
                     "camera": f"{prefix}-{index}"}
            await connection.send(json.dumps(hello))
            await connection.recv()
            times.append(time.perf_counter() - began)
    return sorted(times)


async def hello_latency(port: int, api_keys: list[str], samples: int = 300) -> float:
    times = await hello_times(port, api_keys, samples)
    return times[int(0.99 * len(times))]


def _code(src: Path | None) -> dict[str, str]:
    """The environment that makes a child Python import vigint from `src` (None: as this process does)."""
    return {**os.environ, "PYTHONPATH": str(src)} if src else dict(os.environ)


@dataclass(frozen=True)
class Serving:
    """A running `vigint serve`: its stream port, its page's port and its process."""

    port: int
    page_port: int
    pid: int


@contextmanager
def serving(workdir: Path, db: Path | str, src: Path | None = None,
            settings: dict[str, str] | None = None) -> Iterator[Serving]:
    """Run `vigint serve` from `src` (a checkout's src folder; None: the vigint this process imports) on free
    ports with `db` (a SQLite file or a ``postgresql://`` URL) and the environment variables of `settings`
    (`VIGINT_*` settings, `MALLOC_ARENA_MAX`) while the block runs, then remove `workdir`. One client
    streams every camera and one address sends every hello: the limits on both are lifted."""
    command = [sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", "0", "--db", str(db)]
    server = subprocess.Popen(command,
                              cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              # as deployed (scripts/vigint-serve.service): fewer malloc arenas
                              env={**_code(src), "MALLOC_ARENA_MAX": "2",
                                   "VIGINT_SERVER_MAX_STREAMS_PER_CLIENT": "1000",
                                   "VIGINT_SERVER_MAX_PENDING_HELLOS_PER_ADDRESS": "1000",
                                   # a node on a shared (PostgreSQL) database needs the nodes' common secret
                                   "VIGINT_ALERTS_LINK_SECRET": secrets.token_hex(32), **(settings or {})})
    try:
        banner = "".join(server.stdout.readline() for _ in range(3))  # its name, where it listens, its page
        if (listening := re.search(r"listening .*127\.0\.0\.1:(\d+).*\n.*page .*:(\d+)/", banner)) is None:
            raise SystemExit(f"vigint serve did not start (run it by hand with --db {db} to see why)")
        yield Serving(int(listening[1]), int(listening[2]), server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


async def make_keys(db: Path, count: int) -> list[str]:
    made = []
    async with await Store.open(db) as store:
        api_key = keys.generate()
        client, _ = await store.create_client("Bench", "bench@example.com", keys.hash_key(api_key),
                                              keys.display_prefix(api_key))
        made.append(api_key)
        while len(made) < count:
            api_key = keys.generate()
            await store.create_key(client.id, keys.hash_key(api_key), keys.display_prefix(api_key))
            made.append(api_key)
    return made


def make_database(db: Path, count: int, src: Path) -> list[str]:
    """Make `db` with `count` API keys of one client by the code of `src`, the code that will serve it;
    return the keys."""
    made = subprocess.run([sys.executable, __file__, "make-keys", str(db), str(count)], env=_code(src),
                          check=True, stdout=subprocess.PIPE, text=True)
    return made.stdout.split()


@contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """Check `commit` out, detached, in a temporary git worktree while the block runs; yield its folder.
    The worktree is removed after the block, also when it fails or is interrupted."""
    folder = Path(tempfile.mkdtemp(prefix="vigint-baseline-"))
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit],
                       check=True, stdout=subprocess.DEVNULL)
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:2] == ["make-keys"]:
    print("\n".join(asyncio.run(make_keys(Path(sys.argv[2]), int(sys.argv[3])))))
