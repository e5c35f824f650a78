"""Benchmark: a small run from scratch, wall time and the CPU of every process.

    python tools/bench_small.py [FOLDER] [--repeat 15] [--workers 2] [--checkout DIR ...]

Indexes FOLDER (default: fixtures/good) into a fresh database ``--repeat``
times with ``python -m indexer``, and prints the median wall time and the
median CPU time (user + system) summed over the main process and every process
it starts (workers, fork server, writer, trackers), sampled every 5 ms with
psutil. Small runs are mostly start-up, so this is where the cost of starting
processes shows.

``--checkout DIR`` (repeatable) compares checkouts of this repository (``git
worktree add DIR COMMIT``): their runs alternate, one each in turn, so that a
shared machine's drift affects them alike. Without it, this checkout alone.
A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


def one_run(checkout: Path, folder: Path, db: Path, workers: str) -> tuple[float, float]:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "indexer", "index", str(folder), "--db", str(db), "-q"]
    started = time.perf_counter()
    proc = subprocess.Popen(  # cwd and PYTHONPATH: this checkout's package, nothing else
        [*cmd, "--workers", workers],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        stderr=subprocess.DEVNULL,
    )
    root = psutil.Process(proc.pid)
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        for p in procs:
            try:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        time.sleep(0.005)
    return time.perf_counter() - started, sum(cpu.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path, nargs="?", default=REPO / "fixtures" / "good")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--workers", default="2")
    ap.add_argument("--checkout", type=Path, action="append")
    args = ap.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [REPO])]
    folder = args.folder.resolve()
    for c in checkouts:
        # byte-compiled, as pip installs it (PYTHONDONTWRITEBYTECODE would otherwise
        # make every process compile the package from source)
        compileall.compile_dir(str(c / "indexer"), quiet=1)
    runs: dict[Path, list[tuple[float, float]]] = {c: [] for c in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for c in checkouts:
                runs[c].append(one_run(c, folder, Path(tmp) / "i.db", args.workers))
    print(f"{folder} with --workers {args.workers}, {args.repeat} runs each")
    for c, rs in runs.items():
        walls = [w for w, _ in rs]
        cpus = [u for _, u in rs]
        print(
            f"{c}: wall median {statistics.median(walls):.3f} s, "
            f"CPU of all processes median {statistics.median(cpus):.2f} s"
        )
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
