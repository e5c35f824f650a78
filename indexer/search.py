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
from indexer import search_index, store
from indexer.errors import QueryError, UsageError
from indexer.filters import Filters as Filters  # (re-exported: search.Filters)
from indexer.names import file_url
from indexer.query import HL_END, HL_START
from indexer.search_index import FROM, META_TEXT, META_WEIGHTS, SearchIndex, run

Scope = Literal["page", "doc"]


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
    doc_id: int | None = None  # its documents row

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
    doc_id: int | None = None


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
    _check(query, limit, fts, scope, stem)
    conn = store.connect(db)
    try:
        return search_in(
            conn, query, limit, offset, fts=fts, scope=scope, filters=filters, stem=stem, name=db
        )
    finally:
        conn.close()


def search_in(
    conn: sqlite3.Connection,
    query: str,
    limit: int = 20,
    offset: int = 0,
    *,
    fts: bool = False,
    scope: Scope = "page",
    filters: Filters | None = None,
    stem: str | None = None,
    name: str | Path = "the index",
) -> SearchResult:
    """``search`` on a connection already open (rows as ``sqlite3.Row``): the
    web page's, which Datasette opens read-only. ``name``: the index, in
    messages."""
    query = _check(query, limit, fts, scope, stem)
    filters = filters or Filters()
    stem_word = None if stem is None else query_mod.stemmer(stem)
    ix = SearchIndex.of(conn, name, filters)
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


def _check(query: str, limit: int, fts: bool, scope: Scope, stem: str | None) -> str:
    """The query, normalised; a UsageError for what cannot be searched."""
    query = unicodedata.normalize("NFKC", query).strip()
    if not query:
        raise UsageError("the search query is empty")
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    if fts and scope == "doc":
        raise UsageError(
            "--scope doc takes plain words, not FTS5 syntax",
            hint='leave out --fts: words, "a phrase", word*, -word',
        )
    if fts and stem:
        raise UsageError("--stem takes plain words, not FTS5 syntax", hint="leave out --fts")
    return query


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


_TIER = "(SELECT rowid FROM pages_fts WHERE pages_fts MATCH ?)"


def _page_sql(
    ix: SearchIndex, extra: str = "", order: str = "pages_fts.rank", snippet: str | None = None
) -> str:
    rank = "0.0" if order != "pages_fts.rank" else order
    return f"""SELECT d.id AS doc_id, d.path, p.id, p.page, d.kind, {ix.cols},
       {rank} AS rank, {snippet or ix.snippet} AS snippet
{FROM}
WHERE pages_fts MATCH ?{extra}
ORDER BY {order}
LIMIT ?"""


def _scan_sql(ix: SearchIndex, extra: str) -> str:
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


def _snippet(ix: SearchIndex, row: sqlite3.Row, words: list[tuple[str, bool]]) -> str:
    if row["snippet"] is not None:
        return _fold(row["snippet"])
    (text,) = ix.conn.execute("SELECT text FROM pages WHERE id = ?", (row["id"],)).fetchone()
    return query_mod.long_snippet(text, words, substrings=ix.substrings)


def _hits(ix: SearchIndex, rows: list[sqlite3.Row], words: list[tuple[str, bool]]) -> list[Hit]:
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
            r["doc_id"],
        )
        for r in rows
    ]


def _fts_pages(ix: SearchIndex, text: str, limit: int, offset: int) -> list[Hit]:
    where, params = ix.where()
    sql = _page_sql(ix, ix.bounds() + where) + " OFFSET ?"
    rows = run(ix.conn, sql, [text, *params, limit, offset])
    return _hits(ix, rows, query_mod.fts_words(text))


def _pages(ix: SearchIndex, plain: query_mod.Plain, limit: int, offset: int) -> list[Hit]:
    """The documents whose metadata holds the words first (their best page
    each), then near pages, then the others: each tier is one FTS5 query, so
    the ranking costs what one query costs, and paging runs across them."""
    where, params = ix.where()
    lit, lit_params = _literal_sql(plain.literals())
    if not plain.match():  # (a trigram index, every word shorter than 3)
        extra = ix.bounds("p.id") + where + lit
        rows = run(ix.conn, _scan_sql(ix, extra), [*params, *lit_params, limit, offset])
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
            more = run(ix.conn, sql, [text, *args, need])
            rows += [r for r in more if r["id"] not in seen][: want - len(rows)]
            continue
        # no window where the tier has few pages: a filter's costs 6 us a page
        fewest = min(ix.pages_with(t.fts()) for t in ranked_by)
        small = fewest <= (search_index.RANK_ROWS * 4 if where + lit else search_index.RANK_ROWS)
        window = "" if small else ix.window(text, where + lit, args)
        if len(ranked_by) == len(plain.terms):  # bm25 over every word
            more = run(ix.conn, _page_sql(ix, window + where + lit), [text, *args, need])
        else:  # bm25 over the rarer words, of the pages that match the tier
            keep = query_mod.all_of(ranked_by)
            extra = window + " AND pages_fts.rowid IN " + _TIER + where + lit
            more = run(ix.conn, _page_sql(ix, extra, snippet="NULL"), [keep, text, *args, need])
        rows += [r for r in more if r["id"] not in seen][: want - len(rows)]
    return _hits(ix, rows[offset:want], plain.words())


def _meta_page(ix: SearchIndex, doc: sqlite3.Row, plain: query_mod.Plain) -> sqlite3.Row | None:
    """The page a metadata hit shows: its best page for the words, else its
    first page (the words are only in its title; None where a -word is on
    its pages); a row like a page tier's."""
    lit, lit_params = _literal_sql(plain.literals())
    low, high = page_range(ix.conn, doc["id"])
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


def _best(ix: SearchIndex, terms: list[query_mod.Term]) -> str:
    """How a document's best page for these terms is chosen: by bm25, or its
    first page with them where bm25 would first count the pages of words on
    more than ``RANK_ROWS`` pages (once for each document shown)."""
    cheap = sum(ix.idf_cost(t) for t in terms if not t.short) <= search_index.RANK_ROWS
    return "pages_fts.rank" if cheap else "pages_fts.rowid"


def _label(ix: SearchIndex) -> str:
    return "label" if ix.version >= 3 else "NULL"


def _line(ix: SearchIndex) -> str:
    return "line" if ix.version >= 4 else "NULL"


def page_range(conn: sqlite3.Connection, doc_id: int) -> tuple[int, int]:
    """A document's pages as a rowid range, which FTS5 seeks to, rather than a
    scan of every page the word is on."""
    low, high = conn.execute(
        "SELECT min(id), max(id) FROM pages WHERE doc_id = ?", (doc_id,)
    ).fetchone()
    return low or 0, high or 0


def _near_tier(plain: query_mod.Plain, near: str) -> str:
    return near + "".join(f" NOT {t.fts()}" for t in plain.excluded)


def _docs(ix: SearchIndex, plain: query_mod.Plain, limit: int, offset: int) -> list[DocHit]:
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
            rank = (
                "pages_fts.rank" if ix.pages_with(term.fts()) <= search_index.RANK_ROWS else "0.0"
            )
            found = f"SELECT p.doc_id AS doc_id, {rank} AS r FROM pages_fts "
            found += (
                f"CROSS JOIN pages p ON p.id = pages_fts.rowid WHERE pages_fts MATCH ?{bound}{lit}"
            )
            args += [term.fts(), *lit_params]
        if ix.version >= 4 and not term.short:  # or in its title, authors, subject, keywords
            meta_lit = f" AND instr({META_TEXT}, ?) > 0" if term.literal else ""
            found += (
                f" UNION ALL SELECT d.id, bm25(documents_fts, {META_WEIGHTS}) FROM documents_fts "
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
    rows = run(ix.conn, sql, [*args, *params, *excluded_args, want + len(meta)])
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
            r["id"],
        )
        for r, score, in_meta in ranked
    ]


def _has_any(ix: SearchIndex, doc_id: int, terms: list[query_mod.Term]) -> bool:
    if not terms:
        return False
    low, high = page_range(ix.conn, doc_id)
    match = " OR ".join(t.fts() for t in terms)
    return (
        ix.conn.execute(
            "SELECT 1 FROM pages_fts WHERE pages_fts MATCH ? AND rowid BETWEEN ? AND ? LIMIT 1",
            (match, low, high),
        ).fetchone()
        is not None
    )


def _best_pages(ix: SearchIndex, doc_id: int, terms: list[query_mod.Term]) -> list[WordPage]:
    low, high = page_range(ix.conn, doc_id)
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
