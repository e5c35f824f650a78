"""What a search asks of the index before and while it runs its query.

Why this module exists: ``search.py`` builds the SQL of each tier; this is
the open index it asks: which columns its version has, about how many pages a
word is on (the ranking budget, docs/search.md), the stretch of page ids the
filters' documents are in (schema 5), the words a prefix covers (an
``fts5vocab`` table on the connection's ``temp`` schema) and the documents
whose metadata hold the query. ``run`` turns SQLite's errors into a one-line
``QueryError``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from indexer import query as query_mod
from indexer import store
from indexer.errors import QueryError, UsageError
from indexer.filters import Filters
from indexer.query import HL_END, HL_START, SNIPPET_TOKENS

# pages longer than this (characters) get their snippet from query.long_snippet
LONG_PAGE = 50_000
# What bm25 costs (docs/search.md): FTS5 counts, once per query, every page
# that holds each word of the query (its IDF: 70 ms for a word on a million
# pages, whatever the other words), then scores every matching page (3-5 us
# each). So a tier ranks by the words whose pages add up to at most
# IDF_BUDGET (a word on most pages weighs next to nothing in bm25 anyway),
# newest first where every word is that common, and only its RANK_ROWS
# newest matching pages.
IDF_BUDGET = 300_000
RANK_ROWS = 5_000
# how many of a word's newest pages are read to estimate how many hold it
PROBE = 2_000
# a filtered search looks up the page ids of at most this many documents to
# find the stretch of the index they are in (2 seeks each: 5,000 in 12 ms)
BOUND_DOCS = 5_000

SNIPPET_SQL = (
    f"CASE WHEN length(p.text) <= {LONG_PAGE} THEN "
    f"snippet(pages_fts, 0, '{HL_START}', '{HL_END}', '…', {SNIPPET_TOKENS}) END"
)
# what schema 3 added, read as NULL from an older index (read as it is)
_META = "d.title, d.authors, p.label"
_NO_META = "NULL AS title, NULL AS authors, NULL AS label"
_DOC_META = "d.title, d.authors"
_DOC_NO_META = "NULL AS title, NULL AS authors"
# documents_fts columns: title, authors, subject, keywords
META_WEIGHTS = "10.0, 5.0, 2.0, 2.0"
META_TEXT = (
    "lower(coalesce(d.title, '') || ' ' || coalesce(d.authors, '') || ' ' || "
    "coalesce(d.subject, '') || ' ' || coalesce(d.keywords, ''))"
)

# CROSS JOIN: SQLite joins in the order written, FTS5 first. Left to choose,
# it may walk a document's pages by pages_doc and ask FTS5 about each one
# (2 s instead of 2 ms for a 25,000-page file).
JOINS = """CROSS JOIN pages p ON p.id = pages_fts.rowid
CROSS JOIN documents d ON d.id = p.doc_id"""
FROM = "FROM pages_fts\n" + JOINS


@dataclass
class SearchIndex:
    """An open index, what its version can answer, and the search's filters."""

    conn: sqlite3.Connection
    version: int
    filters: Filters
    tokenizer: str  # store.TOKENIZERS' name
    _pages_with: dict[str, int] = field(default_factory=dict)
    _vocabulary: bool | None = None  # temp.pages_vocab made (None: not tried)
    _span: tuple[int, int] | None = None  # the pages' smallest and largest id
    _bounds: tuple[tuple[int, int] | None] | None = None  # (once looked for)

    @classmethod
    def of(cls, conn: sqlite3.Connection, db: str | Path, filters: Filters) -> SearchIndex:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < 3 and filters.languages:
            raise UsageError(
                f"{db} was made by an older indexer and knows no languages yet",
                hint="an `indexer index --reindex` run reads them",
            )
        return cls(conn, version, filters, store.tokenizer_of(conn))

    @property
    def substrings(self) -> bool:
        """A trigram index (query.py)."""
        return self.tokenizer == "trigram"

    @property
    def snippet(self) -> str:
        # a trigram index's tokens are three letters: its snippets are made in Python
        return "NULL" if self.substrings else SNIPPET_SQL

    @property
    def cols(self) -> str:
        line = ", p.line" if self.version >= 4 else ", NULL AS line"
        return (_META if self.version >= 3 else _NO_META) + line

    @property
    def doc_cols(self) -> str:
        return _DOC_META if self.version >= 3 else _DOC_NO_META

    def where(self) -> tuple[str, list[object]]:
        return self.filters.sql(copies=self.version >= 4)

    def idf_cost(self, term: query_mod.Term) -> int:
        """The pages bm25 reads to weigh the term: those of each of its words
        (a phrase's too: FTS5 checks it on every page that has them all)."""
        if len(term.tokens) == 1 or term.substring:
            return self.pages_with(term.fts())
        return sum(self.pages_with(f'"{tok}"') for tok in term.tokens)

    def pages_with(self, match: str) -> int:
        """About how many pages match: ``PROBE`` for at most that many, else
        an estimate from how far back its ``PROBE`` newest pages reach."""
        if match in self._pages_with:
            return self._pages_with[match]
        row = self.conn.execute(
            "SELECT rowid FROM pages_fts WHERE pages_fts MATCH ? ORDER BY rowid DESC "
            "LIMIT 1 OFFSET ?",
            (match, PROBE),
        ).fetchone()
        if row is None:
            n = PROBE
        else:
            low, high = self.span()
            n = int(PROBE * (high - low + 1) / max(1, high - int(row[0])))
        self._pages_with[match] = n
        return n

    def words_of(self, prefix: str) -> tuple[str, ...] | None:
        """The words of the pages that start with ``prefix``, None where there
        are more than ``query.EXPAND_WORDS``; each one's page count is noted
        for ``pages_with`` (the sum: at least as many as the prefix has).
        fts5vocab reads each word's list of pages to count them: 45-90 ms for
        a prefix of a word on a million pages, once, where FTS5 would merge
        the prefix's lists for each query that names it."""
        if self._vocabulary is None:
            self._vocabulary = vocabulary(self.conn)
        if not self._vocabulary:
            return None
        lo, hi = query_mod.vocabulary_range(prefix)
        rows = self.conn.execute(
            "SELECT term, doc FROM temp.pages_vocab WHERE term >= ? AND term < ? LIMIT ?",
            (lo, hi, query_mod.EXPAND_WORDS + 1),
        ).fetchall()
        words = tuple(str(t) for t, _ in rows if str(t).startswith(prefix))
        if len(rows) > query_mod.EXPAND_WORDS or not words:
            return None
        term = query_mod.Term(prefix, (prefix,), prefix=True, words=words)
        low, high = self.span()
        self._pages_with[term.fts()] = min(high - low + 1, sum(int(n) for _, n in rows))
        return words

    def span(self) -> tuple[int, int]:
        """The pages' smallest and largest id."""
        if self._span is None:
            low, high = self.conn.execute(  # (two subqueries: each one a seek)
                "SELECT (SELECT min(id) FROM pages), (SELECT max(id) FROM pages)"
            ).fetchone()
            self._span = (int(low or 0), int(high or 0))
        return self._span

    def bounds(self, column: str = "pages_fts.rowid") -> str:
        """A condition on ``column`` (a page's id) that keeps a filtered
        search to the stretch of the index where the documents the filters
        pass hold their pages, when that stretch is narrow: new files
        (``--since``), old ones, a folder indexed at once. FTS5 then reads
        that stretch of each word's pages only (a common word in an old
        folder of a million-page index: 1 s without, ms with it). ""
        where the filters pass documents all over the index."""
        if self._bounds is None:
            self._bounds = (self._find_bounds(),)
        (found,) = self._bounds
        return "" if found is None else f" AND {column} BETWEEN {found[0]} AND {found[1]}"

    def _find_bounds(self) -> tuple[int, int] | None:
        where, params = self.where()
        if not where or self.version < 5:  # (pages_doc finds a document's page ids)
            return None
        low, high = self.span()
        wide = (high - low) // 2  # a stretch wider than this is not worth finding
        ids = (
            "(SELECT min(id) FROM pages WHERE doc_id = d.id) AS lo, "
            "(SELECT max(id) FROM pages WHERE doc_id = d.id) AS hi"
        )
        docs = f"SELECT {ids} FROM documents d WHERE d.duplicate_of IS NULL{where}"
        # the first and the last such document first: most filters that pass
        # documents all over the index show it there, after a row or two
        ends = self.conn.execute(
            f"SELECT min(lo), max(hi) FROM (SELECT * FROM ({docs} ORDER BY d.id LIMIT 1) "
            f"UNION ALL SELECT * FROM ({docs} ORDER BY d.id DESC LIMIT 1))",
            params * 2,
        ).fetchone()
        if ends[0] is not None and ends[1] - ends[0] > wide:
            return None
        lows, highs = [], []
        for lo, hi in self.conn.execute(f"{docs} LIMIT {BOUND_DOCS + 1}", params):
            if lo is not None:
                lows.append(lo)
                highs.append(hi)
        if len(lows) > BOUND_DOCS:
            return None
        if not lows:
            return (1, 0)  # no such document has pages: nothing matches
        return (min(lows), max(highs)) if max(highs) - min(lows) <= wide else None

    def rank_terms(self, terms: list[query_mod.Term]) -> list[query_mod.Term]:
        """The terms bm25 ranks by: the rarest ones whose pages add up to at
        most ``IDF_BUDGET`` (all of them, usually)."""
        kept, pages = [], 0
        for term in sorted((t for t in terms if not t.short), key=self.idf_cost):
            pages += self.idf_cost(term)
            if pages > IDF_BUDGET:
                break
            kept.append(term)
        return kept

    def window(self, text: str, extra: str, args: list[object]) -> str:
        """A condition that keeps a tier's ranking to its ``RANK_ROWS``
        newest matching pages (that pass the filters), "" when it has fewer."""
        joins = " " + JOINS
        row = run(
            self.conn,
            f"SELECT pages_fts.rowid FROM pages_fts{joins if extra else ''} "
            f"WHERE pages_fts MATCH ?{extra} ORDER BY pages_fts.rowid DESC LIMIT 1 OFFSET ?",
            [text, *args, RANK_ROWS],
        )
        return "" if not row else f" AND pages_fts.rowid >= {int(row[0][0])}"

    def copies(self, doc_ids: list[int]) -> dict[int, tuple[str, ...]]:
        """Each document's copies (other paths, same bytes), where it has some."""
        if self.version < 4 or not doc_ids:
            return {}
        out: dict[int, list[str]] = {}
        marks = ",".join("?" * len(doc_ids))
        for doc_id, path in self.conn.execute(
            f"SELECT duplicate_of, path FROM documents WHERE duplicate_of IN ({marks}) "
            "ORDER BY path",
            doc_ids,
        ):
            out.setdefault(doc_id, []).append(path)
        return {k: tuple(v) for k, v in out.items()}

    def meta_docs(self, plain: query_mod.Plain, want: int) -> list[sqlite3.Row]:
        """Documents whose title, authors, subject or keywords hold every
        term (and none of the excluded ones), best first (schema 4)."""
        if self.version < 4 or not plain.match():
            return []
        where, params = self.where()
        literals = [t.literal for t in plain.terms if t.literal]
        lit = "".join(f" AND instr({META_TEXT}, ?) > 0" for _ in literals)
        sql = (
            f"SELECT d.id, d.path, d.kind, {self.doc_cols}, "
            f"bm25(documents_fts, {META_WEIGHTS}) AS rank FROM documents_fts "
            "CROSS JOIN documents d ON d.id = documents_fts.rowid "
            f"WHERE documents_fts MATCH ? AND d.duplicate_of IS NULL{where}{lit} "
            "ORDER BY rank LIMIT ?"
        )
        return run(self.conn, sql, [plain.match(phrases=True), *params, *literals, want])


def vocabulary(conn: sqlite3.Connection) -> bool:
    """Make ``temp.pages_vocab``, the pages' words with their page counts (on
    this connection only: the index file is not written). False where it
    cannot be made; prefixes are then searched as FTS5 prefixes."""
    try:
        conn.execute("PRAGMA query_only = 0")  # (a search's connection is query_only)
        try:
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.pages_vocab "
                "USING fts5vocab(main, pages_fts, 'row')"
            )
        finally:
            conn.execute("PRAGMA query_only = 1")
    except sqlite3.Error:
        return False
    return True


def run(conn: sqlite3.Connection, sql: str, params: list[object]) -> list[sqlite3.Row]:
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as e:
        msg = str(e)
        if is_syntax_error(msg):
            raise QueryError(
                f"not valid FTS5 syntax: {msg}",
                hint='without --fts the words are searched as they are; FTS5: "a phrase", '
                "word*, a OR b, a NOT b, NEAR(a b)",
            ) from None
        raise QueryError(f"search failed: {msg}") from None


def is_syntax_error(msg: str) -> bool:
    msg = msg.lower()
    return any(
        part in msg
        for part in ("fts5", "syntax error", "no such column", "unterminated", "special query")
    )
