"""Benchmark: a no-change re-run over many small files, against `find`.

    python tools/bench_noop.py [--files 100000] [--dir /tmp/indexer-bench-noop] [--repeat 3]
                               [--checkout DIR ...]

Builds (once) a tree of small text files, indexes it, then times
`find DIR -type f` and `python -m indexer index DIR --db DB` (nothing changed),
each run ``--repeat`` times, and prints the medians and their ratio.
``--checkout DIR`` (repeatable) times the no-op run of each checkout of this
repository (``git worktree add DIR COMMIT``) in turn, round by round; each runs
its own package on an index of its own, which it made (a newer schema may carry
an index an older one would use too). A benchmark, not a test: it asserts
nothing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build(root: Path, n: int) -> None:
    marker = root / f".built-{n}"
    if marker.exists():
        return
    rng = random.Random(1)
    words = "tide harbour lantern rope anchor gull reef keel mast sail".split()
    per_dir = 100
    for i in range(n):
        d = root / f"d{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}.txt").write_text(" ".join(rng.choice(words) for _ in range(30)))
    marker.write_text("")


def timed(
    cmd: list[str], checkout: Path | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``cmd``; with ``checkout``, with that checkout's package (cwd and
    PYTHONPATH: ``python -m`` imports from the working directory first)."""
    env = None if checkout is None else {**os.environ, "PYTHONPATH": str(checkout)}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=checkout)
    return time.perf_counter() - started, proc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/indexer-bench-noop"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--checkout", type=Path, action="append")
    args = ap.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [REPO])]
    # byte-compiled, as pip installs it: with PYTHONDONTWRITEBYTECODE set, a
    # checkout without __pycache__ would compile the package at every run
    for c in checkouts:
        compileall.compile_dir(str(c / "indexer"), quiet=1)
    root = args.dir.resolve() / "tree"
    dbs = {c: args.dir.resolve() / f"noop-{i}.db" for i, c in enumerate(checkouts)}

    def indexer(c: Path) -> list[str]:
        return [sys.executable, "-m", "indexer", "index", str(root), "--db", str(dbs[c]), "-q"]

    t0 = time.perf_counter()
    build(root, args.files)
    print(f"tree: {args.files:,} files under {root} ({time.perf_counter() - t0:.1f} s to build)")
    for c in checkouts:
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(str(dbs[c]) + suffix).unlink(missing_ok=True)
        seconds, proc = timed(indexer(c), c)
        print(
            f"initial index ({c}): {seconds:.1f} s (exit {proc.returncode}) "
            f"{proc.stderr.strip()[-200:]}"
        )

    finds: list[float] = []
    stat_finds: list[float] = []
    noops: dict[Path, list[float]] = {c: [] for c in checkouts}
    summary = ""
    for _ in range(args.repeat):
        seconds, proc = timed(["find", str(root), "-type", "f"])
        finds.append(seconds)
        # find that stats every file, as a change check must
        seconds, proc = timed(["find", str(root), "-type", "f", "-printf", "%s %T@ %p\n"])
        stat_finds.append(seconds)
        for c in checkouts:
            seconds, proc = timed(indexer(c)[:-1], c)
            noops[c].append(seconds)
            summary = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    find_s, stat_s = statistics.median(finds), statistics.median(stat_finds)
    print(f"find -type f:         median {find_s:.3f} s  {[round(x, 3) for x in finds]}")
    print(f"find -printf size+mtime: median {stat_s:.3f} s  {[round(x, 3) for x in stat_finds]}")
    for c, times in noops.items():
        noop_s = statistics.median(times)
        name = f" ({c})" if len(checkouts) > 1 else ""
        print(f"indexer no-op re-run{name}: median {noop_s:.3f} s  {[round(x, 3) for x in times]}")
        print(
            f"  ratio indexer / find: {noop_s / find_s:.1f}x; "
            f"indexer / find -printf: {noop_s / stat_s:.1f}x"
        )
    print(f"  last summary: {summary}")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
