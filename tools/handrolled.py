"""The script a user would write instead of indexer: the peer to beat.

    python tools/handrolled.py FOLDER INDEX.db

Kept exactly as issue 13 describes it: ``multiprocessing.Pool(cpu_count())``
with ``imap_unordered``, one file per task, pymupdf for every format (it opens
EPUB, text and HTML too), and the parent inserting every page into one FTS5
table in one transaction. No error records, no incremental runs, no chunking
of big PDFs. ``tools/bench_peers.py`` times it against indexer.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from multiprocessing import Pool, cpu_count

sys.modules.setdefault("pymupdf.layout", None)  # (pymupdf 2.0's optional imports)
sys.modules.setdefault("pymupdf4llm", None)
import pymupdf  # noqa: E402

SUFFIXES = (".pdf", ".epub", ".txt", ".md", ".html", ".htm")


def extract(path: str) -> tuple[str, list[tuple[int, str]]]:
    try:
        with pymupdf.open(path) as doc:
            return path, [(i + 1, page.get_text()) for i, page in enumerate(doc)]
    except Exception:
        return path, []


def main() -> None:
    root, db = sys.argv[1], sys.argv[2]
    paths = [
        os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(SUFFIXES)
    ]
    conn = sqlite3.connect(db)
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS pages USING fts5(path, page, text)")
    with Pool(cpu_count()) as pool, conn:
        for path, pages in pool.imap_unordered(extract, paths):
            conn.executemany("INSERT INTO pages VALUES (?, ?, ?)", [(path, n, t) for n, t in pages])
    conn.close()


if __name__ == "__main__":
    main()
