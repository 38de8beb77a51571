"""Backfill benchmark: how fast a real `vigint serve` recovers footage recorded during an outage, alone and
beside live streams, and what it costs the live streams.

An outage of `--minutes` of 720p15 2 Mbps footage is sent on a backfill connection (docs/protocol.md, 4a) as
fast as the server reads it, first on an otherwise idle server, then while `--live` paced live streams run.
Prints the recovery speed (minutes of footage per minute), the server's CPU per backfilled frame as a ratio
to a single-threaded FFmpeg decode of the same stream measured in this run, and the live streams' p99 lag
and decoded share with and without the backfill beside them.

    python bench/backfill.py [--minutes 5] [--live 8] [--seconds 30]
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from vigint import protocol  # noqa: E402


async def backfill(port: int, api_key: str, video, minutes: float) -> tuple[float, int]:
    """Send `minutes` of `video` (looped, capture times an hour ago) on a backfill connection, then the end;
    return the seconds until the server closed with 1000 and the frames sent."""
    url = f"ws://127.0.0.1:{port}{protocol.PATH}"
    period = video.units[-1][1] + 1_000_000 // video.fps
    loops = max(1, round(minutes * 60 * 1_000_000 / period))
    base = int((time.time() - 3600) * 1e6)
    async with connect(url, max_size=None, compression=None) as connection:
        await connection.send(protocol.hello(api_key, "recovered", "bench", backfill=True))
        json.loads(await connection.recv())
        began = time.monotonic()
        for loop in range(loops):
            offset = base + loop * period
            for pts, dts, _, data in video.units:
                await connection.send(protocol.media(offset + pts, offset + dts, data))
        await connection.send(protocol.end_of_backfill())
        async for _ in connection:  # acks, until the close
            pass
        if connection.close_code != protocol.CloseCode.DONE:
            raise SystemExit(f"the backfill ended with {connection.close_code} {connection.close_reason}")
        return time.monotonic() - began, loops * video.frames


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="footage recorded during the outage")
    parser.add_argument("--live", type=int, default=8, help="live streams running beside the second backfill")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the live steps")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vigint-bench-"))
    video = harness.camera_video()
    reference, per_frame = harness.reference_cpu_per_frame(video, workdir)
    print(f"reference ({reference}): {per_frame * 1000:.2f} ms CPU a frame")
    db = workdir / "bench.db"
    api_keys = await harness.make_keys(db, args.live + 2)
    with harness.serving(workdir, db) as served:
        await asyncio.sleep(1)
        cpu_before = harness.process_cpu(served.pid)
        seconds, frames = await backfill(served.port, api_keys[0], video, args.minutes)
        cpu = harness.process_cpu(served.pid) - cpu_before
        print(f"\nbackfill alone: {args.minutes:g} min of footage ({frames} frames) in {seconds:.1f} s = "
              f"{args.minutes * 60 / seconds:.1f}x real time; server CPU "
              f"{cpu / frames * 1000:.2f} ms a frame = {cpu / frames / per_frame:.2f}x the reference")

        alone = await harness.run_step(served.port, served.pid, api_keys[1:], [video] * args.live,
                                       args.seconds)
        recovery = asyncio.create_task(backfill(served.port, api_keys[0], video, args.minutes))
        beside = await harness.run_step(served.port, served.pid, api_keys[1:], [video] * args.live,
                                        args.seconds)
        seconds, frames = await recovery
        print(f"{args.live} live streams alone:         p99 lag {alone.p99:.3f} s, "
              f"decoded {alone.decoded / alone.sent:.1%}")
        print(f"{args.live} live streams beside a backfill: p99 lag {beside.p99:.3f} s, "
              f"decoded {beside.decoded / beside.sent:.1%}")
        print(f"backfill beside them: {args.minutes:g} min in {seconds:.1f} s = "
              f"{args.minutes * 60 / seconds:.1f}x real time")


if __name__ == "__main__":
    asyncio.run(main())
