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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


async def step(port: int, pid: int, api_keys: list[str], videos: list, seconds: float, idle: int) -> dict:
    """Stream each of `videos` (one per camera); once `idle` of them are idle (and the decode queues of the
    full-decode warm-up drained), measure the server's CPU per stream-second over `seconds`. Busy streams
    too are measured after the time a still one takes to go idle."""
    measured = await harness.run_step(port, pid, api_keys, videos, seconds, harness.IDLE_WARM_UP_SECONDS,
                                      idle)
    modes = {mode: int(measured.at_end.get(f'vigint_streams{{mode="{mode}"}}', 0))
             for mode in ("active", "idle")}
    wakes = sum(measured.change(name) for name in measured.at_end
                if name.startswith("vigint_stream_wakes_total"))
    return {"cpu_per_stream_second": measured.cpu_per_stream_second, "modes": modes, "wakes": wakes}


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
    still = harness.still_video()
    busy = harness.camera_video()
    references = {}
    for name, video in (("still", still), ("busy", busy)):
        decoder, per_frame = harness.reference_cpu_per_frame(video, workdir)
        references[name] = per_frame * video.fps
        print(f"reference ({decoder}), {name}: {references[name] * 100:.2f}% of a core per camera")
    db = workdir / "bench.db"
    api_keys = await harness.make_keys(db, 200)
    with harness.serving(workdir, db) as served:
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
            result = await step(served.port, served.pid, api_keys, videos, args.seconds, idle)
            per_stream = result["cpu_per_stream_second"]
            print(f"{label:>16} {per_stream * 100:>9.2f}% {per_stream / reference:>14.3f}"
                  f" {result['modes']['idle']:>9}/{result['modes']['active']:<9} {result['wakes']:>8.0f}",
                  flush=True)


if __name__ == "__main__":
    asyncio.run(main())
