"""Idle-analysis benchmark: what still cameras cost once their streams go idle, against a full decode.

Streams N paced copies of a real-looking still 720p15 scene (a textured room with sensor noise, x264
veryfast, 2 Mbit/s, a keyframe every 2 s) into a real `vigint serve`, waits until they are idle (10 s
without motion) and the decode queues of their full-decode start have drained, then measures the
server's CPU per stream over the next `--seconds` and divides it by a
single-threaded FFmpeg decode of the same stream in this run. Then the same for busy streams (the moving
test pattern, which never idles) and for a mixed fleet with one busy camera in ten.

    python bench/idle.py [--seconds 20] [--still 20,60] [--busy 8] [--mixed 20]
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import ingest  # noqa: E402
from footage import make_footage  # noqa: E402

from vigint import protocol  # noqa: E402
from vigint.agent import testpattern  # noqa: E402

WARM_UP_SECONDS = 12.0  # idle_after_seconds (10) and a margin
MAX_WARM_UP_SECONDS = 60.0  # many streams starting at once overload the full decode of their first seconds
SETTLE_SECONDS = 3.0  # the decode queues of that warm-up drain


async def step(port: int, pid: int, api_keys: list[str], videos: list, seconds: float, idle: int) -> dict:
    """Stream each of `videos` (one per camera); once `idle` of them are idle (and the decode queues of the
    full-decode warm-up drained), measure the server's CPU per stream-second over `seconds`."""
    url = f"ws://127.0.0.1:{port}{protocol.PATH}"
    late: list[float] = []
    streams = [asyncio.ensure_future(ingest.paced_stream(url, api_keys[i], f"cam-{i}-{time.monotonic_ns()}",
                                                         video, MAX_WARM_UP_SECONDS + seconds, late))
               for i, video in enumerate(videos)]
    await asyncio.sleep(WARM_UP_SECONDS)
    deadline = time.monotonic() + MAX_WARM_UP_SECONDS - WARM_UP_SECONDS
    while ingest.scrape(port).get('vigint_streams{mode="idle"}', 0) < idle and time.monotonic() < deadline:
        await asyncio.sleep(1)
    await asyncio.sleep(SETTLE_SECONDS)
    before = ingest.scrape(port)
    cpu_before = ingest.process_cpu(pid)
    await asyncio.sleep(seconds)
    after = ingest.scrape(port)
    cpu = ingest.process_cpu(pid) - cpu_before
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    modes = {mode: int(after.get(f'vigint_streams{{mode="{mode}"}}', 0)) for mode in ("active", "idle")}
    wakes = sum(value - before.get(name, 0) for name, value in after.items()
                if name.startswith("vigint_stream_wakes_total"))
    return {"cpu_per_stream_second": cpu / (len(videos) * seconds), "modes": modes, "wakes": wakes}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measured length of each step, after the warm-up")
    parser.add_argument("--still", default="20,60", help="still stream counts to try")
    parser.add_argument("--busy", type=int, default=8, help="busy streams, to check their cost is unchanged")
    parser.add_argument("--mixed", type=int, default=20, help="a fleet with one busy camera in ten")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vigint-bench-"))
    print("Encoding 10 s of a still 720p15 room and of the busy test pattern, 2 Mbit/s, veryfast…",
          flush=True)
    still = make_footage(10, 2, noise=2.0, width=1280, height=720, bitrate=2_000_000)
    busy = testpattern.encode(10, width=1280, height=720, fps=15, gop=30, bitrate=2_000_000, busy=True,
                              preset="veryfast")
    references = {}
    for name, video in (("still", still), ("busy", busy)):
        decoder, per_frame = ingest.reference_cpu_per_frame(video, workdir)
        references[name] = per_frame * video.fps
        print(f"reference ({decoder}), {name}: {references[name] * 100:.2f}% of a core per camera")
    db = workdir / "bench.db"
    api_keys = await ingest.make_keys(db, 200)
    with ingest.serving(workdir, db) as (port, pid):
        print(f"\n{'fleet':>16} {'CPU/stream':>10} {'÷ full decode':>14} {'idle/active at end':>19} "
              f"{'wake-ups':>8}")
        plan = [(f"{n} still", [still] * n, references["still"], n) for n in map(int, args.still.split(","))]
        plan.append((f"{args.busy} busy", [busy] * args.busy, references["busy"], 0))
        busy_count = max(1, args.mixed // 10)
        mix = [busy] * busy_count + [still] * (args.mixed - busy_count)
        mixed_reference = (busy_count * references["busy"]
                           + (args.mixed - busy_count) * references["still"]) / args.mixed
        plan.append((f"{args.mixed} mixed", mix, mixed_reference, args.mixed - busy_count))
        for label, videos, reference, idle in plan:
            result = await step(port, pid, api_keys, videos, args.seconds, idle)
            per_stream = result["cpu_per_stream_second"]
            print(f"{label:>16} {per_stream * 100:>9.2f}% {per_stream / reference:>14.3f}"
                  f" {result['modes']['idle']:>9}/{result['modes']['active']:<9} {result['wakes']:>8.0f}",
                  flush=True)
            await asyncio.sleep(2)  # the streams of the step end


if __name__ == "__main__":
    asyncio.run(main())
