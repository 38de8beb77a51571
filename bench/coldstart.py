"""Cold start and size of the built executable (targets: under 1.5 s and under 100 MB on the reference
machine).

Builds nothing: it measures a `dist/vigint` that `scripts/build.sh` made. Each run is a fresh process, as a
customer's shell or systemd starts it: the one-file executable unpacks its libraries into a temporary folder,
then Python imports what `--help` needs. Prints each run's wall time, the median, the median CPU time (user
and system, of the executable and the child it starts: less sensitive to others' work on a shared machine than
wall time), the load average, and the file's size.

    python bench/coldstart.py [PATH] [--runs 5] [--args=--help]
"""

import argparse
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

TARGET_SECONDS = 1.5
MAX_MB = 100


def cold_start(binary: Path, args: list[str]) -> tuple[float, float]:
    """Return the wall and CPU seconds one run of `binary args` takes from exec to exit (it must exit 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([str(binary), *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", nargs="?", type=Path, default=Path("dist/vigint"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--args", default="--help", help="what to run it with (default: --help)")
    options = parser.parse_args()
    size_mb = options.binary.stat().st_size / 1e6
    load = os.getloadavg()[0]  # others' work on a shared machine slows every run: say how busy it was
    runs = [cold_start(options.binary, options.args.split()) for _ in range(options.runs)]
    walls = [wall for wall, _ in runs]
    cpus = [cpu for _, cpu in runs]
    print(f"{options.binary} {options.args}: " + " ".join(f"{seconds:.2f}" for seconds in walls) + " s")
    print(f"cold start median of {options.runs}: {statistics.median(walls):.2f} s "
          f"(target < {TARGET_SECONDS} s); CPU {statistics.median(cpus):.2f} s; "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    print(f"size: {size_mb:.1f} MB (target < {MAX_MB} MB)")


if __name__ == "__main__":
    main()
