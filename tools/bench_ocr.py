"""Benchmark: OCR throughput with 1 worker and with the default pool.

    python -m tools.bench_ocr [--pages 100] [--repeat 2] [--dir /tmp/bench-ocr]

Makes one scanned book of ``--pages`` pages (``docgen.write_scanned_pdf``:
prose typeset, turned 1.5 degrees, rendered at 200 dpi, 0.5 % of its pixels
flipped, image only), then indexes it with ``--ocr auto`` into a new index,
``--workers 1`` and the default pool (auto) in turn, ``--repeat`` times each,
interleaved. For each run: the wall time, OCR pages per second, and the time
to the first searchable page (the index polled every 0.1 s for a page row:
a scan's ranges are written as they come). Prints the figures and the ratio
of the pool's pages/s to one worker's.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.docgen import prose_page, write_scanned_pdf  # noqa: E402


def run(pdf: Path, db: Path, workers: str) -> tuple[float, float | None, int]:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer", "index", str(pdf), "--db", str(db), "--quiet"]
        + ["--ocr", "auto", "--workers", workers]
    )
    first = None
    while proc.poll() is None:
        time.sleep(0.1)
        if first is None and db.exists():
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
                if conn.execute("SELECT 1 FROM pages LIMIT 1").fetchone():
                    first = time.perf_counter() - started
                conn.close()
            except sqlite3.Error:
                pass
    wall = time.perf_counter() - started
    conn = sqlite3.connect(db)
    (recognised,) = conn.execute("SELECT count(*) FROM page_ocr").fetchone()
    conn.close()
    return wall, first, int(recognised)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench-ocr"))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    pdf = args.dir / f"scan-{args.pages}.pdf"
    if not pdf.exists():
        rng = random.Random(1)
        texts = [prose_page(rng, 180) for _ in range(args.pages)]
        write_scanned_pdf(pdf, texts, noise=0.005)
    print(f"{pdf}: {args.pages} scanned pages, {pdf.stat().st_size / 2**20:.1f} MiB")
    figures: dict[str, list[tuple[float, float | None, int]]] = {"1": [], "auto": []}
    for i in range(args.repeat):
        for workers in ("1", "auto"):
            wall, first, pages = run(pdf, args.dir / "bench.db", workers)
            figures[workers].append((wall, first, pages))
            shown = "-" if first is None else f"{first:.1f} s"
            print(
                f"round {i + 1}, workers {workers:>4}: {wall:6.1f} s, {pages} pages recognised, "
                f"{pages / wall:5.2f} pages/s, first searchable page after {shown}"
            )
    rate = {w: statistics.median(p / t for t, _, p in runs) for w, runs in figures.items()}
    print(
        f"median pages/s: 1 worker {rate['1']:.2f}, default pool {rate['auto']:.2f}: "
        f"{rate['auto'] / rate['1']:.2f}x"
    )


if __name__ == "__main__":
    main()
