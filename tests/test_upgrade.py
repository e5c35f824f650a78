r"""indexer/upgrade.py: an index of schema 1 brought up to this version in place.

Schema 1 stored a file literally named ``caf\xe9.txt`` and a Latin-1
``caf<E9>.txt`` alike; the upgrade looks each stored path with a backslash up
on disk to tell which it was.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from indexer import store, store_write, upgrade
from indexer.search import search
from tests.conftest import db_snapshot, run_cli

SCHEMA_3 = Path(__file__).with_name("schema_3.sql")  # schema.sql as version 3 had it


def _schema_3(db: Path) -> sqlite3.Connection:
    """A new index as version 3 made it (autocommit, like the writer's)."""
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in store.statements(SCHEMA_3.read_text(encoding="utf-8")):
        conn.execute(statement)
    return conn


def _schema_1_index(db: Path, paths: list[str]) -> None:
    """An index as schema 1 left it: its tables (the same as now) and one ok
    document with one page per path, stored as given."""
    conn = _schema_3(db)
    for i, path in enumerate(paths):
        cur = conn.execute(
            "INSERT INTO documents (path, kind, size, mtime_ns, sha256, status, pages, "
            "indexed_at) VALUES (?, 'txt', 5, 1, 'x', 'ok', 1, 'then')",
            (path,),
        )
        conn.execute(
            "INSERT INTO pages (doc_id, page, text) VALUES (?, 1, ?)", (cur.lastrowid, f"old{i}")
        )
        conn.execute(
            "INSERT INTO pages_fts (rowid, text) SELECT id, text FROM pages WHERE doc_id = ?",
            (cur.lastrowid,),
        )
        conn.execute(
            "INSERT INTO jobs (path, action, kind, size, mtime_ns, queued_at) "
            "VALUES (?, 'new', 'txt', 5, 1, 'then')",
            (path,),
        )
    conn.execute("DROP INDEX documents_stat")  # (schema 2 added it)
    _drop_schema_3_columns(conn)
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def _drop_schema_3_columns(conn: sqlite3.Connection) -> None:
    for column in store_write.META_COLUMNS_V3:
        conn.execute(f"ALTER TABLE documents DROP COLUMN {column}")
    conn.execute("ALTER TABLE pages DROP COLUMN label")


def _latin1(folder: Path, name: bytes) -> Path:
    path = folder / os.fsdecode(name)
    try:
        path.write_text("latin-1\n")
    except OSError as e:
        pytest.skip(f"this file system refuses file names that are not UTF-8: {e}")
    return path


def test_each_stored_path_gets_the_form_of_the_file_it_names(tmp_path: Path) -> None:
    d = tmp_path
    (d / "lit\\xe9.txt").write_text("literal\n")  # only the literal name exists
    _latin1(d, b"esc\xe9.txt")  # only the Latin-1 name exists
    (d / "both\\xe9.txt").write_text("literal\n")  # both exist: cannot tell
    _latin1(d, b"both\xe9.txt")
    stored = {
        "lit": f"{d}/lit\\xe9.txt",
        "esc": f"{d}/esc\\xe9.txt",
        "both": f"{d}/both\\xe9.txt",
        "gone-plain": f"{d}/gone\\plain.txt",  # gone, no escape in it: its new form
        "gone-escaped": f"{d}/gone\\xe9.txt",  # gone, and it could be either
        "plain": f"{d}/plain.txt",
    }
    db = d / "i.db"
    _schema_1_index(db, list(stored.values()))

    conn = store.open_for_writing(db)  # the writer upgrades it
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 7
    paths = {p for (p,) in conn.execute("SELECT path FROM documents")}
    assert paths == {
        f"{d}/lit\\\\xe9.txt",
        f"{d}/esc\\xe9.txt",
        f"{d}/gone\\\\plain.txt",
        f"{d}/plain.txt",
    }
    # a forgotten document took its pages, and their full text, with it
    assert conn.execute("SELECT count(*) FROM pages").fetchone()[0] == 4
    hits = conn.execute("SELECT rowid FROM pages_fts WHERE pages_fts MATCH 'old2'").fetchall()
    assert hits == []
    assert [p for (p,) in conn.execute("SELECT path FROM jobs")] == [f"{d}/plain.txt"]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'documents_stat'").fetchone()
    conn.close()


def test_path_v2_is_the_text_path_of_the_name_found() -> None:
    found = {b"/a/lit\\xe9.txt"}
    assert upgrade.path_v2("/a/plain.txt", found.__contains__) == "/a/plain.txt"
    assert upgrade.path_v2("/a/lit\\xe9.txt", found.__contains__) == "/a/lit\\\\xe9.txt"
    assert upgrade.path_v2("/a/x\\xe9.txt", {b"/a/x\xe9.txt"}.__contains__) == "/a/x\\xe9.txt"
    assert upgrade.path_v2("/a/x\\xe9.txt", set().__contains__) is None
    assert upgrade.path_v2("/a/x\\y.txt", set().__contains__) == "/a/x\\\\y.txt"


def test_search_reads_a_schema_1_index_and_a_run_upgrades_it(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "caf\\xe9.txt").write_text("a literal name\n")
    _latin1(root, b"caf\xe9.txt")
    db = tmp_path / "i.db"
    _schema_1_index(db, [f"{root}/caf\\xe9.txt"])  # schema 1 had one row for both

    hits = run_cli("search", "old0", "--db", str(db))
    assert hits.returncode == 0 and hits.stdout.startswith(f"{root}/caf\\xe9.txt:1: "), hits
    proc = run_cli("index", str(root), "--db", str(db), "-q")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    assert sorted(p for (p,) in conn.execute("SELECT path FROM documents")) == [
        f"{root}/caf\\\\xe9.txt",
        f"{root}/caf\\xe9.txt",
    ]
    conn.close()
    fresh = tmp_path / "fresh.db"
    assert run_cli("index", str(root), "--db", str(fresh), "-q").returncode == 0
    assert db_snapshot(db) == db_snapshot(fresh)


def test_upgrade_steps_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = store.open_for_writing(tmp_path / "i.db")
    conn.close()
    seen = []
    monkeypatch.setattr(store, "SCHEMA_VERSION", store.SCHEMA_VERSION + 1)
    monkeypatch.setitem(
        upgrade.UPGRADES,
        store.SCHEMA_VERSION - 1,
        lambda c: seen.append(c.execute("ALTER TABLE documents ADD COLUMN extra TEXT")),
    )
    conn = store.open_for_writing(tmp_path / "i.db")
    assert len(seen) == 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    assert "extra" in {r[1] for r in conn.execute("PRAGMA table_info(documents)")}


def test_a_schema_2_index_gets_the_metadata_columns_and_keeps_its_pages(tmp_path: Path) -> None:
    """Version 3 adds documents' title, authors, language, subject, keywords,
    created and pages' label, empty: the pages stay searchable, the next
    reading of a file fills them."""
    db = tmp_path / "i.db"
    conn = _schema_3(db)
    cur = conn.execute(
        "INSERT INTO documents (path, kind, size, mtime_ns, sha256, status, pages, "
        "indexed_at) VALUES ('/a.txt', 'txt', 5, 1, 'x', 'ok', 1, 'then')"
    )
    conn.execute("INSERT INTO pages (doc_id, page, text) VALUES (?, 1, 'kraken')", (cur.lastrowid,))
    conn.execute("INSERT INTO pages_fts (rowid, text) SELECT id, text FROM pages")
    _drop_schema_3_columns(conn)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    assert [h.path for h in search(db, "kraken").hits] == ["/a.txt"]  # read as it is
    conn = store.open_for_writing(db)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(documents)")}
    assert set(store_write.META_COLUMNS) <= columns
    assert "label" in {r[1] for r in conn.execute("PRAGMA table_info(pages)")}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    conn.close()
    assert [h.path for h in search(db, "kraken").hits] == ["/a.txt"]


def test_a_schema_3_index_gets_searchable_titles_and_keeps_its_pages(tmp_path: Path) -> None:
    """Version 4 indexes the titles and authors version 3 stored, makes the
    pages' update trigger fire on their text only, and adds duplicate_of;
    version 5 indexes the pages by document; version 6 lists the pages
    without text in the ledger; version 7 has a table for OCR records."""
    db = tmp_path / "i.db"
    conn = _schema_3(db)
    for i, (title, text) in enumerate([("Moby Dick", "whale"), (None, "kraken whale")]):
        cur = conn.execute(
            "INSERT INTO documents (path, kind, size, mtime_ns, sha256, status, pages, "
            "indexed_at, title, authors) VALUES (?, 'txt', 5, 1, 'x', 'ok', 1, 'then', ?, ?)",
            (f"/{i}.txt", title, "Herman Melville" if title else None),
        )
        conn.execute(
            "INSERT INTO pages (doc_id, page, text) VALUES (?, 1, ?)", (cur.lastrowid, text)
        )
    cur = conn.execute(
        "INSERT INTO documents (path, kind, size, mtime_ns, sha256, status, pages, error, "
        "failed_ranges, indexed_at) VALUES ('/p.pdf', 'pdf', 5, 1, 'y', 'partial', 4, "
        "'pages 3-4: bad', '[[3, 4, \"bad xref\"]]', 'then')"
    )
    conn.execute("INSERT INTO pages (doc_id, page, text) VALUES (?, 1, 'one')", (cur.lastrowid,))
    conn.execute("INSERT INTO pages_fts (rowid, text) SELECT id, text FROM pages")
    conn.close()
    assert [h.path for h in search(db, "melville").hits] == []  # read as it is: no titles yet
    conn = store.open_for_writing(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    assert conn.execute("SELECT count(*) FROM page_ocr").fetchone() == (0,)
    ledger = conn.execute("SELECT path, page, state FROM ledger ORDER BY path, page").fetchall()
    assert [row for row in ledger if row[0] == "/p.pdf"] == [
        ("/p.pdf", 1, "text"),
        ("/p.pdf", 2, "no text"),
        ("/p.pdf", 3, "failed: bad xref"),
        ("/p.pdf", 4, "failed: bad xref"),
    ]
    # version 5: the pages by document (a filtered search's stretch of page ids)
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'pages_doc'").fetchone()
    assert "duplicate_of" in {r[1] for r in conn.execute("PRAGMA table_info(documents)")}
    trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'pages_au'").fetchone()[0]
    assert "UPDATE OF [text]" in trigger
    conn.execute("PRAGMA integrity_check")
    conn.execute("INSERT INTO documents_fts (documents_fts) VALUES ('integrity-check')")
    conn.close()
    assert [h.path for h in search(db, "melville").hits] == ["/0.txt"]
    assert [h.path for h in search(db, "whale").hits][0] == "/0.txt"  # its title says it
    assert [h.path for h in search(db, "kraken").hits] == ["/1.txt"]
