"""Ingest benchmark: N paced 720p15 2 Mbps streams into a real `vigint serve`, N stepped up.

Prints, per step, the server's CPU per stream as a ratio to a single-threaded FFmpeg decode of the same
stream measured in this run, p99 delay from receipt to frame in the ring, RSS per stream, and whether
the step kept up in real time; then hello→welcome p99 with 10,000 keys in the database.

    python bench/ingest.py [--seconds 30] [--steps 1,4,8,12,16,20,24,28]

The reference is Debian's `ffmpeg -threads 1 -f null -` when on PATH, else PyAV's own demux-decode
with one thread (the same FFmpeg libraries the server uses).
"""

import argparse
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
from pathlib import Path

import av
from websockets.asyncio.client import connect

from vigint import keys, protocol
from vigint.agent import testpattern
from vigint.store import Store

TICKS = os.sysconf("SC_CLK_TCK")
GOOD_P99_SECONDS = 0.5  # receipt-to-ring p99 above this, or skipped frames, is not real time


def camera_video() -> testpattern.EncodedVideo:
    """Return 10 s of a busy 720p15 2 Mbps camera stream, the benchmarks' load."""
    print("Encoding 10 s of 720p15 2 Mbps test pattern…", flush=True)
    # veryfast, like a camera, uses CABAC and the deblocking filter; ultrafast streams decode 3x cheaper.
    return testpattern.encode(10, width=1280, height=720, fps=15, gop=30, bitrate=2_000_000, busy=True,
                              preset="veryfast")


def reference_cpu_per_frame(video: testpattern.EncodedVideo, workdir: Path,
                            runs: int = 5) -> tuple[str, float]:
    """Return the reference decoder's name and its median CPU seconds per frame on `video` over `runs`."""
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


def lag_p99(before: dict, after: dict) -> float:
    """p99 of receipt-to-ring delay during a step, from the histogram's bucket deltas."""
    buckets = []
    for name, value in after.items():
        if match := re.fullmatch(r'vigint_decode_lag_seconds_bucket\{le="(.+)"\}', name):
            buckets.append((float(match[1]), value - before.get(name, 0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    return next((bound for bound, cumulative in buckets if total and cumulative >= 0.99 * total),
                float("inf"))


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


async def run_step(port: int, pid: int, api_keys: list[str], count: int, video, seconds: float) -> dict:
    url = f"ws://127.0.0.1:{port}{protocol.PATH}"
    before = scrape(port)
    cpu_before = process_cpu(pid)
    late: list[float] = []
    await asyncio.gather(*(paced_stream(url, api_keys[i], f"cam-{i}", video, seconds, late)
                           for i in range(count)))
    rss = process_rss(pid)
    await asyncio.sleep(1.0)  # let the decoders drain
    after = scrape(port)
    cpu = process_cpu(pid) - cpu_before
    sent = count * int(seconds * video.fps)
    # live frames: not those of a backfill
    decoded = sum((after[name] - before[name]) * sign for name, sign in
                  (("vigint_frames_decoded_total", 1), ("vigint_backfill_frames_decoded_total", -1)))
    sender_late_p99 = sorted(late)[int(0.99 * len(late))] if late else 0
    return {"streams": count, "cpu_per_stream_second": cpu / (count * seconds), "decoded": decoded,
            "sent": sent, "p99": lag_p99(before, after), "rss": rss, "sender_late_p99": sender_late_p99}


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


@contextmanager
def serving(workdir: Path, db: Path | str) -> Iterator[tuple[int, int]]:
    """Run `vigint serve` on a free port with `db` (a SQLite file or a ``postgresql://`` URL) while the block
    runs, then remove `workdir`; yield the server's port and pid. One client streams every camera and one
    address sends every hello: the limits on both are lifted."""
    command = [sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", "0", "--db", str(db)]
    server = subprocess.Popen(command,
                              cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "VIGINT_SERVER_MAX_STREAMS_PER_CLIENT": "1000",
                                   "VIGINT_SERVER_MAX_PENDING_HELLOS_PER_ADDRESS": "1000",
                                   # a node on a shared (PostgreSQL) database needs the nodes' common secret
                                   "VIGINT_ALERTS_LINK_SECRET": secrets.token_hex(32)})
    try:
        banner = server.stdout.readline() + server.stdout.readline()
        if (listening := re.search(r"127\.0\.0\.1:(\d+)", banner)) is None:
            raise SystemExit(f"vigint serve did not start (run it by hand with --db {db} to see why)")
        yield int(listening[1]), server.pid
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each step")
    parser.add_argument("--steps", default="1,4,8,12,16,20,24,28", help="stream counts to try, in order")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vigint-bench-"))
    video = camera_video()
    reference, per_frame = reference_cpu_per_frame(video, workdir)
    reference_per_stream_second = per_frame * video.fps
    print(f"reference ({reference}): {per_frame * 1000:.2f} ms CPU a frame = {1 / per_frame:.0f} frames/s "
          f"= {reference_per_stream_second * 100:.1f}% of a core per camera")
    db = workdir / "bench.db"
    api_keys = await make_keys(db, 10_000)
    with serving(workdir, db) as (port, pid):
        await asyncio.sleep(1)
        idle_rss = process_rss(pid)
        print(f"\n{'streams':>7} {'CPU/stream':>10} {'ratio':>6} {'p99 lag':>8} {'RSS/stream':>10} "
              f"{'decoded':>9} {'real time':>9}")
        best = 0
        for count in map(int, args.steps.split(",")):
            step = await run_step(port, pid, api_keys, count, video, args.seconds)
            ratio = step["cpu_per_stream_second"] / reference_per_stream_second
            kept_up = step["p99"] <= GOOD_P99_SECONDS and step["decoded"] >= 0.99 * step["sent"]
            rss_per_stream = (step["rss"] - idle_rss) / count / 2**20
            sender_note = ""
            if step["sender_late_p99"] > 0.05:
                sender_note = f"  (sender late p99 {step['sender_late_p99']:.3f}s)"
            print(f"{count:>7} {step['cpu_per_stream_second'] * 100:>9.1f}% {ratio:>6.2f} "
                  f"{step['p99']:>7.3f}s {rss_per_stream:>8.1f}MiB {int(step['decoded']):>9} "
                  f"{'yes' if kept_up else 'NO':>9}" + sender_note,
                  flush=True)
            if not kept_up:
                break
            best = count
        print(f"\nlargest N sustained in real time: {best} (target ≥ 20)")
        latency = await hello_latency(port, api_keys)
        print(f"hello→welcome p99 with {len(api_keys):,} keys: {latency * 1000:.2f} ms (target ≤ 5 ms)")


if __name__ == "__main__":
    asyncio.run(main())
