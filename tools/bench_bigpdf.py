"""Benchmark: one massive PDF with --workers 1 against the default pool.

    python tools/bench_bigpdf.py [--pages 5000] [--dir /tmp/indexer-bench-bigpdf] [--repeat 3]
                                 [--pdf PATH] [--workers-list 1,auto] [--checkout DIR ...]

Generates (once) a text PDF of ``--pages`` pages (or uses ``--pdf``), then
indexes it into a fresh database with each worker setting, ``--repeat``
times, interleaved, and prints the median wall time of the whole command and
the ratio to the first setting. Also prints the run's own summary (pages, chunking). A
benchmark, not a test: it asserts nothing.

``--checkout DIR`` (repeatable) compares checkouts of this repository (``git
worktree add DIR COMMIT``): every round runs each setting of each checkout,
one after the other, so that a shared machine's drift affects them alike.
Without it, this checkout alone.

Run it with the Python of an environment where the project is installed as
users install it (``pip install .``): an editable install (``pip install -e``)
adds its import hook to every process's start-up, 20 ms each here, and a run
starts five or more processes.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/indexer-bench-bigpdf"))
    ap.add_argument("--pdf", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers-list", default="1,auto")
    ap.add_argument("--checkout", type=Path, action="append")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    pdf = args.pdf.resolve() if args.pdf else None
    if pdf is None:
        pdf = args.dir / f"big-{args.pages}.pdf"
        if not pdf.exists():
            from tools.docgen import write_long_pdf

            started = time.perf_counter()
            write_long_pdf(pdf, args.pages)
            print(f"generated {pdf} in {time.perf_counter() - started:.1f} s")
    print(f"document: {pdf} ({pdf.stat().st_size / 2**20:.1f} MiB)")
    # byte-compiled, as pip installs it (PYTHONDONTWRITEBYTECODE would otherwise
    # make every process compile the package from source)
    checkouts = [c.resolve() for c in (args.checkout or [REPO])]
    for c in checkouts:
        compileall.compile_dir(str(c / "indexer"), quiet=1)
    # the installed `indexer` script, as users run it (with PYTHONPATH above it
    # runs the checkout's code); `python -m indexer` where it is not installed
    script = Path(sys.executable).parent / "indexer"
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "indexer"]
    print(f"command: {' '.join(launcher)} index ...")
    settings = args.workers_list.split(",")
    times: dict[tuple[Path, str], list[float]] = {(c, w): [] for c in checkouts for w in settings}
    summaries: dict[tuple[Path, str], dict[str, object]] = {}
    # interleaved (1, auto, 1, auto, ...) so that drift on a shared machine
    # affects every setting alike
    for i in range(args.repeat):
        for c in checkouts:
            for workers in settings:
                db = args.dir / f"bench-{workers}-{i}.db"
                for suffix in ("", "-wal", "-shm", ".lock"):
                    Path(str(db) + suffix).unlink(missing_ok=True)
                cmd = [*launcher, "index", str(pdf), "--db", str(db), "--workers", workers]
                started = time.perf_counter()
                proc = subprocess.run(  # cwd and PYTHONPATH: this checkout's package
                    [*cmd, "--json", "--quiet"],
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONPATH": str(c)},
                    cwd=c,
                )
                times[(c, workers)].append(time.perf_counter() - started)
                summaries[(c, workers)] = json.loads(proc.stdout) if proc.stdout else {}
                Path(str(db)).unlink(missing_ok=True)
    for c in checkouts:
        if len(checkouts) > 1:
            print(f"checkout {c}:")
        base = times[(c, settings[0])]
        first = statistics.median(base)
        for workers in settings:
            t = times[(c, workers)]
            summary = summaries[(c, workers)]
            print(
                f"--workers {workers:>4}: median {statistics.median(t):.2f} s "
                f"{[round(x, 2) for x in t]}  ({summary.get('workers')} workers, "
                f"{summary.get('pages')} pages, {summary.get('tasks')} tasks, "
                f"chunked {summary.get('chunked')})"
            )
        for workers in settings:
            t = times[(c, workers)]
            # also the median of the per-round ratios: each round ran the settings
            # back to back, so drift on a shared machine cancels out in them
            paired = statistics.median(x / y for x, y in zip(t, base, strict=True))
            print(
                f"ratio --workers {workers} / first: {statistics.median(t) / first:.2f} "
                f"(median of per-round ratios {paired:.2f})"
            )
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
