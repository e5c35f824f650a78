"""indexer/forget.py: a folder's documents taken out of a real index, by the
real command, with the copies elsewhere keeping their pages."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from indexer.lock import RunLock
from tests.conftest import FIXTURES, run_cli


def _library(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    shutil.copy(FIXTURES / "good" / "notes.txt", a / "sub")
    shutil.copy(FIXTURES / "good" / "readme.md", a)
    shutil.copy(FIXTURES / "good" / "field-guide.pdf", b)
    shutil.copy(FIXTURES / "good" / "notes.txt", b / "copy.txt")  # same bytes as a/sub's
    db = tmp_path / "i.db"
    assert run_cli("index", a, b, "--db", db, "-q").returncode == 0
    return a, db


def _paths(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [str(r[0]) for r in conn.execute("SELECT path FROM documents ORDER BY path")]
    finally:
        conn.close()


def test_a_deleted_folder_is_forgotten_and_its_copies_keep_their_pages(tmp_path: Path) -> None:
    a, db = _library(tmp_path)
    before = _paths(db)
    assert len(before) == 4
    shutil.rmtree(a)
    again = run_cli("index", a, tmp_path / "b", "--db", db)
    assert again.returncode == 2
    assert again.stderr.splitlines() == [
        f"error: {a}: no such file or directory, but the index holds 2 documents from there",
        f"hint: remove them from the index with: indexer forget {a} --db {db}",
    ]
    dry = run_cli("forget", a, "--dry-run", "--db", db)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [str(a / "readme.md"), str(a / "sub" / "notes.txt")]
    assert dry.stderr.splitlines() == ["would remove 2 documents (2 pages)"]
    assert _paths(db) == before
    gone = run_cli("forget", a, tmp_path / "nowhere", "--db", db)
    assert gone.returncode == 1  # a path with nothing under it
    assert gone.stderr.splitlines() == [
        f"{tmp_path / 'nowhere'}: nothing in the index at or below it",
        "removed 2 documents (2 pages)",
    ]
    assert _paths(db) == [str(tmp_path / "b" / "copy.txt"), str(tmp_path / "b" / "field-guide.pdf")]
    found = run_cli("search", "sextant", "--files", "--db", db)
    assert found.stdout.splitlines() == [str(tmp_path / "b" / "copy.txt")], found.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.execute("INSERT INTO pages_fts(pages_fts) VALUES ('integrity-check')")  # raises if not
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    conn.close()
    assert run_cli("index", tmp_path / "b", "--db", db, "-q").returncode == 0


def test_forget_takes_the_run_lock_and_needs_an_index(tmp_path: Path) -> None:
    a, db = _library(tmp_path)
    with RunLock(db).acquire():
        held = run_cli("forget", a / "sub", "--db", db)
    assert held.returncode == 2 and "holds the lock" in held.stderr, held.stderr
    assert len(_paths(db)) == 4
    file_only = run_cli("forget", a / "sub" / "notes.txt", "--db", db)
    assert file_only.returncode == 0 and len(_paths(db)) == 3, file_only.stderr
    missing = run_cli("forget", a, "--db", tmp_path / "none.db")
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[0] == f"error: no index at {tmp_path / 'none.db'}"
    assert not (tmp_path / "none.db").exists()
