"""Damaged copies of real documents (tools/mutate.py: truncated, bytes flipped,
ranges zeroed or doubled) through the real pipeline: every file gives a document
or a one-line error record, never an "unexpected error", and the index stays valid."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from indexer.names import container_of
from tests.conftest import FIXTURES, run_cli
from tools.epubcases import write_all
from tools.formatgen import write_samples
from tools.mutate import write_damaged


def check_damaged_run(source: Path, tmp_path: Path, copies: int, max_files: int) -> None:
    damaged = write_damaged(source, tmp_path / "damaged", copies, seed=3, max_files=max_files)
    db = tmp_path / "i.db"
    proc = run_cli("index", tmp_path / "damaged", "--db", db, "-q", timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    assert "unexpected error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = dict(conn.execute("SELECT path, status FROM documents"))
        reasons = conn.execute(
            "SELECT count(*) FROM documents WHERE status = 'error' AND coalesce(error, '') = ''"
        ).fetchone()[0]
    finally:
        conn.close()
    files = sorted(path for path in rows if container_of(path) is None)  # (not attachments)
    assert files == sorted(str(p) for p in damaged)  # every file has its record
    assert reasons == 0
    for line in proc.stderr.splitlines():  # one line per failed file, with a reason
        assert ": " in line and "\n" not in line


def test_damaged_fixtures_give_records_not_surprises(tmp_path: Path) -> None:
    check_damaged_run(FIXTURES, tmp_path, copies=4, max_files=100)


def test_damaged_corpus_sample_gives_records_not_surprises(corpus: Path, tmp_path: Path) -> None:
    check_damaged_run(corpus, tmp_path, copies=1, max_files=120)


def test_damaged_generated_formats_give_records_not_surprises(tmp_path: Path) -> None:
    """Every format the generators write (DOCX, ODT, FB2, MOBI, DjVu where
    DjVuLibre is installed, every EPUB case of both versions), damaged."""
    source = tmp_path / "source"
    write_samples(source / "formats")
    write_all(source / "epub")
    check_damaged_run(source, tmp_path, copies=3, max_files=200)
