"""indexer/pool.py: the executor under crashes, hangs, memory blow-ups and load.

Real runs of `python -m indexer index` with real loky workers. Misbehaving
workers come from the test-only fault hook (INDEXER_FAULTS=1 and a file name
that asks for the fault, see worker._inject_fault)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pymupdf
import pytest

from indexer.pool import Flight, Pool
from indexer.schedule import BIG_PDF_BYTES, MAX_CHUNK, chunk_ranges
from indexer.work import Item, Task
from tests.conftest import (
    FIXTURES,
    REPO,
    check_against_manifest,
    db_snapshot,
    read_manifest,
    run_in_session,
    session_processes,
)
from tools.docgen import write_epub, write_long_pdf

GOOD = [r for r in read_manifest(FIXTURES / "EXPECTED.tsv") if r["path"].startswith("good/")]


def run_indexer(
    docs: Path, db: Path, *args: str, tmpdir: Path | None = None, timeout: float = 180
) -> tuple[subprocess.CompletedProcess[str], dict[str, object], list[psutil.Process]]:
    """Run in its own session with faults on; returns the process, the JSON
    summary, and whatever processes of that session are still alive after it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "INDEXER_FAULTS": "1"}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    command = [sys.executable, "-m", "indexer", "index", str(docs), "--db", str(db)]
    sid, done = run_in_session([*command, "--json", "--verbose", *args], env, timeout)
    time.sleep(0.3)
    left = session_processes(sid)
    return done, (json.loads(done.stdout) if done.stdout.strip() else {}), left


def reason(db: Path, name: str) -> tuple[str, str | None]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT status, error FROM documents WHERE path LIKE ?", (f"%/{name}",)
        ).fetchone()
        return row if row else ("missing", None)
    finally:
        conn.close()


CRASHES = [
    # (file name, expected status, expected reason prefix)
    ("doc-fault-segv.pdf", "error", "worker crashed (signal 11, SIGSEGV)"),
    ("doc-fault-exit.pdf", "error", "worker crashed (exit status 3)"),
    ("doc-fault-kill.pdf", "error", "worker crashed (signal 9, SIGKILL, killed: out of memory?)"),
    ("doc-fault-hang.pdf", "error", "timed out after 2 s"),
    ("doc-fault-memory.pdf", "error", "out of memory (worker limit 300 MiB)"),
    ("doc-fault-raise.pdf", "error", "unexpected error: RuntimeError: injected fault"),
    ("doc-fault-once-segv.pdf", "ok", None),  # crashed once, then succeeded alone
]


@pytest.mark.parametrize(("name", "status", "why"), CRASHES, ids=[c[0] for c in CRASHES])
def test_crash_table(name: str, status: str, why: str | None, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(FIXTURES / "good", docs)
    shutil.copy(FIXTURES / "good" / "field-guide.pdf", docs / name)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    shm_before = set(os.listdir("/dev/shm"))
    db = tmp_path / "i.db"
    proc, summary, left = run_indexer(
        docs,
        db,
        "--timeout",
        "2",
        "--worker-memory",
        "300M",
        "--small-file-kb",
        "1",
        tmpdir=tmpdir,
    )
    assert proc.returncode == (0 if status == "ok" else 1), proc.stderr
    assert "Traceback" not in proc.stderr
    got_status, got_reason = reason(db, name)
    assert got_status == status
    if why is not None:
        assert got_reason is not None and got_reason.startswith(why), got_reason
        assert f"{docs / name}: {why}" in proc.stderr
    # every other file was indexed despite the misbehaving worker
    assert check_against_manifest(db, docs, [dict(r, path=r["path"][5:]) for r in GOOD]) == []
    pool = summary["pool"]
    assert isinstance(pool, dict)
    if "segv" in name or "exit" in name or "kill" in name:
        assert pool["crashes"] >= 1 and pool["isolated"] >= 1
        assert "a worker crashed" in proc.stderr  # --verbose explains it
    if "hang" in name:
        assert pool["timeouts"] == 1
    # no process of the run outlives it, no temporary file or semaphore is left
    assert left == []
    assert list(tmpdir.iterdir()) == []
    assert {f for f in os.listdir("/dev/shm") if f not in shm_before} == set()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_failed_ranges_make_a_partial_document_and_only_they_are_retried(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = write_long_pdf(docs / "big-fault-range-once-raise.pdf", 400)
    db = tmp_path / "i.db"
    proc, summary, _ = run_indexer(docs, db, "--workers", "2")
    assert proc.returncode == 1, proc.stderr
    status, error = reason(db, "big-fault-range-once-raise.pdf")
    assert status == "partial" and "pages 51-" in (error or "")
    assert "partly indexed: pages 51-" in proc.stderr
    conn = sqlite3.connect(db)
    digest = hashlib.sha256((docs / "big-fault-range-once-raise.pdf").read_bytes()).hexdigest()
    assert conn.execute("SELECT sha256 FROM documents").fetchone() == (digest,)
    ranges = json.loads(conn.execute("SELECT failed_ranges FROM documents").fetchone()[0])
    assert [r[:2] for r in ranges][0][0] == 51 and ranges[-1][1] == 400
    first_ids = [r[0] for r in conn.execute("SELECT id FROM pages WHERE page <= 50 ORDER BY page")]
    assert len(first_ids) == 50
    conn.close()

    proc, summary, _ = run_indexer(docs, db, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert summary["retried"] == 1 and summary["new"] == 0
    assert summary["tasks"] == len(ranges)  # only the failed ranges were extracted
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status, error, failed_ranges FROM documents").fetchone() == (
        "ok",
        None,
        None,
    )
    got = [t for (t,) in conn.execute("SELECT text FROM pages ORDER BY page")]
    assert [
        r[0] for r in conn.execute("SELECT id FROM pages WHERE page <= 50 ORDER BY page")
    ] == first_ids
    conn.close()
    assert len(got) == 400 and all(g.startswith(f"page{i:05d}") for i, g in enumerate(got, 1))
    assert [" ".join(t.split()) for t in got] == [" ".join(t.split()) for t in texts]


def test_a_range_that_keeps_crashing_is_recorded_per_range(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_long_pdf(docs / "big-fault-range-segv.pdf", 200)
    db = tmp_path / "i.db"
    proc, summary, left = run_indexer(docs, db, "--workers", "2")
    assert proc.returncode == 1
    status, error = reason(db, "big-fault-range-segv.pdf")
    assert status == "partial" and "worker crashed (signal 11" in (error or "")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT min(page), max(page) FROM pages").fetchone() == (1, 50)
    conn.close()
    assert left == []


def test_massive_pdf_is_chunked_and_published_in_page_order(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_long_pdf(docs / "big.pdf", 900)
    db = tmp_path / "i.db"
    proc, summary, _ = run_indexer(docs, db, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert summary["chunked"] == 1 and summary["tasks"] >= 5
    assert "chunked: " in proc.stderr and "(900 pages) in " in proc.stderr
    assert f" ranges of {MAX_CHUNK}" not in proc.stderr  # shrinking, not equal
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT page, text FROM pages ORDER BY id").fetchall()
    assert [p for p, _ in rows] == list(range(1, 901))  # inserted in page order
    assert all(t.startswith(f"page{p:05d}") for p, t in rows)
    # the probe leaves the hash to the main process, which computes it meanwhile
    digest = hashlib.sha256((docs / "big.pdf").read_bytes()).hexdigest()
    assert conn.execute("SELECT sha256 FROM documents").fetchone() == (digest,)


def test_a_large_pdf_is_split_from_its_first_page(tmp_path: Path) -> None:
    """Over BIG_PDF_BYTES with several workers, the probe only learns the page
    count (it extracts no page) and the ranges start at page 1."""
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf = docs / "large.pdf"
    write_long_pdf(pdf, 300)
    doc = pymupdf.open(pdf)  # made large by an attachment, as real files are by images
    doc.embfile_add("noise.bin", random.Random(1).randbytes(BIG_PDF_BYTES))
    doc.saveIncr()
    doc.close()
    assert pdf.stat().st_size >= BIG_PDF_BYTES
    db = tmp_path / "i.db"
    proc, summary, _ = run_indexer(docs, db, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert summary["chunked"] == 1
    ranges = chunk_ranges(1, 300, 2)  # from page 1: the probe took none
    assert summary["tasks"] == 1 + len(ranges)
    sizes = sorted(b - a + 1 for a, b in ranges)
    assert f"(300 pages) in {len(ranges)} ranges of {sizes[0]} to {sizes[-1]} pages" in proc.stderr
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT page, text FROM pages ORDER BY id").fetchall()
    conn.close()
    assert [p for p, _ in rows] == list(range(1, 301))
    assert all(t.startswith(f"page{p:05d}") for p, t in rows)


def test_workers_1_runs_the_same_pipeline_sequentially(tmp_path: Path) -> None:
    one, default = tmp_path / "one.db", tmp_path / "default.db"
    proc, summary, _ = run_indexer(FIXTURES, one, "--workers", "1")
    assert proc.returncode == 1 and summary["workers"] == 1
    assert summary["pool"]["max_in_flight"] == 1  # type: ignore[index]
    proc, summary, _ = run_indexer(FIXTURES, default)
    assert db_snapshot(one) == db_snapshot(default)


def test_epub_throttle_and_small_file_groups(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        chapters = [(f"Chapter {c}", f"book {i} chapter {c} " * 400) for c in range(1, 30)]
        write_epub(docs / f"book{i}.epub", chapters)
    for i in range(3):
        write_long_pdf(docs / f"paper{i}.pdf", 120, seed=i)
    for i in range(100):
        (docs / f"note{i:03d}.txt").write_text(f"note number {i}")
    db = tmp_path / "i.db"
    proc, summary, _ = run_indexer(docs, db, "--workers", "2", "--epub-concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    pool = summary["pool"]
    assert isinstance(pool, dict)
    assert pool["max_in_flight"] == 2 and pool["max_epub_in_flight"] == 1
    # 100 notes travel in a few grouped tasks, not 100
    assert summary["tasks"] < 6 + 3 + 100 // 10
    assert summary["indexed"] == 109


def test_queue_order_throttle_and_deadlines() -> None:
    pool = Pool(2, epub_limit=1, timeout=10)
    small = Task((Item("/s.pdf", "pdf"),), cost=10, units=10)
    big = Task((Item("/b.pdf", "pdf"),), cost=1000, units=500)
    epub1 = Task((Item("/1.epub", "epub"),), cost=500, units=1)
    epub2 = Task((Item("/2.epub", "epub"),), cost=400, units=1)
    rest = Task((Item("/b.pdf", "pdf", 51, 100),), cost=1, units=50, urgent=True)
    for t in (small, big, epub1, epub2, rest):
        pool.add(t)
    assert pool._pop() is rest  # remaining ranges of a started document first
    assert pool._pop() is big  # then largest first
    first_epub = pool._pop()
    assert first_epub is epub1
    pool.in_flight[object()] = Flight(first_epub, 0.0, 1.0, None)  # type: ignore[index]
    assert pool._pop() is small  # epub2 waits: one EPUB in flight is the limit
    assert pool._pop() is None
    pool.in_flight.clear()
    assert pool._pop() is epub2
    assert pool.budget(big) == 50.0 and pool.budget(small) == 10.0  # grows with pages
