"""Benchmark: one massive PDF with --workers 1 against the default pool.

    python tools/bench_bigpdf.py [--pages 5000] [--dir /tmp/indexer-bench-bigpdf] [--repeat 3]
                                 [--pdf PATH] [--workers-list 1,auto]

Generates (once) a text PDF of ``--pages`` pages (or uses ``--pdf``), then
indexes it into a fresh database with each worker setting, ``--repeat``
times, interleaved, and prints the median wall time of the whole command and
the ratio to the first setting. Also prints the run's own summary (pages, chunking). A
benchmark, not a test: it asserts nothing.

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
    compileall.compile_dir(str(REPO / "indexer"), quiet=1)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    # the installed `indexer` script, as users run it (with PYTHONPATH above it
    # runs this checkout's code); `python -m indexer` where it is not installed
    script = Path(sys.executable).parent / "indexer"
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "indexer"]
    print(f"command: {' '.join(launcher)} index ... (package from {REPO / 'indexer'})")
    settings = args.workers_list.split(",")
    times: dict[str, list[float]] = {w: [] for w in settings}
    summaries: dict[str, dict[str, object]] = {}
    # interleaved (1, auto, 1, auto, ...) so that drift on a shared machine
    # affects every setting alike
    for i in range(args.repeat):
        for workers in settings:
            db = args.dir / f"bench-{workers}-{i}.db"
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            cmd = [
                *launcher,
                "index",
                str(pdf),
                "--db",
                str(db),
                "--workers",
                workers,
                "--json",
                "--quiet",
            ]
            started = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
            times[workers].append(time.perf_counter() - started)
            summaries[workers] = json.loads(proc.stdout) if proc.stdout else {}
            Path(str(db)).unlink(missing_ok=True)
    results: dict[str, float] = {}
    for workers in settings:
        results[workers] = statistics.median(times[workers])
        summary = summaries[workers]
        print(
            f"--workers {workers:>4}: median {results[workers]:.2f} s "
            f"{[round(t, 2) for t in times[workers]]}  ({summary.get('workers')} workers, "
            f"{summary.get('pages')} pages, {summary.get('tasks')} tasks, "
            f"chunked {summary.get('chunked')})"
        )
    first = next(iter(results.values()))
    base = times[settings[0]]
    for workers, t in results.items():
        # also the median of the per-round ratios: each round ran the settings
        # back to back, so drift on a shared machine cancels out in them
        paired = statistics.median(x / y for x, y in zip(times[workers], base, strict=True))
        print(
            f"ratio --workers {workers} / first: {t / first:.2f} "
            f"(median of per-round ratios {paired:.2f})"
        )
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
