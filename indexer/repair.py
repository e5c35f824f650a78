"""Putting back what another tool took out of an index of this version.

Why this module exists: the index is an ordinary SQLite file, and sqlite3
shells, Datasette plugins and scripts can drop its tables. Each run checks
that every table, view and trigger of ``schema.sql`` is there (one query
against a constant set of names); what is missing is made again, the FTS
index rebuilt where it was touched, and documents whose pages went are read
again. ``store.py`` keeps the schema itself, its versions and its upgrades.
"""

from __future__ import annotations

import re
import sqlite3

from indexer import store
from indexer.store import schema_sql, statements, tokenize_of

_CREATE = re.compile(r"CREATE\s+(?:VIRTUAL\s+)?(?:TABLE|VIEW|TRIGGER|INDEX)\s+\[?(\w+)\]?", re.I)


def schema_is_whole(conn: sqlite3.Connection) -> bool:
    """Does the index still hold every table, view and trigger of schema.sql?"""
    return not _missing(conn)


# What schema.sql creates (tests/test_store.py keeps the two in step): checked
# against sqlite_master at every run, the file is read only when one is missing.
SCHEMA_OBJECTS = frozenset(
    [
        *("documents", "documents_stat", "documents_sha256", "documents_duplicate"),
        *("pages", "pages_doc", "pages_fts", "pages_ad", "pages_au"),
        *("documents_fts", "documents_ad", "documents_au"),
        *("scan_errors", "errors", "jobs", "runs", "page_gaps", "ledger", "page_ocr"),
    ]
)


def schema_objects(tokenize: str | None = None) -> list[tuple[str, str]]:
    """(name, CREATE statement) of each table, view and trigger of schema.sql
    (its FTS tables made with ``tokenize``: see ``store.schema_sql``)."""
    sql = schema_sql() if tokenize is None else schema_sql(tokenize)
    return [(m.group(1), st) for st in statements(sql) if (m := _CREATE.match(st))]


def _missing(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, CREATE statement) of each schema object the index lacks."""
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    if SCHEMA_OBJECTS <= present:
        return []
    return [(name, st) for name, st in schema_objects(tokenize_of(conn)) if name not in present]


def repair_schema(conn: sqlite3.Connection) -> list[str]:
    """Re-create what another tool dropped from an index of this version, and
    say what was done (one line each). The bookkeeping (jobs, runs, scan
    errors, the errors view) is simply made again; a dropped FTS table or
    trigger is made again and the FTS index rebuilt from the pages; dropped
    pages make their documents look changed, so the next run extracts them
    again. Nothing is done (one query) when the schema is whole."""
    missing = _missing(conn)
    if not missing:
        return []
    names = [name for name, _ in missing]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for _, statement in missing:
            conn.execute(statement)
        notes = [f"repaired the index: re-created {', '.join(names)}, dropped by another tool"]
        if "pages" in names:
            n = store.forget_contents(conn)
            notes.append(f"repaired the index: its pages were gone; {n} documents are read again")
        if "pages" in names or {"pages_fts", "pages_ad", "pages_au"} & set(names):
            store.rebuild_full_text(conn)
            notes.append("repaired the index: the full-text index was rebuilt from the pages")
        if {"documents", "documents_fts", "documents_ad", "documents_au"} & set(names):
            store.rebuild_documents_fts(conn)
            notes.append("repaired the index: the titles' full-text index was rebuilt")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return notes
