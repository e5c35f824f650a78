"""``indexer search`` as a library call: ranked hits with highlighted snippets.

Why this module exists: the query side of the index. A query is plain words
by default (``query.py``: words, ``"a phrase"``, ``word*``, ``-word``; nothing
a user types is an FTS5 syntax error); ``fts=True`` passes FTS5 syntax through
and a bad one is a one-line ``QueryError``. Queries are normalised with NFKC
like the indexed text.

Two scopes:

* ``page`` (the default): pages that hold every word, in three tiers. First
  the documents whose title, authors, subject or keywords hold every word
  (``documents_fts``, bm25 with the title weighing most), each with its best
  page (or its first, when the words are only in its title); then pages
  where the words stand within ``query.NEAR_TOKENS`` of each other; then the
  rest, each tier by FTS5's bm25 ``rank``.
* ``doc``: documents that hold every word somewhere, in their metadata or on
  any of their pages: those whose metadata holds them all first, then by the
  sum of each word's best page rank, each shown with that best page per
  word; ``-word`` leaves out documents that have it anywhere.

Identical files are indexed once (``documents.duplicate_of``): a hit names
its document's copies (``copies``) rather than showing the same page again.

Filters (``Filters``: folders or globs, formats, file times) are conditions on
the documents a hit joins, checked after the MATCH (a path filter also
accepts a document one of whose copies it names). Snippets carry
``HL_START``/``HL_END`` control characters around the matched words; the CLI
turns them into bold on a terminal or ``[`` ``]`` in a pipe.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from indexer import query as query_mod
from indexer import store
from indexer.errors import QueryError, UsageError
from indexer.filters import Filters as Filters  # (re-exported: search.Filters)
from indexer.names import file_url
from indexer.query import HL_END, HL_START, SNIPPET_TOKENS

Scope = Literal["page", "doc"]
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

_SNIPPET = (
    f"CASE WHEN length(p.text) <= {LONG_PAGE} THEN "
    f"snippet(pages_fts, 0, '{HL_START}', '{HL_END}', '…', {SNIPPET_TOKENS}) END"
)
# what schema 3 added, read as NULL from an older index (read as it is)
_META = "d.title, d.authors, p.label"
_NO_META = "NULL AS title, NULL AS authors, NULL AS label"
_DOC_META = "d.title, d.authors"
_DOC_NO_META = "NULL AS title, NULL AS authors"
# documents_fts columns: title, authors, subject, keywords
_META_WEIGHTS = "10.0, 5.0, 2.0, 2.0"
_META_TEXT = (
    "lower(coalesce(d.title, '') || ' ' || coalesce(d.authors, '') || ' ' || "
    "coalesce(d.subject, '') || ' ' || coalesce(d.keywords, ''))"
)

# CROSS JOIN: SQLite joins in the order written, FTS5 first. Left to choose,
# it may walk a document's pages by pages_doc and ask FTS5 about each one
# (2 s instead of 2 ms for a 25,000-page file).
_JOINS = """CROSS JOIN pages p ON p.id = pages_fts.rowid
CROSS JOIN documents d ON d.id = p.doc_id"""
_FROM = "FROM pages_fts\n" + _JOINS


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
    copies: tuple[str, ...] = ()  # other paths with the same bytes (indexed once)
    in_meta: bool = False  # the words are in its title, authors, subject or keywords
    line: int | None = None  # a text file's page: the line of the file it starts at

    def marked(self, start: str = "[", end: str = "]") -> str:
        return mark(self.snippet, start, end)

    def url(self) -> str:
        """A link that opens the file (a PDF at the page)."""
        return file_url(self.path, self.page if self.kind == "pdf" else None)


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
    copies: tuple[str, ...] = ()
    in_meta: bool = False


@dataclass(frozen=True)
class SearchResult:
    query: str  # the FTS5 query that ran
    hits: list[Hit] = field(default_factory=list)
    docs: list[DocHit] = field(default_factory=list)

    def paths(self, copies: bool = False) -> list[str]:
        """The matching documents' paths, best first, each once (and after
        each, with ``copies``, the paths of its copies)."""
        found = [(h.path, h.copies) for h in self.hits] + [(d.path, d.copies) for d in self.docs]
        out: dict[str, None] = {}
        for path, others in found:
            out[path] = None
            if copies:
                out.update(dict.fromkeys(others))
        return list(out)


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
    stem: str | None = None,
) -> SearchResult:
    """``stem``: a language (``en``, ``french``): each plain word is searched
    as a prefix of its Snowball stem (``query.stemmed``)."""
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
    if fts and stem:
        raise UsageError("--stem takes plain words, not FTS5 syntax", hint="leave out --fts")
    stem_word = None if stem is None else query_mod.stemmer(stem)
    conn = store.connect(db)
    try:
        ix = _Index.of(conn, db, filters)
        plain = None if fts else _plain(query, ix.substrings)
        if plain is not None and stem_word is not None:
            plain = query_mod.stemmed(plain, stem_word)
        if plain is not None and ix.tokenizer == "unicode61":
            plain = query_mod.expanded(plain, ix.words_of)
        if scope == "doc":
            assert plain is not None
            return SearchResult(plain.match(), docs=_docs(ix, plain, limit, offset))
        if plain is None:
            return SearchResult(query, hits=_fts_pages(ix, query, limit, offset))
        return SearchResult(plain.match(), hits=_pages(ix, plain, limit, offset))
    finally:
        conn.close()


@dataclass
class _Index:
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
    def of(cls, conn: sqlite3.Connection, db: str | Path, filters: Filters) -> _Index:
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
        return "NULL" if self.substrings else _SNIPPET

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
            self._vocabulary = _vocabulary(self.conn)
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
        joins = " " + _JOINS
        row = _run(
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
        lit = "".join(f" AND instr({_META_TEXT}, ?) > 0" for _ in literals)
        sql = (
            f"SELECT d.id, d.path, d.kind, {self.doc_cols}, "
            f"bm25(documents_fts, {_META_WEIGHTS}) AS rank FROM documents_fts "
            "CROSS JOIN documents d ON d.id = documents_fts.rowid "
            f"WHERE documents_fts MATCH ? AND d.duplicate_of IS NULL{where}{lit} "
            "ORDER BY rank LIMIT ?"
        )
        return _run(self.conn, sql, [plain.match(phrases=True), *params, *literals, want])


def _vocabulary(conn: sqlite3.Connection) -> bool:
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


def _plain(query: str, substrings: bool = False) -> query_mod.Plain:
    plain = query_mod.parse(query, substrings)
    shown = query if len(query) <= 60 else query[:59] + "…"
    if not plain.terms:
        raise QueryError(
            f"no words to search for in {shown!r}"
            + (": -word only leaves pages out" if plain.excluded else ""),
            hint='words, "a phrase", word*, -word; --fts for FTS5 syntax',
        )
    if short := [t.text for t in plain.excluded if t.short]:
        raise QueryError(
            f"-{short[0]}: a word left out needs {query_mod.TRIGRAM} characters or more "
            "in an index made with the trigram tokenizer"
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


_TIER = "(SELECT rowid FROM pages_fts WHERE pages_fts MATCH ?)"


def _page_sql(
    ix: _Index, extra: str = "", order: str = "pages_fts.rank", snippet: str | None = None
) -> str:
    rank = "0.0" if order != "pages_fts.rank" else order
    return f"""SELECT d.id AS doc_id, d.path, p.id, p.page, d.kind, {ix.cols},
       {rank} AS rank, {snippet or ix.snippet} AS snippet
{_FROM}
WHERE pages_fts MATCH ?{extra}
ORDER BY {order}
LIMIT ?"""


def _scan_sql(ix: _Index, extra: str) -> str:
    """Pages found by their literals alone, in index order (a trigram
    index's words too short for it: the query has nothing to MATCH)."""
    return f"""SELECT d.id AS doc_id, d.path, p.id, p.page, d.kind, {ix.cols},
       0.0 AS rank, NULL AS snippet
FROM pages p JOIN documents d ON d.id = p.doc_id
WHERE 1{extra}
ORDER BY p.id
LIMIT ? OFFSET ?"""


def _literal_sql(literals: list[str]) -> tuple[str, list[object]]:
    # lower() folds ASCII only, which is what the symbol words (C++, .NET) are
    return "".join(" AND instr(lower(p.text), ?) > 0" for _ in literals), list(literals)


def _snippet(ix: _Index, row: sqlite3.Row, words: list[tuple[str, bool]]) -> str:
    if row["snippet"] is not None:
        return _fold(row["snippet"])
    (text,) = ix.conn.execute("SELECT text FROM pages WHERE id = ?", (row["id"],)).fetchone()
    return query_mod.long_snippet(text, words, substrings=ix.substrings)


def _hits(ix: _Index, rows: list[sqlite3.Row], words: list[tuple[str, bool]]) -> list[Hit]:
    copies = ix.copies(list({r["doc_id"] for r in rows}))
    return [
        Hit(
            r["path"],
            r["page"],
            r["kind"],
            r["rank"],
            _snippet(ix, r, words),
            r["title"],
            r["authors"],
            r["label"],
            copies.get(r["doc_id"], ()),
            "in_meta" in r.keys(),
            r["line"],
        )
        for r in rows
    ]


def _fts_pages(ix: _Index, text: str, limit: int, offset: int) -> list[Hit]:
    where, params = ix.where()
    sql = _page_sql(ix, ix.bounds() + where) + " OFFSET ?"
    rows = _run(ix.conn, sql, [text, *params, limit, offset])
    return _hits(ix, rows, query_mod.fts_words(text))


def _pages(ix: _Index, plain: query_mod.Plain, limit: int, offset: int) -> list[Hit]:
    """The documents whose metadata holds the words first (their best page
    each), then near pages, then the others: each tier is one FTS5 query, so
    the ranking costs what one query costs, and paging runs across them."""
    where, params = ix.where()
    lit, lit_params = _literal_sql(plain.literals())
    if not plain.match():  # (a trigram index, every word shorter than 3)
        extra = ix.bounds("p.id") + where + lit
        rows = _run(ix.conn, _scan_sql(ix, extra), [*params, *lit_params, limit, offset])
        return _hits(ix, rows, plain.words())
    where = ix.bounds() + where
    want = offset + limit
    rows = [r for doc in ix.meta_docs(plain, want) if (r := _meta_page(ix, doc, plain))]
    seen = {r["id"] for r in rows}
    near = plain.near()
    tiers = (
        [plain.match()]
        if near is None
        else [_near_tier(plain, near), f"({plain.match()}) NOT {near}"]
    )
    ranked_by = ix.rank_terms(plain.terms)
    for text in tiers:
        if len(rows) >= want:
            break
        args: list[object] = [*params, *lit_params]
        need = want - len(rows) + len(seen)
        if not ranked_by:  # every word on most pages: the newest pages first
            sql = _page_sql(ix, where + lit, order="pages_fts.rowid DESC")
            more = _run(ix.conn, sql, [text, *args, need])
            rows += [r for r in more if r["id"] not in seen][: want - len(rows)]
            continue
        # no window where the tier has few pages: a filter's costs 6 us a page
        fewest = min(ix.pages_with(t.fts()) for t in ranked_by)
        small = fewest <= (RANK_ROWS * 4 if where + lit else RANK_ROWS)
        window = "" if small else ix.window(text, where + lit, args)
        if len(ranked_by) == len(plain.terms):  # bm25 over every word
            more = _run(ix.conn, _page_sql(ix, window + where + lit), [text, *args, need])
        else:  # bm25 over the rarer words, of the pages that match the tier
            keep = query_mod.all_of(ranked_by)
            extra = window + " AND pages_fts.rowid IN " + _TIER + where + lit
            more = _run(ix.conn, _page_sql(ix, extra, snippet="NULL"), [keep, text, *args, need])
        rows += [r for r in more if r["id"] not in seen][: want - len(rows)]
    return _hits(ix, rows[offset:want], plain.words())


def _meta_page(ix: _Index, doc: sqlite3.Row, plain: query_mod.Plain) -> sqlite3.Row | None:
    """The page a metadata hit shows: its best page for the words, else its
    first page (the words are only in its title; None where a -word is on
    its pages); a row like a page tier's."""
    lit, lit_params = _literal_sql(plain.literals())
    low, high = _page_range(ix.conn, doc["id"])
    best = f"pages_fts MATCH ? AND pages_fts.rowid BETWEEN ? AND ? AND p.doc_id = ?{lit}"
    row = ix.conn.execute(
        f"SELECT p.id, p.page, {_label(ix)} AS label, {_line(ix)} AS line, "
        f"{ix.snippet} AS snippet "
        f"FROM pages_fts CROSS JOIN pages p ON p.id = pages_fts.rowid WHERE {best} "
        f"ORDER BY {_best(ix, plain.terms)} LIMIT 1",
        (plain.match(), low, high, doc["id"], *lit_params),
    ).fetchone()
    if row is None and _has_any(ix, doc["id"], plain.excluded):
        return None  # its pages have the words only beside a -word
    if row is None:  # the first page, its first words
        row = ix.conn.execute(
            f"SELECT id, page, {_label(ix)} AS label, {_line(ix)} AS line, "
            "substr(text, 1, 400) AS snippet "
            "FROM pages WHERE doc_id = ? ORDER BY page LIMIT 1",
            (doc["id"],),
        ).fetchone()
    page = {"id": None, "page": 1, "label": None, "line": None, "snippet": ""}
    page = page if row is None else dict(row)
    return cast(
        sqlite3.Row,
        {**dict(doc), **page, "doc_id": doc["id"], "in_meta": True},
    )


def _best(ix: _Index, terms: list[query_mod.Term]) -> str:
    """How a document's best page for these terms is chosen: by bm25, or its
    first page with them where bm25 would first count the pages of words on
    more than ``RANK_ROWS`` pages (once for each document shown)."""
    cheap = sum(ix.idf_cost(t) for t in terms if not t.short) <= RANK_ROWS
    return "pages_fts.rank" if cheap else "pages_fts.rowid"


def _label(ix: _Index) -> str:
    return "label" if ix.version >= 3 else "NULL"


def _line(ix: _Index) -> str:
    return "line" if ix.version >= 4 else "NULL"


def _page_range(conn: sqlite3.Connection, doc_id: int) -> tuple[int, int]:
    """A document's pages as a rowid range, which FTS5 seeks to, rather than a
    scan of every page the word is on."""
    low, high = conn.execute(
        "SELECT min(id), max(id) FROM pages WHERE doc_id = ?", (doc_id,)
    ).fetchone()
    return low or 0, high or 0


def _near_tier(plain: query_mod.Plain, near: str) -> str:
    return near + "".join(f" NOT {t.fts()}" for t in plain.excluded)


def _docs(ix: _Index, plain: query_mod.Plain, limit: int, offset: int) -> list[DocHit]:
    """Documents whose metadata holds every term, then those with every term
    on some page: one grouped scan per term, joined on the document; then
    each document's best page per term."""
    where, params = ix.where()
    bound = ix.bounds()
    ctes, args, names = [], [], []
    for i, term in enumerate(plain.terms):
        lit, lit_params = _literal_sql([term.literal] if term.literal else [])
        if term.short:  # by its literal alone
            found = f"SELECT p.doc_id AS doc_id, 0.0 AS r FROM pages p WHERE 1{lit}"
            args += lit_params
        else:
            # a word on more than RANK_ROWS pages does not weigh (docs/search.md)
            rank = "pages_fts.rank" if ix.pages_with(term.fts()) <= RANK_ROWS else "0.0"
            found = f"SELECT p.doc_id AS doc_id, {rank} AS r FROM pages_fts "
            found += (
                f"CROSS JOIN pages p ON p.id = pages_fts.rowid WHERE pages_fts MATCH ?{bound}{lit}"
            )
            args += [term.fts(), *lit_params]
        if ix.version >= 4 and not term.short:  # or in its title, authors, subject, keywords
            meta_lit = f" AND instr({_META_TEXT}, ?) > 0" if term.literal else ""
            found += (
                f" UNION ALL SELECT d.id, bm25(documents_fts, {_META_WEIGHTS}) FROM documents_fts "
                "CROSS JOIN documents d ON d.id = documents_fts.rowid "
                f"WHERE documents_fts MATCH ? AND d.duplicate_of IS NULL{meta_lit}"
            )
            args += [term.phrase(), *lit_params]
        ctes.append(f"t{i} AS (SELECT doc_id, min(r) AS r FROM ({found}) GROUP BY doc_id)")
        names.append(f"t{i}")
    joins = "".join(f" JOIN {n} USING (doc_id)" for n in names[1:])
    score = " + ".join(f"{n}.r" for n in names)
    excluded = "".join(
        " AND d.id NOT IN (SELECT p.doc_id FROM pages_fts CROSS JOIN pages p ON p.id = "
        "pages_fts.rowid WHERE pages_fts MATCH ?)"
        for _ in plain.excluded
    )
    want = offset + limit
    meta = [r for r in ix.meta_docs(plain, want) if not _has_any(ix, r["id"], plain.excluded)]
    sql = (
        f"WITH {', '.join(ctes)} SELECT d.id, d.path, d.kind, "
        f"{ix.doc_cols}, {score} AS score "
        f"FROM t0{joins} JOIN documents d ON d.id = t0.doc_id WHERE 1{where}{excluded} "
        "ORDER BY score, d.id DESC LIMIT ?"
    )
    excluded_args = [t.fts() for t in plain.excluded]
    rows = _run(ix.conn, sql, [*args, *params, *excluded_args, want + len(meta)])
    shown = {r["id"] for r in meta}
    ranked = [(r, r["rank"], True) for r in meta]
    ranked += [(r, r["score"], False) for r in rows if r["id"] not in shown]
    ranked = ranked[offset:want]
    copies = ix.copies([r["id"] for r, _, _ in ranked])
    return [
        DocHit(
            r["path"],
            r["kind"],
            score,
            _best_pages(ix, r["id"], plain.terms),
            r["title"],
            r["authors"],
            copies.get(r["id"], ()),
            in_meta,
        )
        for r, score, in_meta in ranked
    ]


def _has_any(ix: _Index, doc_id: int, terms: list[query_mod.Term]) -> bool:
    if not terms:
        return False
    low, high = _page_range(ix.conn, doc_id)
    match = " OR ".join(t.fts() for t in terms)
    return (
        ix.conn.execute(
            "SELECT 1 FROM pages_fts WHERE pages_fts MATCH ? AND rowid BETWEEN ? AND ? LIMIT 1",
            (match, low, high),
        ).fetchone()
        is not None
    )


def _best_pages(ix: _Index, doc_id: int, terms: list[query_mod.Term]) -> list[WordPage]:
    low, high = _page_range(ix.conn, doc_id)
    out = []
    for term in terms:
        lit, lit_params = _literal_sql([term.literal] if term.literal else [])
        if term.short:
            sql = (
                "SELECT p.id, p.page, NULL AS snippet FROM pages p "
                f"WHERE p.doc_id = ?{lit} ORDER BY p.page LIMIT 1"
            )
            args: tuple[object, ...] = (doc_id, *lit_params)
        else:
            sql = (
                f"SELECT p.id, p.page, {ix.snippet} AS snippet FROM pages_fts "
                "CROSS JOIN pages p ON p.id = pages_fts.rowid WHERE pages_fts MATCH ? "
                f"AND pages_fts.rowid BETWEEN ? AND ? AND p.doc_id = ?{lit} "
                f"ORDER BY {_best(ix, [term])} LIMIT 1"
            )
            args = (term.fts(), low, high, doc_id, *lit_params)
        row = ix.conn.execute(sql, args).fetchone()
        if row is not None:
            words = [(tok, term.prefix) for tok in term.tokens]
            out.append(WordPage(term.text, row["page"], _snippet(ix, row, words)))
    return out
