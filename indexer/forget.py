"""``indexer forget PATH...``: take a folder's or a file's documents out of the index.

Why this module exists: a run only purges what it can see is gone below the
roots it is given, and a root that is itself gone (a folder deleted, a disk
retired) is a usage error, so its documents would stay searchable forever.
Forgetting is the explicit way out: under the run lock (no run writes
meanwhile), in one transaction, every document at or below each path goes
with its pages (a copy elsewhere takes its pages over, as when a run deletes
it), its jobs and the folder errors recorded below it. The paths need not
exist any more.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from indexer import store, store_write
from indexer.errors import IndexerError, UsageError
from indexer.lock import RunLock
from indexer.names import text_path
from indexer.scan import absolute


@dataclass
class Forgotten:
    """What ``forget`` took out (or, for a dry run, would take out)."""

    documents: int = 0
    pages: int = 0
    paths: list[str] = field(default_factory=list)  # the documents, in the index's form
    unknown: list[str] = field(default_factory=list)  # paths nothing in the index is under


def documents_under(conn: sqlite3.Connection, root: str) -> list[tuple[str, int]]:
    """(path, page count) of every document at or below ``root``."""
    cond, args = store.under_root(root)
    sql = (
        f"SELECT path, (SELECT count(*) FROM pages WHERE doc_id = documents.id) "
        f"FROM documents WHERE {cond} ORDER BY path"
    )
    return [(str(p), int(n)) for p, n in conn.execute(sql, args)]


def forget(db: str | Path, paths: list[str], *, dry_run: bool = False) -> Forgotten:
    """Take the documents at or below ``paths`` out of the index at ``db``."""
    db = Path(db).absolute()
    roots = [absolute(p) for p in paths]
    out = Forgotten()
    if dry_run:
        conn = store.connect(db)
        try:
            _collect(conn, roots, out)
        except sqlite3.Error as e:
            raise store.explain_error(db, e, "read") from None
        finally:
            conn.close()
        return out
    store.connect(db).close()  # (says what is wrong with a file that is no index)
    with RunLock(db).acquire():
        conn = store.open_for_writing(db)
        try:
            conn.execute("BEGIN IMMEDIATE")
            _collect(conn, roots, out)
            store_write.delete_documents(conn, out.paths)
            for root in roots:
                store_write.delete_jobs_under(conn, root)
            store_write.replace_scan_errors(conn, roots, [])
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise store.explain_error(db, e, "write the index") from None
        finally:
            conn.close()
    return out


def _collect(conn: sqlite3.Connection, roots: list[str], out: Forgotten) -> None:
    seen: set[str] = set()
    for root in roots:
        found = documents_under(conn, root)
        if not found:
            out.unknown.append(text_path(root))
        for path, pages in found:
            if path not in seen:
                seen.add(path)
                out.paths.append(path)
                out.pages += pages
    out.documents = len(out.paths)


def missing_root(db: Path, path: str) -> UsageError:
    """The error for a root to index that does not exist: where the index
    holds documents below it, the hint says how to forget them."""
    held = 0
    if db.is_file():
        try:
            conn = store.connect(db)
        except IndexerError:
            conn = None
        if conn is not None:
            try:
                held = len(documents_under(conn, absolute(path)))
            except sqlite3.Error:
                pass
            finally:
                conn.close()
    if not held:
        return UsageError(f"{path}: no such file or directory")
    many = "s" if held > 1 else ""
    return UsageError(
        f"{path}: no such file or directory, but the index holds {held:,} document{many} "
        "from there",
        hint=f"remove them from the index with: indexer forget {path} --db {db}",
    )
