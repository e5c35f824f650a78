"""``indexer search`` as a library call: ranked hits with highlighted snippets.

Why this module exists: the query side of the index. A query is plain words
by default (``query.py``: words, ``"a phrase"``, ``word*``, ``-word``; nothing
a user types is an FTS5 syntax error); ``fts=True`` passes FTS5 syntax through
and a bad one is a one-line ``QueryError``. Queries are normalised with NFKC
like the indexed text.

Two scopes:

* ``page`` (the default): pages that hold every word. Pages where the words
  stand within ``query.NEAR_TOKENS`` of each other come first, each tier by
  FTS5's bm25 ``rank``.
* ``doc``: documents that hold every word somewhere, on any of their pages,
  ranked by the sum of each word's best page rank, each shown with that best
  page per word; ``-word`` leaves out documents that have it anywhere.

Filters (``Filters``: folders or globs, formats, file times) are conditions on
the documents a hit joins, checked after the MATCH. Snippets carry
``HL_START``/``HL_END`` control characters around the matched words; the CLI
turns them into bold on a terminal or ``[`` ``]`` in a pipe.
"""

from __future__ import annotations

import os
import sqlite3
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from indexer import query as query_mod
from indexer import store
from indexer.errors import QueryError, UsageError
from indexer.names import text_path
from indexer.query import HL_END, HL_START, SNIPPET_TOKENS

Scope = Literal["page", "doc"]
# pages longer than this (characters) get their snippet from query.long_snippet
LONG_PAGE = 50_000

_SNIPPET = (
    f"CASE WHEN length(p.text) <= {LONG_PAGE} THEN "
    f"snippet(pages_fts, 0, '{HL_START}', '{HL_END}', '…', {SNIPPET_TOKENS}) END"
)
# what schema 3 added, read as NULL from an older index (read as it is)
_META = "d.title, d.authors, p.label"
_NO_META = "NULL AS title, NULL AS authors, NULL AS label"
_DOC_META = "d.title, d.authors"
_DOC_NO_META = "NULL AS title, NULL AS authors"

_FROM = """FROM pages_fts
JOIN pages p ON p.id = pages_fts.rowid
JOIN documents d ON d.id = p.doc_id"""


@dataclass(frozen=True)
class Hit:
    path: str
    page: int
    kind: str
    rank: float
    snippet: str  # with HL_START / HL_END around matches, newlines folded to spaces
    title: str | None = None
    authors: str | None = None
    label: str | None = None  # the printed page number, where it differs from ``page``

    def marked(self, start: str = "[", end: str = "]") -> str:
        return mark(self.snippet, start, end)


@dataclass(frozen=True)
class WordPage:
    """A document's best page for one word of the query."""

    word: str
    page: int
    snippet: str

    def marked(self, start: str = "[", end: str = "]") -> str:
        return mark(self.snippet, start, end)


@dataclass(frozen=True)
class DocHit:
    path: str
    kind: str
    rank: float  # the sum of the words' best page ranks (lower is better)
    pages: list[WordPage]
    title: str | None = None
    authors: str | None = None


@dataclass(frozen=True)
class SearchResult:
    query: str  # the FTS5 query that ran
    hits: list[Hit] = field(default_factory=list)
    docs: list[DocHit] = field(default_factory=list)

    def paths(self) -> list[str]:
        """The matching documents' paths, best first, each once."""
        return list(dict.fromkeys(h.path for h in self.hits)) + [d.path for d in self.docs]


@dataclass(frozen=True)
class Filters:
    """Which documents a hit may come from (all of them when empty)."""

    paths: tuple[str, ...] = ()  # folders, files or globs (any of them)
    formats: tuple[str, ...] = ()  # document kinds: pdf, epub, txt, md, html
    since_ns: int | None = None  # file modification time, inclusive
    before_ns: int | None = None  # exclusive
    languages: tuple[str, ...] = ()  # "en" matches en, en-US, en-GB

    def sql(self) -> tuple[str, list[object]]:
        """Conditions on ``d`` (documents), each with a leading AND."""
        parts: list[str] = []
        params: list[object] = []
        if self.paths:
            either = []
            for p in self.paths:
                cond, args = _path_condition(p)
                either.append(cond)
                params.extend(args)
            parts.append("(" + " OR ".join(either) + ")")
        if self.formats:
            parts.append(f"d.kind IN ({','.join('?' * len(self.formats))})")
            params.extend(self.formats)
        if self.since_ns is not None:
            parts.append("d.mtime_ns >= ?")
            params.append(self.since_ns)
        if self.before_ns is not None:
            parts.append("d.mtime_ns < ?")
            params.append(self.before_ns)
        if self.languages:
            either = []
            for lang in self.languages:
                either.append("(lower(d.language) = ? OR lower(d.language) LIKE ?)")
                params += [lang.lower(), lang.lower() + "-%"]
            parts.append("(" + " OR ".join(either) + ")")
        return "".join(f" AND {p}" for p in parts), params


def _path_condition(pattern: str) -> tuple[str, tuple[str, ...]]:
    """A glob (``*``, ``?``, ``[``) matches the whole path, or the file name
    when it has no ``/``; anything else is a folder or a file and everything
    under it."""
    if any(c in pattern for c in "*?["):
        if os.sep not in pattern:
            return "d.path GLOB ?", ("*" + os.sep + pattern,)
        if not os.path.isabs(pattern):
            pattern = os.path.join(os.getcwd(), pattern)
        return "d.path GLOB ?", (text_path(pattern),)
    cond, args = store.under_root(os.path.abspath(pattern))
    return cond.replace("path", "d.path"), args


def mark(snippet: str, start: str = "[", end: str = "]") -> str:
    return snippet.replace(HL_START, start).replace(HL_END, end)


def _fold(snippet: str) -> str:
    return " ".join(snippet.split())


def search(
    db: str | Path,
    query: str,
    limit: int = 20,
    offset: int = 0,
    *,
    fts: bool = False,
    scope: Scope = "page",
    filters: Filters | None = None,
) -> SearchResult:
    query = unicodedata.normalize("NFKC", query).strip()
    if not query:
        raise UsageError("the search query is empty")
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    filters = filters or Filters()
    if fts and scope == "doc":
        raise UsageError(
            "--scope doc takes plain words, not FTS5 syntax",
            hint='leave out --fts: words, "a phrase", word*, -word',
        )
    plain = None if fts else _plain(query)
    conn = store.connect(db)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < 3:
            if filters.languages:
                raise UsageError(
                    f"{db} was made by an older indexer and knows no languages yet",
                    hint="an `indexer index --reindex` run reads them",
                )
            cols, doc_cols = _NO_META, _DOC_NO_META
        else:
            cols, doc_cols = _META, _DOC_META
        if scope == "doc":
            assert plain is not None
            docs = _docs(conn, doc_cols, plain, filters, limit, offset)
            return SearchResult(plain.match(), docs=docs)
        if plain is None:
            hits = _fts_pages(conn, cols, query, filters, limit, offset)
            return SearchResult(query, hits=hits)
        return SearchResult(plain.match(), hits=_pages(conn, cols, plain, filters, limit, offset))
    finally:
        conn.close()


def _plain(query: str) -> query_mod.Plain:
    plain = query_mod.parse(query)
    shown = query if len(query) <= 60 else query[:59] + "…"
    if not plain.terms:
        raise QueryError(
            f"no words to search for in {shown!r}"
            + (": -word only leaves pages out" if plain.excluded else ""),
            hint='words, "a phrase", word*, -word; --fts for FTS5 syntax',
        )
    return plain


def _run(conn: sqlite3.Connection, sql: str, params: list[object]) -> list[sqlite3.Row]:
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as e:
        msg = str(e)
        if _is_syntax_error(msg):
            raise QueryError(
                f"not valid FTS5 syntax: {msg}",
                hint='without --fts the words are searched as they are; FTS5: "a phrase", '
                "word*, a OR b, a NOT b, NEAR(a b)",
            ) from None
        raise QueryError(f"search failed: {msg}") from None


def _is_syntax_error(msg: str) -> bool:
    msg = msg.lower()
    return any(
        part in msg
        for part in ("fts5", "syntax error", "no such column", "unterminated", "special query")
    )


def _page_sql(cols: str, extra: str = "") -> str:
    return f"""SELECT d.path, p.id, p.page, d.kind, {cols}, pages_fts.rank AS rank,
       {_SNIPPET} AS snippet
{_FROM}
WHERE pages_fts MATCH ?{extra}
ORDER BY pages_fts.rank
LIMIT ?"""


def _literal_sql(literals: list[str]) -> tuple[str, list[object]]:
    # lower() folds ASCII only, which is what the symbol words (C++, .NET) are
    return "".join(" AND instr(lower(p.text), ?) > 0" for _ in literals), list(literals)


def _snippet(conn: sqlite3.Connection, row: sqlite3.Row, words: list[tuple[str, bool]]) -> str:
    if row["snippet"] is not None:
        return _fold(row["snippet"])
    (text,) = conn.execute("SELECT text FROM pages WHERE id = ?", (row["id"],)).fetchone()
    return query_mod.long_snippet(text, words)


def _hits(
    conn: sqlite3.Connection, rows: list[sqlite3.Row], words: list[tuple[str, bool]]
) -> list[Hit]:
    return [
        Hit(
            r["path"],
            r["page"],
            r["kind"],
            r["rank"],
            _snippet(conn, r, words),
            r["title"],
            r["authors"],
            r["label"],
        )
        for r in rows
    ]


def _fts_pages(
    conn: sqlite3.Connection, cols: str, text: str, filters: Filters, limit: int, offset: int
) -> list[Hit]:
    where, params = filters.sql()
    rows = _run(conn, _page_sql(cols, where) + " OFFSET ?", [text, *params, limit, offset])
    return _hits(conn, rows, query_mod.fts_words(text))


def _pages(
    conn: sqlite3.Connection,
    cols: str,
    plain: query_mod.Plain,
    filters: Filters,
    limit: int,
    offset: int,
) -> list[Hit]:
    """Near pages first, then the others: each tier is one FTS5 query, so the
    ranking costs what one query costs, and paging runs across both."""
    where, params = filters.sql()
    lit, lit_params = _literal_sql(plain.literals())
    sql = _page_sql(cols, where + lit)
    want = offset + limit
    near = plain.near()
    tiers = (
        [plain.match()]
        if near is None
        else [_near_tier(plain, near), f"({plain.match()}) NOT {near}"]
    )
    rows: list[sqlite3.Row] = []
    for text in tiers:
        if len(rows) >= want:
            break
        rows += _run(conn, sql, [text, *params, *lit_params, want - len(rows)])
    return _hits(conn, rows[offset:want], plain.words())


def _near_tier(plain: query_mod.Plain, near: str) -> str:
    return near + "".join(f" NOT {t.fts()}" for t in plain.excluded)


def _docs(
    conn: sqlite3.Connection,
    cols: str,
    plain: query_mod.Plain,
    filters: Filters,
    limit: int,
    offset: int,
) -> list[DocHit]:
    """Documents with every term on some page: one grouped scan per term,
    joined on the document; then each document's best page per term."""
    where, params = filters.sql()
    ctes, args, names = [], [], []
    for i, term in enumerate(plain.terms):
        lit, lit_params = _literal_sql([term.literal] if term.literal else [])
        ctes.append(
            f"t{i} AS (SELECT p.doc_id AS doc_id, min(pages_fts.rank) AS r {_FROM} "
            f"WHERE pages_fts MATCH ?{lit} GROUP BY p.doc_id)"
        )
        args += [term.fts(), *lit_params]
        names.append(f"t{i}")
    joins = "".join(f" JOIN {n} USING (doc_id)" for n in names[1:])
    score = " + ".join(f"{n}.r" for n in names)
    excluded = "".join(
        " AND d.id NOT IN (SELECT p.doc_id FROM pages_fts JOIN pages p ON p.id = "
        "pages_fts.rowid WHERE pages_fts MATCH ?)"
        for _ in plain.excluded
    )
    sql = (
        f"WITH {', '.join(ctes)} SELECT d.id, d.path, d.kind, "
        f"{cols}, {score} AS score "
        f"FROM t0{joins} JOIN documents d ON d.id = t0.doc_id WHERE 1{where}{excluded} "
        "ORDER BY score LIMIT ? OFFSET ?"
    )
    rows = _run(conn, sql, [*args, *params, *(t.fts() for t in plain.excluded), limit, offset])
    return [
        DocHit(
            r["path"],
            r["kind"],
            r["score"],
            _best_pages(conn, r["id"], plain.terms),
            r["title"],
            r["authors"],
        )
        for r in rows
    ]


def _best_pages(
    conn: sqlite3.Connection, doc_id: int, terms: list[query_mod.Term]
) -> list[WordPage]:
    # the document's pages as a rowid range, which FTS5 seeks to, rather than
    # a scan of every page the word is on
    low, high = conn.execute(
        "SELECT min(id), max(id) FROM pages WHERE doc_id = ?", (doc_id,)
    ).fetchone()
    out = []
    for term in terms:
        lit, lit_params = _literal_sql([term.literal] if term.literal else [])
        row = conn.execute(
            f"SELECT p.id, p.page, {_SNIPPET} AS snippet FROM pages_fts "
            "JOIN pages p ON p.id = pages_fts.rowid "
            f"WHERE pages_fts MATCH ? AND pages_fts.rowid BETWEEN ? AND ? AND p.doc_id = ?{lit} "
            "ORDER BY pages_fts.rank LIMIT 1",
            (term.fts(), low, high, doc_id, *lit_params),
        ).fetchone()
        if row is not None:
            words = [(tok, term.prefix) for tok in term.tokens]
            out.append(WordPage(term.text, row["page"], _snippet(conn, row, words)))
    return out
