r"""Upgrading an index written by an older indexer to this schema version.

Why this module exists: an index outlives the program that wrote it (a nightly
cron job keeps one for years), so a new version of the schema comes with a step
that brings the old file up to date in place, in the writer's exclusive
transaction (``store._upgrade``), rather than a full re-index. ``UPGRADES[n]``
turns a version-n file into version n+1; readers (``search``, ``stats``) read
any version from ``store.OLDEST_READABLE`` on, so an index on read-only media
stays searchable.

Version 2: stored paths escape the backslash (``names.text_path``), and the
``documents_stat`` index covers what a no-change run compares. Version 1
stored a file literally named ``caf\xe9.txt`` and a Latin-1 ``caf<E9>.txt``
alike, as ``caf\xe9.txt``. A version-1 path with a backslash is looked up on
disk to tell which file it stands for; where that cannot be told (both exist,
or an escaped name that is gone), the document is forgotten and the next run
reads the file again. Jobs and directory errors with a backslash are dropped:
the next run plans and scans them again.

Version 3: documents carry their title, authors, language, subject, keywords
and creation date, pages their printed label. The columns are added empty; a
document gets them when it is next read (``--reindex`` reads them all now).

Version 4: titles, authors, subjects and keywords are searchable
(``documents_fts``, filled from what version 3 stored); identical files are
indexed once (``documents.duplicate_of``; copies already indexed twice stay
so until they next change); the pages' update trigger fires on their text
only, so moving pages to a copy indexes nothing again; a text file's pages
record the line they start at (``pages.line``, filled when it is next read).

Version 5: ``pages_doc``, an index of the pages by document, which gives a
document's stretch of page ids in two seeks (filtered searches use it). It
is built from the pages in the upgrade: 0.7 s for a million pages.

Version 6: ``documents.identifier`` (an ISBN, DOI or URN, filled when a
document is next read), ``page_gaps`` and the ``ledger`` view: a row for each page a
search cannot find, and why. The upgrade lists the pages already indexed
without text as ``no text`` (why was not recorded; a failed range's pages
get its reason); they say more when their document is next read.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable

from indexer import store, store_write
from indexer.names import text_path

# the \xNN escapes of undecodable bytes that version 1 wrote (always >= 0x80:
# an ASCII byte is valid UTF-8)
_ESCAPE = re.compile(rb"\\x([89a-f][0-9a-f])")


def _names_v1(stored: str) -> list[bytes]:
    """The real file names a version-1 path may stand for: itself, and the
    name with its escapes decoded."""
    literal = stored.encode("utf-8", "surrogatepass")
    names = [literal]
    if _ESCAPE.search(literal):
        names.append(_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), literal))
    return names


def path_v2(stored: str, exists: Callable[[bytes], bool] = os.path.lexists) -> str | None:
    """The version-2 form of a version-1 path; None: it cannot be told which
    file it was (the document is forgotten and read again)."""
    if "\\" not in stored:
        return stored
    names = _names_v1(stored)
    there = [name for name in names if exists(name)]
    if len(there) == 1:
        return text_path(os.fsdecode(there[0]))
    if not there and len(names) == 1:
        return text_path(stored)  # gone, and not ambiguous: purged by the next run
    return None


def _upgrade_1(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, path FROM documents WHERE instr(path, '\\') > 0").fetchall()
    for doc_id, path in rows:
        new = path_v2(path)
        if new == path:
            continue
        try:
            if new is not None:
                conn.execute("UPDATE documents SET path = ? WHERE id = ?", (new, doc_id))
                continue
        except sqlite3.IntegrityError:  # another row has that path already
            pass
        conn.execute("DELETE FROM pages WHERE doc_id = ?", (doc_id,))  # (no copies yet)
        conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
    conn.execute("DELETE FROM jobs WHERE instr(path, '\\') > 0")
    conn.execute("DELETE FROM scan_errors WHERE instr(path, '\\') > 0")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS documents_stat "
        "ON documents (path, size, mtime_ns, kind, status)"
    )


def _upgrade_2(conn: sqlite3.Connection) -> None:
    for column in store_write.META_COLUMNS_V3:
        conn.execute(f"ALTER TABLE documents ADD COLUMN {column} TEXT")
    conn.execute("ALTER TABLE pages ADD COLUMN label TEXT")


def _upgrade_3(conn: sqlite3.Connection) -> None:
    from indexer.repair import schema_objects

    conn.execute(
        "ALTER TABLE documents ADD COLUMN duplicate_of INTEGER "
        "REFERENCES documents(id) ON DELETE SET NULL"
    )
    conn.execute("ALTER TABLE pages ADD COLUMN line INTEGER")
    conn.execute("DROP TRIGGER IF EXISTS pages_au")
    new = {"documents_sha256", "documents_duplicate", "pages_au", "documents_fts"}
    new |= {"documents_ad", "documents_au"}
    for name, statement in schema_objects(store.tokenize_of(conn)):
        if name in new:
            conn.execute(statement)
    store.rebuild_documents_fts(conn)


def _upgrade_4(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE INDEX IF NOT EXISTS pages_doc ON pages (doc_id)")


def _upgrade_5(conn: sqlite3.Connection) -> None:
    from indexer.repair import schema_objects

    conn.execute("ALTER TABLE documents ADD COLUMN identifier TEXT")
    for name, statement in schema_objects(store.tokenize_of(conn)):
        if name in ("page_gaps", "ledger"):
            conn.execute(statement)
    # the pages already indexed without text: why is not known, but they are
    # listed (a failed range's pages with its reason)
    conn.execute(
        """
        WITH RECURSIVE n(doc_id, page, last) AS (
            SELECT id, 1, pages FROM documents
            WHERE pages > 0 AND status != 'error' AND duplicate_of IS NULL
            UNION ALL SELECT doc_id, page + 1, last FROM n WHERE page < last
        )
        INSERT INTO page_gaps (doc_id, page, state)
        SELECT doc_id, page, 'no text' FROM n
        WHERE NOT EXISTS (SELECT 1 FROM pages p WHERE p.doc_id = n.doc_id AND p.page = n.page)
        """
    )
    conn.execute(
        """
        UPDATE page_gaps SET state = coalesce((
            SELECT 'failed: ' || json_extract(r.value, '$[2]')
            FROM documents d, json_each(d.failed_ranges) r
            WHERE d.id = page_gaps.doc_id
            AND page_gaps.page >= json_extract(r.value, '$[0]')
            AND page_gaps.page <= json_extract(r.value, '$[1]')
        ), state)
        WHERE doc_id IN (SELECT id FROM documents WHERE failed_ranges IS NOT NULL)
        """
    )


def _upgrade_6(conn: sqlite3.Connection) -> None:
    from indexer.repair import schema_objects

    for name, statement in schema_objects(store.tokenize_of(conn)):
        if name == "page_ocr":
            conn.execute(statement)


UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _upgrade_1,
    2: _upgrade_2,
    3: _upgrade_3,
    4: _upgrade_4,
    5: _upgrade_5,
    6: _upgrade_6,
}
