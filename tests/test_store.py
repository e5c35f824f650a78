"""indexer/store.py and schema.sql: creation, versions, refusals, portability."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from indexer import store
from indexer.errors import DatabaseError


def test_new_file_gets_the_schema_and_version(tmp_path: Path) -> None:
    conn = store.open_for_writing(tmp_path / "i.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"documents", "pages", "pages_fts", "errors", "jobs", "runs", "scan_errors"} <= names
    conn.close()
    ro = store.connect(tmp_path / "i.db")
    assert store.counts(ro)["documents"] == 0


def test_fts_is_detected_by_sqlite_utils_and_stays_in_sync(tmp_path: Path) -> None:
    conn = store.open_for_writing(tmp_path / "i.db")
    conn.execute(
        "INSERT INTO documents (id, path, kind, size, mtime_ns, status, indexed_at) "
        "VALUES (1, '/a.txt', 'txt', 1, 1, 'ok', 'now')"
    )
    conn.execute("INSERT INTO pages (doc_id, page, text) VALUES (1, 1, 'the white whale')")
    conn.execute("INSERT INTO pages (doc_id, page, text) VALUES (1, 2, 'a second page')")
    # what the writer does for new pages (no per-row insert trigger)
    conn.execute("INSERT INTO pages_fts (rowid, text) SELECT id, text FROM pages")
    conn.close()
    db = sqlite_utils.Database(tmp_path / "i.db")
    assert db["pages"].detect_fts() == "pages_fts"
    assert [r["text"] for r in db["pages"].search("whale")] == ["the white whale"]
    # updates and deletes made by other tools are kept in sync by triggers
    db.execute("UPDATE pages SET text = 'a grey seal' WHERE page = 1")
    assert list(db["pages"].search("whale")) == []
    assert [r["page"] for r in db["pages"].search("seal")] == [1]
    db.execute("DELETE FROM pages WHERE page = 2")
    assert list(db["pages"].search("second")) == []
    db.execute("INSERT INTO pages_fts (pages_fts, rank) VALUES ('integrity-check', 1)")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = store.open_for_writing(tmp_path / "i.db")
    conn.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer indexer"):
        store.connect(tmp_path / "i.db")
    with pytest.raises(DatabaseError, match="newer indexer"):
        store.open_for_writing(tmp_path / "i.db")


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "text.db").write_text("not a database at all" * 100)
    with pytest.raises(DatabaseError, match="not an SQLite database"):
        store.open_for_writing(tmp_path / "text.db")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.close()
    with pytest.raises(DatabaseError, match="not an indexer index"):
        store.open_for_writing(tmp_path / "other.db")


def test_missing_index_and_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as info:
        store.connect(tmp_path / "nope.db")
    assert "no index at" in info.value.message and "indexer index" in (info.value.hint or "")
    with pytest.raises(DatabaseError, match="does not exist"):
        store.open_for_writing(tmp_path / "no" / "such" / "dir" / "i.db")


def test_under_root_matches_the_root_and_below_only(tmp_path: Path) -> None:
    conn = store.open_for_writing(tmp_path / "i.db")
    for i, p in enumerate(["/data/a.pdf", "/data/sub/b.pdf", "/data2/c.pdf", "/dat.pdf"]):
        conn.execute(
            "INSERT INTO documents (path, kind, size, mtime_ns, status, indexed_at) "
            "VALUES (?, 'pdf', ?, 1, 'ok', 'now')",
            (p, i),
        )
    assert sorted(store.stats_under(conn, ["/data"])) == ["/data/a.pdf", "/data/sub/b.pdf"]
    assert sorted(store.stats_under(conn, ["/data2/c.pdf"])) == ["/data2/c.pdf"]
    assert store.documents(conn, ["/data/a.pdf", "/nope"])["/data/a.pdf"].size == 0


def test_the_schema_objects_the_repair_checks_are_those_of_schema_sql() -> None:
    from indexer import repair

    assert {name for name, _ in repair.schema_objects()} == repair.SCHEMA_OBJECTS
