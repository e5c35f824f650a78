"""Benchmark: ways of loading one large document's pages into the FTS5 index.

    python tools/bench_fts_insert.py [PDF]   (default: the corpus's SICP, 894 pages)

Compares a per-row AFTER INSERT trigger (what sqlite-utils' --create-triggers
does) with one INSERT INTO pages_fts ... SELECT per document (what the writer
does), each with automerge left at its default and set to 0. Prints rows/s.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer import store  # noqa: E402
from indexer.extract.pdf import extract_pdf  # noqa: E402

TRIGGER = """CREATE TRIGGER pages_ai AFTER INSERT ON pages BEGIN
  INSERT INTO pages_fts (rowid, text) VALUES (new.rowid, new.text); END"""


def load(pages: list[tuple[int, str]], trigger: bool, automerge_off: bool) -> float:
    path = Path(tempfile.mkdtemp()) / "bench.db"
    conn = store.open_for_writing(path)
    if trigger:
        conn.execute(TRIGGER)
    if automerge_off:
        conn.execute("INSERT INTO pages_fts (pages_fts, rank) VALUES ('automerge', 0)")
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO documents (id, path, kind, size, mtime_ns, status, indexed_at) "
        "VALUES (1, '/x', 'pdf', 1, 1, 'ok', 'now')"
    )
    conn.executemany("INSERT INTO pages (doc_id, page, text) VALUES (1, ?, ?)", pages)
    if not trigger:
        conn.execute(
            "INSERT INTO pages_fts (rowid, text) SELECT id, text FROM pages WHERE doc_id = 1"
        )
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return seconds


def main() -> None:
    default = (
        Path(__file__).resolve().parent.parent.parent / "shared/corpus/pdf/large/sicp-jrincayc.pdf"
    )
    pdf = sys.argv[1] if len(sys.argv) > 1 else str(default)
    pages = extract_pdf(pdf).pages
    chars = sum(len(t) for _, t in pages)
    print(f"{pdf}: {len(pages)} pages with text, {chars / 1e6:.1f} M characters")
    for trigger in (True, False):
        for automerge_off in (False, True):
            runs = sorted(load(pages, trigger, automerge_off) for _ in range(3))
            label = ("per-row trigger" if trigger else "one INSERT...SELECT") + (
                ", automerge=0" if automerge_off else ""
            )
            print(f"{label:36s} median {runs[1]:.3f} s = {len(pages) / runs[1]:,.0f} rows/s")
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
