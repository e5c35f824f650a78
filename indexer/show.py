"""``indexer show``: one document, or one page of it, as the index holds it.

Why this module exists: a hit names a file and a page; people then want to
read that page, or see what the index knows of the file (its metadata, its
status, its pages) without opening SQLite. A page is asked for by its printed
label (``xii``, ``237``: PDF page labels) or by its number in the file; a
label wins where both exist, as people type what the page shows.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from indexer import store
from indexer.errors import UsageError
from indexer.names import text_path


@dataclass(frozen=True)
class Page:
    page: int
    label: str | None
    text: str
    line: int | None = None  # a text file's page: the line it starts at


@dataclass(frozen=True)
class Shown:
    """A document's row (``fields``: column -> value, None left out) and
    its pages: all of them without their text, or the one asked for."""

    path: str
    fields: dict[str, object]
    pages: list[Page]


def show(db: str | Path, path: str, page: str | None = None) -> Shown:
    stored = text_path(os.path.abspath(path))
    conn = store.connect(db)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        row = conn.execute("SELECT * FROM documents WHERE path = ?", (stored,)).fetchone()
        if row is None:
            raise UsageError(
                f"{path} is not in the index",
                hint="indexer search --files lists the paths it holds",
            )
        fields = {k: row[k] for k in row.keys() if row[k] is not None and k not in ("id", "path")}
        label = "label" if version >= 3 else "NULL AS label"
        label += ", line" if version >= 4 else ", NULL AS line"
        doc_id = row["id"]
        if fields.get("duplicate_of") is not None:  # its pages are its original's
            doc_id = fields.pop("duplicate_of")
            (fields["copy_of"],) = conn.execute(
                "SELECT path FROM documents WHERE id = ?", (doc_id,)
            ).fetchone()
        copies = [r[0] for r in conn.execute(_COPIES, (row["id"],))] if version >= 4 else []
        if copies:
            fields["copies"] = "; ".join(copies)
        if page is None:
            rows = conn.execute(
                f"SELECT page, {label}, '' AS text FROM pages WHERE doc_id = ? ORDER BY page",
                (doc_id,),
            ).fetchall()
        else:
            rows = _page(conn, doc_id, page, label)
            if not rows:
                raise UsageError(
                    f"{path} has no page {page!r} with text",
                    hint=f"it has {row['pages']} pages; `indexer show {path}` lists them",
                )
    finally:
        conn.close()
    return Shown(stored, fields, [Page(r[0], r[1], r[3], r[2]) for r in rows])


_COPIES = "SELECT path FROM documents WHERE duplicate_of = ? ORDER BY path"


def _page(conn: sqlite3.Connection, doc_id: int, page: str, label: str) -> list[sqlite3.Row]:
    sql = f"SELECT page, {label}, text FROM pages WHERE doc_id = ? AND "
    if label.startswith("label"):
        rows = conn.execute(sql + "label = ? LIMIT 1", (doc_id, page)).fetchall()
        if rows:
            return rows
    if not page.isdigit():
        return []
    return conn.execute(sql + "page = ?", (doc_id, int(page))).fetchall()
