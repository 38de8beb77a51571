"""Ingest benchmark: N paced 720p15 2 Mbps streams into a real `vigint serve`, N stepped up.

Prints, per step, the server's CPU per stream over `--seconds` while the streams run (after the scenario's
warm-up) as a ratio to a single-threaded FFmpeg decode of the same stream measured in this run, p99 delay
from receipt to frame in the ring, RSS per stream, the share of the frames sent in that window that were
decoded in it, and whether the step kept up in real time (each step on a server started for it, so that its
RSS is what its streams hold, not what an earlier step's left); then hello→welcome p99 with 10,000 keys in
the database.

    python bench/ingest.py [--seconds 30] [--steps 1,4,8,12,16,20,24,28] [--scenario busy]
                           [--baseline COMMIT] [--repeat 1] [--hellos 300]

--scenario picks what is streamed and measured (several, comma-separated, run one after the other):
  busy    the busy test pattern (a panning, noisy picture with a moving square: constant motion), default
          settings, measured from the streams' start (default; steps 1,4,8,…,28)
  full    the same into a server with `idle_mode = full` ([analysis]): every frame decoded (steps 8)
  motion  the same with default settings, measured after the streams' first 10 s, once their incidents
          are confirmed (steps 8)
  still   a still, noisy room (2 s GOP, same bitrate), measured once the streams are idle (steps 8)

--baseline COMMIT checks COMMIT out in a temporary git worktree (removed at the end) and runs the same
streams through its server too, started from that checkout's code with a database that code made, each
step alternating the two servers (A, B, A, B with --repeat 2) so that drift in the machine's other load
falls on both; it prints both ratios and RSS per stream side by side.

The reference is Debian's `ffmpeg -threads 1 -f null -` when on PATH, else PyAV's own demux-decode with
one thread (the same FFmpeg libraries the server uses).
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

GOOD_P99_SECONDS = 0.5  # receipt-to-ring p99 above this, or skipped frames, is not real time
HELLO_KEYS = 10_000  # API keys in the database when hello→welcome is timed


@dataclass(frozen=True)
class Scenario:
    """What a step streams, into a server with which settings, measured from when, against which budget."""

    still: bool  # the still room, else the busy test pattern
    warm_up_seconds: float = 0.0
    until_idle: bool = False  # the window opens once every stream is idle
    settings: dict[str, str] = field(default_factory=dict)  # the server's VIGINT_* variables
    decodes_all: bool = False  # real time also asks for every frame sent decoded
    steps: str = "8"
    target: str = ""


SCENARIOS = {
    "busy": Scenario(still=False, steps="1,4,8,12,16,20,24,28", target="≤ 1.15"),
    "full": Scenario(still=False, settings={"VIGINT_ANALYSIS_IDLE_MODE": "full"}, decodes_all=True,
                     target="≤ 0.95"),
    "motion": Scenario(still=False, warm_up_seconds=10.0, target="≤ 0.35"),
    "still": Scenario(still=True, until_idle=True, target="≤ 0.12"),
}


@dataclass(frozen=True)
class Side:
    """A version of the server under test: a label, the src folder it runs, and the keys of its database."""

    label: str
    src: Path
    database: Path
    api_keys: list[str]


@dataclass(frozen=True)
class Server:
    """A side's `vigint serve` running for one scenario."""

    side: Side
    port: int
    pid: int
    idle_rss: int  # before any stream: the rest is the streams'


def commit_label(commit: str) -> str:
    """The short hash of `commit` in this repository; empty if it names none."""
    return subprocess.run(["git", "-C", str(harness.ROOT), "rev-parse", "--verify", "--quiet", "--short",
                           f"{commit}^{{commit}}"], stdout=subprocess.PIPE, text=True).stdout.strip()


@contextmanager
def running(side: Side, folder: Path, scenario: Scenario) -> Iterator[Server]:
    """Serve a copy of the side's database with its own code and the scenario's settings from `folder`."""
    folder.mkdir()
    shutil.copy(side.database, folder / "bench.db")
    with harness.serving(folder, folder / "bench.db", side.src, scenario.settings) as served:
        time.sleep(1)  # started up: what it holds from here on is the streams'
        yield Server(side, served.port, served.pid, harness.process_rss(served.pid))


async def run_scenario(name: str, args: argparse.Namespace, sides: list[Side], workdir: Path, video,
                       reference: float, hellos: int) -> None:
    """Start every side's server with the scenario's settings, run its steps, print the ratios side by side,
    and time `hellos` hellos on each."""
    scenario = SCENARIOS[name]
    counts = [int(count) for count in (args.steps or scenario.steps).split(",")]
    start = "until idle" if scenario.until_idle else f"{scenario.warm_up_seconds:g} s"
    print(f"\n{name}: {'still room' if scenario.still else 'busy pattern'}, settings "
          f"{scenario.settings or 'default'}, warm-up {start}, {args.seconds:g} s measured; "
          f"target {scenario.target or 'none'}", flush=True)
    measured = await run_steps(scenario, args, sides, workdir / name, counts, video, reference)
    show_summary([side.label for side in sides], counts, *measured)
    with ExitStack() as stack:
        for index, side in enumerate(sides if hellos else []):
            server = stack.enter_context(running(side, workdir / f"{name}-hellos-{index}", scenario))
            latency = await harness.hello_latency(server.port, side.api_keys, hellos)
            print(f"hello→welcome p99 on {side.label} with {len(side.api_keys):,} keys: "
                  f"{latency * 1000:.2f} ms (target ≤ 5 ms)")


async def run_steps(scenario: Scenario, args: argparse.Namespace, sides: list[Side], workdir: Path,
                    counts: list[int], video, reference: float) -> tuple[dict, dict, dict]:
    """Each stream count on each side in turn (A, B, A, B… over --repeat), each step on a server of its own
    started afresh, so that its RSS per stream is what its streams hold (a server keeps memory an earlier
    step's streams used); until a count where no step kept up. Return the ratios and RSS per stream of each
    (label, count), and each label's largest count that kept up."""
    print(f"{'streams':>7} {'server':>14} {'CPU/stream':>10} {'ratio':>6} {'p99 lag':>8} {'RSS/stream':>10} "
          f"{'decoded':>8} {'real time':>9}")
    ratios: dict[tuple[str, int], list[float]] = {}
    rss: dict[tuple[str, int], list[float]] = {}
    best: dict[str, int] = {}
    workdir.mkdir()
    for count in counts:
        for repeat in range(args.repeat):
            for index, side in enumerate(sides):
                label = side.label
                with running(side, workdir / f"{count}-{repeat}-{index}", scenario) as server:
                    step = await harness.run_step(server.port, server.pid, side.api_keys, [video] * count,
                                                  args.seconds, scenario.warm_up_seconds,
                                                  count if scenario.until_idle else 0)
                ratios.setdefault((label, count), []).append(step.cpu_per_stream_second / reference)
                rss.setdefault((label, count), []).append((step.rss - server.idle_rss) / count / 2**20)
                if show_step(label, scenario, step, ratios[label, count][-1], rss[label, count][-1]):
                    best[label] = count
        if count not in best.values():
            break
    return ratios, rss, best


def show_step(label: str, scenario: Scenario, step: harness.Step, ratio: float,
              rss_per_stream: float) -> bool:
    """Print one step's row; return whether it kept up in real time: frames reached the ring within
    GOOD_P99_SECONDS and, where every frame is to be decoded, so was each sent that long before the end."""
    due = step.sent * max(0.0, step.seconds - GOOD_P99_SECONDS) / step.seconds
    kept_up = ((step.p99 is None or step.p99 <= GOOD_P99_SECONDS)
               and (not scenario.decodes_all or step.decoded >= 0.99 * due))
    sender_note = ""
    if step.sender_late_p99 > 0.05:
        sender_note = f"  (sender late p99 {step.sender_late_p99:.3f}s)"
    lag = "-" if step.p99 is None else f"{step.p99:.3f}s"
    print(f"{step.streams:>7} {label:>14} {step.cpu_per_stream_second * 100:>9.2f}% {ratio:>6.3f} {lag:>8} "
          f"{rss_per_stream:>8.1f}MiB {step.decoded / step.sent:>7.1%} {'yes' if kept_up else 'NO':>9}"
          + sender_note, flush=True)
    return kept_up


def show_summary(labels: list[str], counts: list[int], ratios: dict, rss: dict, best: dict) -> None:
    """Print each stream count's mean ratio and RSS per stream on every side, the first side's ratio ÷ each
    other's, and each side's largest count in real time."""
    versus = f"{labels[0]} ÷ it" if len(labels) > 1 else ""
    print("\nmean of each count's steps")
    print(f"{'streams':>7} {'server':>14} {'ratio':>6} {'RSS/stream':>10} {versus}".rstrip())
    for count in counts:
        if (labels[0], count) not in ratios:
            break
        first = statistics.mean(ratios[labels[0], count])
        for label in labels:
            mean = statistics.mean(ratios[label, count])
            line = f"{count:>7} {label:>14} {mean:>6.3f} {statistics.mean(rss[label, count]):>7.1f}MiB"
            print(line + (f" {first / mean:>{len(versus)}.3f}" if label != labels[0] else ""), flush=True)
    if len(counts) > 1:
        print("largest N sustained in real time: "
              + ", ".join(f"{label} {best.get(label, 0)}" for label in labels) + " (target ≥ 20)")


async def run(args: argparse.Namespace, sides_src: list[tuple[str, Path]], workdir: Path) -> None:
    """Encode the footage, measure the reference, make each side's database, run the scenarios."""
    names = args.scenario.split(",")
    videos = {}
    references = {}
    for still in sorted({SCENARIOS[name].still for name in names}):
        video = harness.still_video() if still else harness.camera_video()
        decoder, per_frame = harness.reference_cpu_per_frame(video, workdir)
        videos[still] = video
        references[still] = per_frame * video.fps
        print(f"reference ({decoder}), {'still' if still else 'busy'}: {per_frame * 1000:.2f} ms CPU a frame "
              f"= {references[still] * 100:.2f}% of a core per camera", flush=True)
    most = max(int(count) for name in names for count in (args.steps or SCENARIOS[name].steps).split(","))
    sides = []
    for index, (label, src) in enumerate(sides_src):
        database = workdir / f"side-{index}.db"
        api_keys = harness.make_database(database, max(most, HELLO_KEYS if args.hellos else 0), src)
        sides.append(Side(label, src, database, api_keys))
    for index, name in enumerate(names):
        still = SCENARIOS[name].still
        # hello→welcome does not depend on the scenario: timed once, beside the first
        await run_scenario(name, args, sides, workdir, videos[still], references[still],
                           hellos=0 if index else args.hellos)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured length of each step")
    parser.add_argument("--steps", help="stream counts to try, in order (default: the scenario's)")
    parser.add_argument("--scenario", default="busy",
                        help=f"one or more of {', '.join(SCENARIOS)}, comma-separated (default: busy)")
    parser.add_argument("--baseline", metavar="COMMIT", help="also run this commit's server, alternately")
    parser.add_argument("--repeat", type=int, default=1, help="steps per server and stream count")
    parser.add_argument("--hellos", type=int, default=300,
                        help=f"hellos timed on each server with {HELLO_KEYS:,} keys (0: none)")
    args = parser.parse_args()
    if unknown := set(args.scenario.split(",")) - set(SCENARIOS):
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}")
    if args.baseline and not commit_label(args.baseline):
        parser.error(f"--baseline {args.baseline} names no commit of this repository")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    workdir = Path(tempfile.mkdtemp(prefix="vigint-bench-"))
    sides = [(f"{commit_label('HEAD')}+tree", harness.ROOT / "src")]
    try:
        with ExitStack() as stack:
            if args.baseline:
                folder = stack.enter_context(harness.checkout(args.baseline))
                sides.append((commit_label(args.baseline), folder / "src"))
            await run(args, sides, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
