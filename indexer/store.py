"""The index file: connections, schema and its versions, and read queries.

Why this module exists: everything that knows table names lives here or in
``schema.sql``. The writer process opens the only read-write connection
(``open_for_writing``); the planner, ``search`` and ``stats`` open read-only
ones (``connect``), which WAL mode lets run while a run is writing.

Schema versions follow calibre's FTS store: ``PRAGMA user_version`` holds the
version, a new file gets ``schema.sql``, an older one gets the
``UPGRADES[n]`` steps in one exclusive transaction, a newer one is refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from indexer.errors import DatabaseError

SCHEMA_VERSION = 1
# UPGRADES[n] upgrades a version-n file to n+1 (none yet: version 1 is the first).
UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {}
BUSY_TIMEOUT_MS = 10_000


def text_path(path: str) -> str:
    """The form in which a path is stored in the index and printed.

    A file name that is not valid UTF-8 (old archives, Windows or Latin-1
    systems) reaches Python with its undecodable bytes as lone surrogates
    (``os.fsdecode``), and SQLite text cannot hold those: such bytes become
    ``\\xNN`` escapes, as Python's ``backslashreplace`` writes them. A valid
    path is returned as it is, so the form is idempotent, and it is computed
    the same way on every run: the planner finds the file again by it.
    """
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:  # a surrogate that no file name produced
        return path.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uri(path: Path, mode: str) -> str:
    return f"{path.absolute().as_uri()}?mode={mode}"


def explain_error(path: Path, e: sqlite3.Error, doing: str) -> DatabaseError:
    msg = str(e)
    if "file is not a database" in msg or "file is encrypted" in msg:
        return DatabaseError(f"{path} is not an SQLite database")
    if "unable to open" in msg:
        parent = path.absolute().parent
        if not parent.is_dir():
            return DatabaseError(f"cannot {doing} {path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            return DatabaseError(f"cannot {doing} {path}: permission denied")
    if "readonly" in msg or "read-only" in msg:
        return DatabaseError(f"cannot {doing} {path}: the file or its directory is read-only")
    if "disk" in msg and "full" in msg:
        return DatabaseError(f"cannot {doing} {path}: the disk is full")
    return DatabaseError(f"cannot {doing} {path}: {msg}")


def _check_version(conn: sqlite3.Connection, path: Path) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{path} was written by a newer indexer (schema {version}, this one knows "
            f"{SCHEMA_VERSION})",
            hint="upgrade indexer",
        )
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise DatabaseError(f"{path} is an SQLite database, but not an indexer index")
    return version


def connect(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing index (search, stats, planning)."""
    path = Path(path)
    if not path.is_file():
        raise DatabaseError(
            f"no index at {path}", hint="create one with: indexer index PATH --db " + str(path)
        )
    try:
        conn = sqlite3.connect(_uri(path, "ro"), uri=True, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = _check_version(conn, path)
    except sqlite3.Error as e:
        raise explain_error(path, e, "read") from None
    if version == 0:
        conn.close()
        raise DatabaseError(f"{path} is empty: no run has finished creating it yet")
    if version < SCHEMA_VERSION:
        conn.close()
        raise DatabaseError(
            f"{path} uses schema {version}; run `indexer index` once to upgrade it to "
            f"{SCHEMA_VERSION}"
        )
    conn.row_factory = sqlite3.Row
    return conn


def open_for_writing(path: str | Path) -> sqlite3.Connection:
    """The writer's connection: creates or upgrades the schema, WAL mode, manual
    transactions (``isolation_level=None``)."""
    path = Path(path)
    try:
        conn = sqlite3.connect(
            _uri(path, "rwc"), uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = _check_version(conn, path)
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise DatabaseError(f"cannot use WAL mode on {path}")
        # NORMAL is safe in WAL mode: a crash or power loss can lose the last
        # commits, never consistency.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if version == 0:
            _create(conn)
        elif version < SCHEMA_VERSION:
            _upgrade(conn, version)
    except sqlite3.Error as e:
        raise explain_error(path, e, "write the index") from None
    return conn


def _create(conn: sqlite3.Connection) -> None:
    sql = resources.files("indexer").joinpath("schema.sql").read_text(encoding="utf-8")
    conn.execute("BEGIN EXCLUSIVE")
    try:
        for statement in _statements(sql):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(sql: str) -> Iterable[str]:
    """Split schema.sql into statements (trigger bodies contain ';')."""
    buf = ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        yield buf.strip()


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("BEGIN EXCLUSIVE")
    try:
        while version < SCHEMA_VERSION:
            UPGRADES[version](conn)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# --- read queries -------------------------------------------------------------


class DocRow(NamedTuple):  # a NamedTuple: a no-op run builds one per file
    id: int
    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    pages: int | None
    failed_ranges: tuple[tuple[int, int, str], ...]


def under_root(root: str) -> tuple[str, tuple[str, str, str]]:
    """SQL condition (on an indexed column) for 'path is root or below it'."""
    root = text_path(root)
    prefix = root.rstrip(os.sep) + os.sep
    # '/' + 1 == '0': every path starting with prefix sorts in [prefix, prefix0)
    return "(path = ? OR (path >= ? AND path < ?))", (
        root,
        prefix,
        prefix[:-1] + chr(ord(os.sep) + 1),
    )


def stats_under(
    conn: sqlite3.Connection, roots: Iterable[str]
) -> dict[str, tuple[int, int, str, str]]:
    """path -> (size, mtime_ns, kind, status) for every document at or below
    ``roots``: the light columns a no-change run compares (the hashes are
    fetched only for the few documents that need them, see ``documents``)."""
    out: dict[str, tuple[int, int, str, str]] = {}
    for root in roots:
        cond, args = under_root(root)
        sql = f"SELECT path, size, mtime_ns, kind, status FROM documents WHERE {cond}"
        out.update((r[0], r[1:]) for r in conn.execute(sql, args))
    return out


def documents(conn: sqlite3.Connection, paths: Iterable[str]) -> dict[str, DocRow]:
    """Full rows for ``paths`` (those that exist)."""
    out: dict[str, DocRow] = {}
    sql = (
        "SELECT id, path, kind, size, mtime_ns, sha256, status, pages, failed_ranges "
        "FROM documents WHERE path = ?"
    )
    for path in paths:
        r = conn.execute(sql, (text_path(path),)).fetchone()
        if r is not None:
            ranges = tuple(tuple(x) for x in json.loads(r[8])) if r[8] else ()
            out[r[1]] = DocRow._make((*r[:8], ranges))
    return out


def jobs_under(conn: sqlite3.Connection, roots: Iterable[str]) -> dict[str, sqlite3.Row]:
    """Jobs an earlier run planned and did not finish, at or below ``roots``."""
    out: dict[str, sqlite3.Row] = {}
    for root in roots:
        cond, args = under_root(root)
        for r in conn.execute(f"SELECT * FROM jobs WHERE {cond}", args):
            out[r["path"]] = r
    return out


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Documents by status, pages, and the size of the index."""
    out = {s: 0 for s in ("ok", "empty", "partial", "error")}
    for status, n in conn.execute("SELECT status, count(*) FROM documents GROUP BY status"):
        out[status] = n
    out["documents"] = sum(out[s] for s in ("ok", "empty", "partial", "error"))
    out["pages"] = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    out["pending_jobs"] = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    return out


def error_records(conn: sqlite3.Connection, limit: int | None = None) -> list[sqlite3.Row]:
    sql = "SELECT path, kind, status, reason, recorded_at FROM errors ORDER BY path"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return list(conn.execute(sql))
