"""Disarmed-camera benchmark: what a busy camera costs while its customer's schedule (or a mute) disarms it.

Streams N paced copies of the busy 720p15 2 Mbit/s test pattern (x264 veryfast, as bench/harness.py) into a
real `vigint serve` whose database arms those cameras `never`, and measures the server's CPU per stream over
`--seconds` once they are all open, divided by a single-threaded FFmpeg decode of the same stream in this
run; also less the CPU the server spends alone (flushes, snapshots, settings looks), shared by all. A
disarmed stream is received, checked and kept in its ring, and not decoded: the run fails if a frame was.

    python bench/disarmed.py [--seconds 20] [--steps 20,50]
"""

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

from vigint.store import Editor, Store  # noqa: E402

WARM_UP_SECONDS = 3.0  # every stream open and past its hello before the CPU is counted


async def disarm(db: Path, cameras: list[str]) -> None:
    """Write the cameras' settings as `vigint camera set --armed never` does, before they stream."""
    async with await Store.open(db) as store:
        [client] = await store.list_clients()
        for camera in cameras:
            await store.set_camera(client.id, camera, Editor.OPERATOR, schedule="never")


async def step(port: int, pid: int, api_keys: list[str], cameras: list[str], video, seconds: float) -> dict:
    """Stream `video` on each camera; after the warm-up, measure the server's CPU per stream-second."""
    measured = await harness.run_step(port, pid, api_keys, [video] * len(cameras), seconds, WARM_UP_SECONDS,
                                      cameras=cameras)
    received = measured.change("vigint_bytes_received_total")
    return {"cpu_per_stream_second": measured.cpu_per_stream_second,
            "disarmed": int(measured.at_end.get('vigint_streams{mode="disarmed"}', 0)),
            "decoded": measured.at_end.get("vigint_frames_decoded_total", 0),
            "received_mbit": received * 8 / measured.seconds / len(cameras) / 1e6}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured length of each step")
    parser.add_argument("--steps", default="20,50", help="disarmed stream counts to try, in order")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vigint-bench-"))
    video = harness.camera_video()
    reference, per_frame = harness.reference_cpu_per_frame(video, workdir)
    full_decode = per_frame * video.fps
    print(f"reference ({reference}): {full_decode * 100:.2f}% of a core per camera")
    counts = [int(count) for count in args.steps.split(",")]
    db = workdir / "bench.db"
    api_keys = await harness.make_keys(db, max(counts))
    cameras = [f"cam-{index}" for index in range(max(counts))]
    await disarm(db, cameras)
    with harness.serving(workdir, db) as served:
        await asyncio.sleep(WARM_UP_SECONDS)
        before = harness.process_cpu(served.pid)
        await asyncio.sleep(args.seconds)
        # the server's own tasks, with no stream
        alone = (harness.process_cpu(served.pid) - before) / args.seconds
        print(f"server alone: {alone * 100:.2f}% of a core")
        print(f"\n{'streams':>7} {'disarmed':>8} {'Mbit/s each':>11} {'CPU/stream':>10} "
              f"{'÷ full decode':>13} {'beyond alone':>12} {'frames decoded':>14}")
        for count in counts:
            result = await step(served.port, served.pid, api_keys, cameras[:count], video, args.seconds)
            ratio = result["cpu_per_stream_second"] / full_decode
            marginal = (result["cpu_per_stream_second"] - alone / count) / full_decode
            print(f"{count:>7} {result['disarmed']:>8} {result['received_mbit']:>11.2f} "
                  f"{result['cpu_per_stream_second'] * 100:>9.3f}% {ratio:>13.4f} {marginal:>12.4f} "
                  f"{result['decoded']:>14.0f}", flush=True)
            if result["decoded"]:
                raise SystemExit("a disarmed stream was decoded")
        per_core = 1 / (ratio * full_decode)
        print(f"\ntarget: ≤ 0.05 × the full decode ({per_core:.0f} disarmed cameras a core at the last step)")


if __name__ == "__main__":
    asyncio.run(main())
