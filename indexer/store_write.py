"""What the writer's connection writes: runs, jobs, documents, pages, gaps.

Why this module exists: ``store.py`` opens the index and reads it; the
writes are as many lines again, and only the writer process (and ``indexer
forget``, under the run lock) makes them. Each function returns the rows it
wrote or deleted, which the writer counts towards its batch size. None of
them begins or commits: the writer owns the transactions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from indexer.extract.base import Meta, Recognised
from indexer.names import attached_range, text_path
from indexer.store import DocRow, under_root, utcnow


def start_run(conn: sqlite3.Connection, roots: Iterable[str], pid: int) -> int:
    """Record a new run and return its id. The caller holds the run lock, so a
    run still marked 'running' is dead, and the jobs it left in progress go
    back to pending, with one more attempt counted (see ``suspects``)."""
    now = utcnow()
    conn.execute(
        "UPDATE runs SET status = 'died', finished_at = ? WHERE status = 'running'", (now,)
    )
    conn.execute(
        "UPDATE jobs SET state = 'pending', attempts = attempts + 1 WHERE state = 'in_progress'"
    )
    cur = conn.execute(
        "INSERT INTO runs (pid, started_at, status, roots) VALUES (?, ?, 'running', ?)",
        (pid, now, json.dumps([text_path(r) for r in roots])),
    )
    return int(cur.lastrowid or 0)


def finish_run(
    conn: sqlite3.Connection, run_id: int, status: str, summary: dict[str, object]
) -> None:
    """A clean stop (finished or Ctrl-C): unfinished jobs wait for the next run,
    and no attempt is counted against them."""
    conn.execute("UPDATE jobs SET state = 'pending' WHERE state = 'in_progress'")
    conn.execute(
        "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE id = ?",
        (status, utcnow(), json.dumps(summary), run_id),
    )


def save_jobs(
    conn: sqlite3.Connection,
    roots: Iterable[str],
    jobs: Sequence[tuple[str, str, str, int, int]],
    run_id: int,
) -> int:
    """Store the plan: jobs under ``roots`` that are not in ``jobs`` (path,
    action, kind, size, mtime_ns) are dropped, the others upserted. A job
    keeps its attempts while its file keeps its stat."""
    planned = {j[0] for j in jobs}
    for root in roots:
        cond, args = under_root(root)
        stale = [
            r[0]
            for r in conn.execute(f"SELECT path FROM jobs WHERE {cond}", args)
            if r[0] not in planned
        ]
        conn.executemany("DELETE FROM jobs WHERE path = ?", [(p,) for p in stale])
    now = utcnow()
    conn.executemany(
        "INSERT INTO jobs (path, action, kind, size, mtime_ns, state, run_id, queued_at) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) "
        "ON CONFLICT (path) DO UPDATE SET action = excluded.action, kind = excluded.kind, "
        "attempts = CASE WHEN jobs.size = excluded.size AND jobs.mtime_ns = excluded.mtime_ns "
        "THEN jobs.attempts ELSE 0 END, "
        "size = excluded.size, mtime_ns = excluded.mtime_ns, state = 'pending', "
        "run_id = excluded.run_id",
        [(*j, run_id, now) for j in jobs],
    )
    return len(jobs)


def mark_started(conn: sqlite3.Connection, paths: Iterable[str], run_id: int) -> None:
    conn.executemany(
        "UPDATE jobs SET state = 'in_progress', run_id = ? WHERE path = ?",
        [(run_id, p) for p in paths],
    )


def delete_job(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("DELETE FROM jobs WHERE path = ?", (path,))


def document_id(conn: sqlite3.Connection, path: str) -> int | None:
    row = conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
    return None if row is None else int(row[0])


def has_pages(conn: sqlite3.Connection, doc_id: int) -> bool:
    sql = "SELECT EXISTS (SELECT 1 FROM pages WHERE doc_id = ?)"
    return bool(conn.execute(sql, (doc_id,)).fetchone()[0])


# (schema 3's; schema 6 added the identifier)
META_COLUMNS_V3 = ("title", "authors", "language", "subject", "keywords", "created")
META_COLUMNS = (*META_COLUMNS_V3, "identifier")


def _meta(meta: Meta) -> tuple[str | None, ...]:
    return (
        meta.title,
        meta.authors,
        meta.language,
        meta.subject,
        meta.keywords,
        meta.created,
        meta.identifier,
    )


def insert_document(
    conn: sqlite3.Connection, row: DocRow, meta: Meta | None = None, copy_of: int | None = None
) -> int:
    """``copy_of``: the document with the same bytes whose pages this one shares."""
    cur = conn.execute(
        "INSERT INTO documents (title, authors, language, subject, keywords, created, "
        "identifier, duplicate_of, kind, size, mtime_ns, sha256, status, pages, error, "
        "failed_ranges, indexed_at, path) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _meta(meta or Meta()) + (copy_of,) + _columns(row),
    )
    return int(cur.lastrowid or 0)


def update_document(
    conn: sqlite3.Connection, row: DocRow, meta: Meta | None = None, copy_of: int | None = None
) -> None:
    """``meta`` None keeps what is stored (a retry of ranges that did not read page 1)."""
    set_meta = "" if meta is None else "".join(f"{c} = ?, " for c in META_COLUMNS)
    conn.execute(
        f"UPDATE documents SET {set_meta}duplicate_of = ?, kind = ?, size = ?, mtime_ns = ?, "
        "sha256 = ?, status = ?, pages = ?, error = ?, failed_ranges = ?, indexed_at = ? "
        "WHERE path = ?",
        (() if meta is None else _meta(meta)) + (copy_of,) + _columns(row),
    )


def copy_of(conn: sqlite3.Connection, sha256: str, doc_id: int | None) -> int | None:
    """The document other than ``doc_id`` that holds the pages of these bytes
    (identical files are indexed once), if there is one."""
    row = conn.execute(
        "SELECT id FROM documents d WHERE sha256 = ? AND status = 'ok' AND duplicate_of IS NULL "
        "AND id IS NOT ? AND EXISTS (SELECT 1 FROM pages p WHERE p.doc_id = d.id) LIMIT 1",
        (sha256, doc_id),
    ).fetchone()
    return None if row is None else int(row[0])


def _hand_down(conn: sqlite3.Connection, doc_id: int) -> bool:
    """Before a document's pages go (it changed, failed or was deleted): its
    pages move to its first copy, which the other copies now share. No text
    is indexed again (pages_au fires on the text only). False: no copies."""
    copies = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM documents WHERE duplicate_of = ? ORDER BY id", (doc_id,)
        )
    ]
    if not copies:
        return False
    heir = copies[0]
    conn.execute("UPDATE pages SET doc_id = ? WHERE doc_id = ?", (heir, doc_id))
    conn.execute("UPDATE page_gaps SET doc_id = ? WHERE doc_id = ?", (heir, doc_id))
    conn.execute("UPDATE page_ocr SET doc_id = ? WHERE doc_id = ?", (heir, doc_id))
    conn.execute("UPDATE documents SET duplicate_of = NULL WHERE id = ?", (heir,))
    conn.execute("UPDATE documents SET duplicate_of = ? WHERE duplicate_of = ?", (heir, doc_id))
    return True


def _columns(r: DocRow) -> tuple[object, ...]:
    failed = json.dumps(r.failed_ranges) if r.failed_ranges else None
    return (
        r.kind,
        r.size,
        r.mtime_ns,
        r.sha256,
        r.status,
        r.pages,
        r.error,
        failed,
        utcnow(),
        r.path,
    )


def insert_placeholder(
    conn: sqlite3.Connection, path: str, kind: str, size: int, mtime_ns: int
) -> int:
    """The row a new chunked document's ranges stream into; its ``Document``
    message completes it (``update_document``) in the same transaction."""
    cur = conn.execute(
        "INSERT INTO documents (path, kind, size, mtime_ns, status, indexed_at) "
        "VALUES (?, ?, ?, ?, 'partial', ?)",
        (path, kind, size, mtime_ns, utcnow()),
    )
    return int(cur.lastrowid or 0)


def delete_pages(
    conn: sqlite3.Connection, doc_id: int, ranges: Iterable[tuple[int, int]] | None = None
) -> int:
    """Delete a document's pages (only those in ``ranges`` if given); the
    delete trigger takes them out of pages_fts. All of them go to its copy
    instead, where it has one (``_hand_down``)."""
    if ranges is None:
        if _hand_down(conn, doc_id):
            return 1
        conn.execute("DELETE FROM page_gaps WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM page_ocr WHERE doc_id = ?", (doc_id,))
        return conn.execute("DELETE FROM pages WHERE doc_id = ?", (doc_id,)).rowcount
    deleted = 0
    for first, last in ranges:
        where = "WHERE doc_id = ? AND page BETWEEN ? AND ?"
        conn.execute(f"DELETE FROM page_gaps {where}", (doc_id, first, last))
        conn.execute(f"DELETE FROM page_ocr {where}", (doc_id, first, last))
        deleted += conn.execute(f"DELETE FROM pages {where}", (doc_id, first, last)).rowcount
    return deleted


def write_recognised(
    conn: sqlite3.Connection, doc_id: int, recognised: dict[int, Recognised]
) -> int:
    """Record how OCR read the pages it read (``page_ocr``)."""
    conn.executemany(
        "INSERT OR REPLACE INTO page_ocr (doc_id, page, engine, languages, dpi, confidence) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(doc_id, n, *record) for n, record in sorted(recognised.items())],
    )
    return len(recognised)


def write_gaps(
    conn: sqlite3.Connection,
    doc_id: int,
    spans: Iterable[tuple[int, int]],
    texts: set[int] | None,
    failed: Sequence[tuple[int, int, str]],
    images: set[int],
    labels: dict[int, str],
) -> int:
    """Record why the pages of ``spans`` that have no text cannot be found
    (``page_gaps``): failed (its range's reason), an image, blank. ``texts``:
    the page numbers with text, None to look them up (pages streamed
    earlier in this transaction)."""
    why = {n: f"failed: {reason}" for a, b, reason in failed for n in range(a, b + 1)}
    rows = []
    for first, last in spans:
        if texts is None:
            have = {
                n
                for (n,) in conn.execute(
                    "SELECT page FROM pages WHERE doc_id = ? AND page BETWEEN ? AND ?",
                    (doc_id, first, last),
                )
            }
        else:
            have = texts
        for n in range(first, last + 1):
            if n not in have:
                state = why.get(n) or ("no text: image only" if n in images else "no text: blank")
                rows.append((doc_id, n, labels.get(n), state))
    conn.executemany(
        "INSERT OR REPLACE INTO page_gaps (doc_id, page, label, state) VALUES (?, ?, ?, ?)", rows
    )
    return len(rows)


def largest_page_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM pages").fetchone()[0])


def write_pages(
    conn: sqlite3.Connection,
    doc_id: int,
    pages: list[tuple[int, str]],
    labels: dict[int, str] | None = None,
    lines: dict[int, int] | None = None,
) -> int:
    """Insert pages, not yet indexed (see schema.sql: no per-row insert
    trigger; ``index_pages_after`` indexes them, in the same transaction). New
    rows get ids above the current largest. ``labels``: printed page labels
    where they differ from the number."""
    label, line = (labels or {}).get, (lines or {}).get
    conn.executemany(
        "INSERT INTO pages (doc_id, page, text, label, line) VALUES (?, ?, ?, ?, ?)",
        [(doc_id, n, text, label(n), line(n)) for n, text in pages],
    )
    return len(pages)


def index_pages_after(conn: sqlite3.Connection, top: int) -> None:
    """Index in pages_fts the pages whose ids are above ``top``: one statement
    for all the documents of a transaction (one per document cost 65 % more of
    the writer's CPU on 10,000 one-page notes)."""
    conn.execute(
        "INSERT INTO pages_fts (rowid, text) SELECT id, text FROM pages WHERE id > ?", (top,)
    )


def largest_document_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM documents").fetchone()[0])


def index_documents_after(conn: sqlite3.Connection, top: int) -> None:
    """Index in documents_fts the documents whose ids are above ``top`` (see
    schema.sql), in the transaction that wrote them and before any of them
    is updated or deleted (their triggers take the old values out)."""
    conn.execute(
        "INSERT INTO documents_fts (rowid, title, authors, subject, keywords) "
        "SELECT id, title, authors, subject, keywords FROM documents WHERE id > ?",
        (top,),
    )


def move_document(conn: sqlite3.Connection, old: str, new: str, size: int, mtime_ns: int) -> int:
    """The document at ``old`` is now at ``new`` (an error record there goes),
    and the files attached to it with it."""
    conn.execute("DELETE FROM documents WHERE path = ? AND status = 'error'", (new,))
    conn.execute(
        "UPDATE documents SET path = ?, size = ?, mtime_ns = ? WHERE path = ?",
        (new, size, mtime_ns, old),
    )
    attached = attached_paths(conn, old)
    if attached:
        delete_documents(conn, attached_paths(conn, new))  # (what another file left there)
        conn.executemany(
            "UPDATE documents SET path = ? WHERE path = ?",
            [(new + path[len(old) :], path) for path in attached],
        )
    conn.executemany("DELETE FROM jobs WHERE path = ?", [(old,), (new,)])
    return 1


def touch_document(conn: sqlite3.Connection, path: str, size: int, mtime_ns: int) -> int:
    conn.execute(
        "UPDATE documents SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path)
    )
    delete_job(conn, path)
    return 1


def attached_paths(conn: sqlite3.Connection, path: str) -> list[str]:
    """The paths of the documents attached to the file at ``path`` (``PATH//NAME``)."""
    low, high = attached_range(path)
    sql = "SELECT path FROM documents WHERE path >= ? AND path < ?"
    return [str(p) for (p,) in conn.execute(sql, (low, high))]


def delete_documents(conn: sqlite3.Connection, paths: Iterable[str]) -> int:
    """Purge documents, their pages and their jobs, and the documents
    attached to them."""
    deleted = 0
    for path in paths:
        attached = attached_paths(conn, path)
        if attached:
            deleted += delete_documents(conn, attached)
        doc_id = document_id(conn, path)
        if doc_id is not None:
            deleted += delete_pages(conn, doc_id) + 1
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        delete_job(conn, path)
    return deleted


def delete_jobs_under(conn: sqlite3.Connection, root: str) -> None:
    cond, args = under_root(root)
    conn.execute(f"DELETE FROM jobs WHERE {cond}", args)


def replace_scan_errors(
    conn: sqlite3.Connection, roots: Iterable[str], errors: list[tuple[str, str]]
) -> None:
    """Replace the directory errors recorded under ``roots`` with these."""
    for root in roots:
        cond, args = under_root(root)
        conn.execute(f"DELETE FROM scan_errors WHERE {cond}", args)
    now = utcnow()
    conn.executemany(
        "INSERT OR REPLACE INTO scan_errors (path, reason, recorded_at) VALUES (?, ?, ?)",
        [(p, r, now) for p, r in errors],
    )
