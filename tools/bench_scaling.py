"""Benchmark: how fast N bare processes extract one PDF, against one process.

    python tools/bench_scaling.py PDF [--procs 2] [--repeat 5]

The ceiling for the pool on this machine: each process imports pymupdf, opens
the PDF and waits; then all start together on equal shares of the pages
(``page.get_text()``, nothing else: no pool, no writer, no SQLite). Prints the
median time from the start signal to the last process done, for one process and
for ``--procs``, interleaved, and the speed-up. Compare it with
``bench_bigpdf.py``, which times the whole indexer. A benchmark, not a test: it
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CHILD = """
import sys
sys.modules.setdefault("pymupdf.layout", None)
sys.modules.setdefault("pymupdf4llm", None)
import pymupdf
path, first, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
doc = pymupdf.open(path)
print("ready", flush=True)
sys.stdin.readline()
for n in range(first, stop):
    doc.load_page(n).get_text()
print("done", flush=True)
"""


def page_count(pdf: str) -> int:
    code = "import sys, pymupdf; print(pymupdf.open(sys.argv[1]).page_count)"
    return int(subprocess.check_output([sys.executable, "-c", code, pdf], text=True))


def timed(pdf: str, pages: int, procs: int) -> float:
    bounds = [pages * i // procs for i in range(procs + 1)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, pdf, str(a), str(b)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    for c in children:
        assert c.stdout is not None and c.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for c in children:
        assert c.stdin is not None
        c.stdin.write("go\n")
        c.stdin.flush()
    for c in children:
        assert c.stdout is not None
        c.stdout.readline()
    seconds = time.perf_counter() - started
    for c in children:
        c.wait()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pdf")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    pages = page_count(args.pdf)
    one: list[float] = []
    many: list[float] = []
    for _ in range(args.repeat):
        one.append(timed(args.pdf, pages, 1))
        many.append(timed(args.pdf, pages, args.procs))
    m1, mn = statistics.median(one), statistics.median(many)
    paired = statistics.median(a / b for a, b in zip(one, many, strict=True))
    print(f"{args.pdf}: {pages} pages, page.get_text() only")
    print(f"1 process:  median {m1:.2f} s {[round(t, 2) for t in one]}")
    print(f"{args.procs} processes: median {mn:.2f} s {[round(t, 2) for t in many]}")
    print(f"speed-up {m1 / mn:.2f}x (median of per-round speed-ups {paired:.2f}x)")
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
