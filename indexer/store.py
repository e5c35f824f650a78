"""The index file: connections, schema and its versions, and read queries
(``store_write.py`` holds what the writer writes).

Why this module exists: everything that knows table names lives here or in
``schema.sql`` (and ``repair.py``, which checks that they are all there). The
writer process opens the only read-write connection (``open_for_writing``);
the planner, ``search`` and ``stats`` open connections that only read
(``connect``), which WAL mode lets run while a run is writing.

Schema versions follow calibre's FTS store: ``PRAGMA user_version`` holds the
version, a new file gets ``schema.sql``, an older one gets the
``upgrade.UPGRADES[n]`` steps in one exclusive transaction, a newer one is
refused.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from indexer.errors import DatabaseError
from indexer.names import container_of, text_path

SCHEMA_VERSION = 7
# search and stats read an index from this version on (its tables are the
# same; only the form of some paths differs: upgrade.py)
OLDEST_READABLE = 1
BUSY_TIMEOUT_MS = 10_000
# The FTS5 tokenizers an index can be made with (``indexer index --tokenizer``),
# all standard SQLite, so any sqlite3 still searches the file. The one an
# index was made with is the one in its CREATE VIRTUAL TABLE statements
# (``tokenizer_of``): every later run and search uses it.
TOKENIZERS = {
    "unicode61": "unicode61 remove_diacritics 2",  # words; accents fold
    "porter": "porter unicode61 remove_diacritics 2",  # English stemming: running ~ run
    "trigram": "trigram",  # substrings: CJK and other scripts without spaces
}
DEFAULT_TOKENIZER = "unicode61"
_TOKENIZE = re.compile(r"tokenize\s*=\s*'([^']*)'")


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uri(path: Path, mode: str) -> str:
    return f"{path.absolute().as_uri()}?mode={mode}"


def explain_error(path: Path, e: sqlite3.Error, doing: str) -> DatabaseError:
    msg = str(e)
    if "no such table" in msg or "no such column" in msg:
        # a dropped table is made again by the next run (repair.py), a
        # renamed column is not
        hint = "an `indexer index` run repairs it" if "no such table" in msg else None
        return DatabaseError(
            f"cannot {doing} {path}: the index was changed by another tool ({msg})", hint=hint
        )
    if "file is not a database" in msg or "file is encrypted" in msg:
        return DatabaseError(f"{path} is not an SQLite database")
    if "malformed" in msg:
        return DatabaseError(
            f"cannot {doing} {path}: the file is damaged (truncated or overwritten: {msg})",
            hint="restore a copy, or move it away and index again",
        )
    if "unable to open" in msg:
        if path.is_dir():
            return DatabaseError(
                f"cannot {doing} {path}: it is a directory, not an index file",
                hint=f"name a file in it: --db {path / 'index.db'}",
            )
        parent = path.absolute().parent
        if not parent.is_dir():
            return DatabaseError(f"cannot {doing} {path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            return DatabaseError(f"cannot {doing} {path}: permission denied")
    if "database is locked" in msg:
        return DatabaseError(
            f"cannot {doing} {path}: another program is writing to it "
            f"(waited {BUSY_TIMEOUT_MS // 1000} s)",
            hint="close that program (a sqlite3 shell, a database browser) or run again later",
        )
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


def connect(path: str | Path, *, planning: bool = False) -> sqlite3.Connection:
    """A connection that only reads an existing index (search, stats,
    planning); see ``_open_for_reading``. ``planning``: the planner compares
    the index's paths with the disk's, which needs this version's form of
    them (an older index is upgraded by the writer first)."""
    path = Path(path)
    if path.is_dir():
        raise DatabaseError(
            f"{path} is a directory, not an index file",
            hint=f"name a file in it: --db {path / 'index.db'}",
        )
    if not path.is_file():
        raise DatabaseError(
            f"no index at {path}", hint="create one with: indexer index PATH --db " + str(path)
        )
    conn = None
    try:
        conn = _open_for_reading(path)
        version = _check_version(conn, path)
    except (sqlite3.Error, DatabaseError) as e:
        if conn is not None:
            conn.close()  # (the last connection removes the -wal and -shm it made)
        if isinstance(e, DatabaseError):
            raise
        raise explain_error(path, e, "read") from None
    if version == 0:
        conn.close()
        raise DatabaseError(f"{path} is empty: no run has finished creating it yet")
    if version < (SCHEMA_VERSION if planning else OLDEST_READABLE):
        conn.close()
        raise DatabaseError(
            f"{path} uses schema {version}; run `indexer index` once to upgrade it to "
            f"{SCHEMA_VERSION}"
        )
    conn.row_factory = sqlite3.Row
    return conn


def _open_for_reading(path: Path) -> sqlite3.Connection:
    """A connection that reads. Where the file can be written, it is opened
    read-write but ``query_only``: the last connection to close a WAL index
    removes its -wal and -shm files, which a read-only one cannot do (every
    search left them behind). Where it cannot, read-only; and on read-only
    media (a DVD, a read-only share: no -shm can be made beside the index, so
    even that fails), immutable, since nothing can write it meanwhile."""
    writable = os.access(path, os.W_OK) and os.access(path.absolute().parent, os.W_OK)
    uris = [_uri(path, "rw")] if writable else [_uri(path, "ro"), _uri(path, "ro") + "&immutable=1"]
    for uri in uris:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA query_only = ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens it for real
            return conn
        except sqlite3.Error:
            conn.close()
            if uri == uris[-1]:
                raise
    raise AssertionError("unreachable")


def open_for_writing(path: str | Path, tokenizer: str | None = None) -> sqlite3.Connection:
    """The writer's connection: creates or upgrades the schema, WAL mode, manual
    transactions (``isolation_level=None``). ``tokenizer`` (a ``TOKENIZERS``
    name) is for a new file; an existing one keeps its own, and asking for
    another is an error."""
    path = Path(path)
    conn: sqlite3.Connection | None = None
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
            _create(conn, tokenizer or DEFAULT_TOKENIZER)
        else:
            check_tokenizer(conn, path, tokenizer)
            if version < SCHEMA_VERSION:
                _upgrade(conn, version)
    except (sqlite3.Error, DatabaseError) as e:
        if conn is not None:
            conn.close()  # (the last connection removes the -wal and -shm it made)
        if isinstance(e, DatabaseError):
            raise
        raise explain_error(path, e, "write the index") from None
    return conn


def _create(conn: sqlite3.Connection, tokenizer: str) -> None:
    conn.execute("BEGIN EXCLUSIVE")
    try:
        for statement in statements(schema_sql(TOKENIZERS[tokenizer])):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def schema_sql(tokenize: str = TOKENIZERS[DEFAULT_TOKENIZER]) -> str:
    """schema.sql, its FTS tables made with ``tokenize``."""
    sql = resources.files("indexer").joinpath("schema.sql").read_text(encoding="utf-8")
    return sql.replace(f"tokenize='{TOKENIZERS[DEFAULT_TOKENIZER]}'", f"tokenize='{tokenize}'")


def tokenize_of(conn: sqlite3.Connection) -> str:
    """The FTS5 ``tokenize`` argument the index was made with (read from
    whichever of its FTS tables is there; the default when neither is)."""
    for (sql,) in conn.execute(
        "SELECT sql FROM sqlite_master WHERE name IN ('pages_fts', 'documents_fts') "
        "ORDER BY name DESC"
    ):
        if m := _TOKENIZE.search(sql or ""):
            return m.group(1)
    return TOKENIZERS[DEFAULT_TOKENIZER]


def tokenizer_of(conn: sqlite3.Connection) -> str:
    """The ``TOKENIZERS`` name of the index's tokenizer (or its own
    ``tokenize`` text, for an index another tool made with another one)."""
    tokenize = tokenize_of(conn)
    names = [name for name, arg in TOKENIZERS.items() if arg == tokenize]
    return names[0] if names else tokenize


def check_tokenizer(conn: sqlite3.Connection, path: Path, wanted: str | None) -> None:
    if wanted is None:
        return
    have = tokenizer_of(conn)
    if have != wanted:
        raise DatabaseError(
            f"{path} was made with the {have} tokenizer, not {wanted}",
            hint=f"leave out --tokenizer, or index into a new file for {wanted}",
        )


def statements(sql: str) -> Iterable[str]:
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
    from indexer.upgrade import UPGRADES  # (it uses this module's functions)

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
    """A documents row, as read (``documents``) and as written
    (``insert_document``, ``update_document``: the id is then ignored)."""

    id: int
    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    pages: int | None
    error: str | None
    failed_ranges: Sequence[tuple[int, int, str]]


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
    fetched only for the few documents that need them, see ``documents``).
    Read from the ``documents_stat`` index alone."""
    out: dict[str, tuple[int, int, str, str]] = {}
    for root in roots:
        cond, args = under_root(root)
        sql = f"SELECT path, size, mtime_ns, kind, status FROM documents WHERE {cond}"
        out.update({p: (s, m, k, st) for p, s, m, k, st in conn.execute(sql, args)})
    return out


def sized_outside(conn: sqlite3.Connection, roots: Iterable[str], sizes: set[int]) -> list[str]:
    """The paths of documents outside ``roots`` (not errors) with one of
    ``sizes``: where a file new under the roots may have moved from. Read from
    the ``documents_stat`` index alone."""
    inside = [(p, p.rstrip(os.sep) + os.sep) for p in map(text_path, roots)]
    return [
        str(path)
        for path, size, status in conn.execute("SELECT path, size, status FROM documents")
        if size in sizes
        and status != "error"
        and container_of(path) is None  # (an attached file goes with its PDF)
        and not any(path == r or str(path).startswith(pre) for r, pre in inside)
    ]


def documents(conn: sqlite3.Connection, paths: Iterable[str]) -> dict[str, DocRow]:
    """Full rows for ``paths`` (in the index's form; those that exist)."""
    out: dict[str, DocRow] = {}
    sql = (
        "SELECT id, path, kind, size, mtime_ns, sha256, status, pages, error, failed_ranges "
        "FROM documents WHERE path = ?"
    )
    for path in paths:
        r = conn.execute(sql, (path,)).fetchone()
        if r is not None:
            out[r[1]] = DocRow._make((*r[:9], _failed_ranges(r[9])))
    return out


def _failed_ranges(stored: str | None) -> tuple[tuple[int, int, str], ...]:
    """A documents row's failed_ranges; what another tool wrote there that is
    not a JSON list of ranges reads as none (the whole file is read again)."""
    try:
        ranges = tuple(tuple(x) for x in json.loads(stored)) if stored else ()
    except (ValueError, TypeError):
        return ()
    return ranges  # (their values are checked by plan._valid_ranges)


def recent_runs(conn: sqlite3.Connection, limit: int = 10) -> list[dict[str, object]]:
    """The last ``limit`` runs, newest first: the runs table's columns, and
    the summary each stored (its figures: see ``run.RunSummary``)."""
    sql = (
        "SELECT id, pid, started_at, finished_at, status, roots, summary FROM runs "
        "ORDER BY id DESC LIMIT ?"
    )
    out: list[dict[str, object]] = []
    for r in conn.execute(sql, (limit,)):
        try:
            summary = json.loads(r[6]) if r[6] else {}
            roots = json.loads(r[5])
        except (ValueError, TypeError):  # another tool wrote something else there
            summary, roots = {}, []
        out.append(
            {"id": r[0], "pid": r[1], "started_at": r[2], "finished_at": r[3], "status": r[4]}
            | {"roots": roots, "summary": summary if isinstance(summary, dict) else {}}
        )
    return out


def root_devices(conn: sqlite3.Connection, roots: Iterable[str]) -> dict[str, int]:
    """The device each root was on when a recent run last found it not empty
    (runs record them in their summary: ``root_devices``)."""
    wanted, out = {text_path(r) for r in roots}, {}
    sql = "SELECT summary FROM runs WHERE summary IS NOT NULL ORDER BY id DESC LIMIT 200"
    for (summary,) in conn.execute(sql):
        try:
            devices = json.loads(summary).get("root_devices") or {}
        except (ValueError, AttributeError):
            continue
        for root, device in devices.items():
            if root in wanted and root not in out and isinstance(device, int):
                out[root] = device
        if len(out) == len(wanted):
            break
    return out


def _paths_under(
    conn: sqlite3.Connection, roots: Iterable[str], condition: str, params: Sequence[object] = ()
) -> set[str]:
    """The paths of the documents at or below ``roots`` that meet ``condition``
    (on ``d``, with ``params``)."""
    out: set[str] = set()
    for root in roots:
        cond, args = under_root(root)
        sql = f"SELECT path FROM documents d WHERE {cond} AND {condition}"
        out.update(r[0] for r in conn.execute(sql, [*args, *params]))
    return out


def pageless_under(conn: sqlite3.Connection, roots: Iterable[str]) -> set[str]:
    """Documents at or below ``roots`` that are 'ok' (they had text) but have
    no page rows: another tool deleted them (``indexer index --repair``)."""
    return _paths_under(
        conn,
        roots,
        "status = 'ok' AND duplicate_of IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.doc_id = d.id)",
    )


def unrecognised_under(conn: sqlite3.Connection, roots: Iterable[str], languages: str) -> set[str]:
    """Documents at or below ``roots`` with pictures OCR has not read in
    ``languages``: pages that are images without text and no OCR record in
    them, or pages recognised in other languages (a run with ``--ocr`` reads
    them again). A page whose images cover too little of it to be a scan
    (or an EPUB page of several pictures) has no record either: its document
    is read again by each ``--ocr`` run (the text alone: cheap)."""
    condition = (
        "kind IN ('pdf', 'image', 'epub') AND status IN ('ok', 'empty', 'partial') "
        "AND duplicate_of IS NULL AND ("
        "EXISTS (SELECT 1 FROM page_gaps g WHERE g.doc_id = d.id "
        "AND g.state = 'no text: image only' AND NOT EXISTS (SELECT 1 FROM page_ocr o "
        "WHERE o.doc_id = g.doc_id AND o.page = g.page AND o.languages = ?)) OR "
        "EXISTS (SELECT 1 FROM page_ocr o WHERE o.doc_id = d.id AND o.languages != ?))"
    )
    try:
        return _paths_under(conn, roots, condition, [languages, languages])
    except sqlite3.OperationalError:  # an index older than schema 7 (a dry run)
        return set()


def forget_contents(conn: sqlite3.Connection) -> int:
    """Make every document with text look changed (no stat, no hash), so the
    next plan extracts it again: its pages are gone."""
    sql = "UPDATE documents SET size = -1, sha256 = NULL WHERE status IN ('ok', 'partial')"
    return conn.execute(sql).rowcount


def rebuild_full_text(conn: sqlite3.Connection) -> None:
    """Rebuild pages_fts from the pages (it may be out of step after another
    tool wrote to pages without the triggers)."""
    conn.execute("INSERT INTO pages_fts (pages_fts) VALUES ('rebuild')")


def rebuild_documents_fts(conn: sqlite3.Connection) -> None:
    """Rebuild documents_fts from the documents' titles, authors, subjects
    and keywords."""
    conn.execute("INSERT INTO documents_fts (documents_fts) VALUES ('rebuild')")


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
    try:  # (schema 7)
        out["ocr_pages"] = conn.execute(
            "SELECT count(*) FROM page_ocr WHERE confidence IS NOT NULL"
        ).fetchone()[0]
    except sqlite3.OperationalError:
        out["ocr_pages"] = 0
    return out


def error_records(conn: sqlite3.Connection, limit: int | None = None) -> list[sqlite3.Row]:
    sql = "SELECT path, kind, status, reason, recorded_at FROM errors ORDER BY path"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return list(conn.execute(sql))
