"""What the web pages show, read from an index: search results grouped by
document, a document, a page of its text, the errors.

Why this module exists: the views (``views.py``) are Datasette glue; what a
page holds is worked out here from a ``sqlite3`` connection (Datasette's
read-only one) with no web server in sight, so it is tested as plain calls.
The search is ``search.search_in``, ranked exactly as ``indexer search``
ranks; this module groups its hits by document, counts each document's
matching pages and the facets, and turns snippets into escaped HTML.
Everything from the URL is parsed by ``Form.parse`` into typed values or a
``FormError`` (a one-line reason, answered with status 400): no value from
the URL is ever used as a path.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from markupsafe import Markup, escape

from indexer import output, store
from indexer.errors import IndexerError
from indexer.extract import KINDS
from indexer.filters import Filters
from indexer.names import container_of
from indexer.query import HL_END, HL_START
from indexer.search import Hit, Scope, page_range, search_in

PAGE_HITS = 50  # matching pages on one page of results, grouped by document
DOC_HITS = 20  # documents on one page of results (scope doc)
SHOWN_PER_DOCUMENT = 5  # a document's matching pages shown under it
MAX_QUERY = 1000  # characters
MAX_RESULT_PAGE = 1000  # a result page beyond is refused (offset 50,000 pages)
DOCUMENT_PAGES = 20  # pages of text on one page of a document
ERRORS_SHOWN = 100
# facets are counted for words on at most FACET_PAGES pages (a word on more:
# 30 ms or more on a 100,000-page index, for counts that say little), and
# left out where they take longer than FACET_MS all the same
FACET_PAGES = 5_000
FACET_MS = 30


class FormError(ValueError):
    """A value in the URL that cannot be used: its one-line reason."""


Args = Callable[[str], list[str]]  # the URL's values for a name (request.args.getlist)


@dataclass(frozen=True)
class Form:
    """The search form's fields, as the URL gives them."""

    q: str = ""
    scope: str = "page"
    path: str = ""
    formats: tuple[str, ...] = ()
    since: str = ""
    before: str = ""
    lang: str = ""
    doc: int | None = None
    page: int = 1

    @classmethod
    def parse(cls, args: Args) -> Form:
        def one(name: str) -> str:
            values = args(name)
            text = values[-1].strip() if values else ""
            if len(text) > MAX_QUERY:
                raise FormError(f"{name}: {len(text):,} characters; {MAX_QUERY:,} at most")
            return text

        scope = one("scope") or "page"
        if scope not in ("page", "doc"):
            raise FormError(f"scope {scope[:20]!r}: it is page or doc")
        formats = tuple(
            k.strip().lower() for v in args("format") for k in v.split(",") if k.strip()
        )
        if unknown := [k for k in formats if k not in KINDS]:
            raise FormError(f"format {unknown[0][:20]!r}: not a kind the index holds")
        form = cls(
            q=one("q"),
            scope=scope,
            path=one("path"),
            formats=tuple(dict.fromkeys(formats)),
            since=one("since"),
            before=one("before"),
            lang=one("lang"),
            doc=number(one("doc"), "doc", 2**62),
            page=number(one("page"), "page", MAX_RESULT_PAGE) or 1,
        )
        form.filters()  # (a bad date is a FormError now)
        return form

    def filters(self) -> Filters:
        try:
            return Filters(
                paths=(self.path,) if self.path else (),
                formats=self.formats,
                since_ns=output.date_ns(self.since, "since") if self.since else None,
                before_ns=output.date_ns(self.before, "before") if self.before else None,
                languages=tuple(x.strip() for x in self.lang.split(",") if x.strip()),
                documents=() if self.doc is None else (self.doc,),
            )
        except IndexerError as e:
            raise FormError(str(e)) from None

    def query_string(self, **changes: object) -> str:
        """This search's URL query, with ``changes`` (a result page, a filter)."""
        form = replace(self, **changes)  # type: ignore[arg-type]
        pairs: list[tuple[str, object]] = [("q", form.q)]
        pairs += [(k, v) for k, v in (("scope", form.scope),) if v != "page"]
        pairs += [("path", form.path)] if form.path else []
        pairs += [("format", k) for k in form.formats]
        pairs += [(k, getattr(form, k)) for k in ("since", "before", "lang") if getattr(form, k)]
        pairs += [("doc", form.doc)] if form.doc is not None else []
        pairs += [("page", form.page)] if form.page > 1 else []
        return urlencode(pairs)

    @property
    def filtered(self) -> bool:
        return bool(self.path or self.formats or self.since or self.before or self.lang)


def number(text: str, name: str, most: int) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not text.isascii() or len(text) > 19 or not 1 <= int(text) <= most:
        raise FormError(f"{name} {text[:20]!r}: a whole number from 1 to {most:,}")
    return int(text)


def snippet_html(snippet: str) -> Markup:
    """A snippet or page text as HTML: escaped, the matched words in <mark>."""
    escaped = str(escape(snippet))
    return Markup(escaped.replace(HL_START, "<mark>").replace(HL_END, "</mark>"))


@dataclass
class PageHit:
    page: int
    label: str | None
    snippet: Markup
    line: int | None = None


@dataclass
class Group:
    """A document in the results, with its matching pages shown."""

    doc_id: int
    path: str
    kind: str
    title: str | None
    authors: str | None
    copies: tuple[str, ...]
    hits: list[PageHit] = field(default_factory=list)
    matching: int | None = None  # its pages that hold the words (None: not counted)
    in_meta: bool = False


@dataclass
class Results:
    groups: list[Group]
    more: bool  # a next page of results exists
    facets: dict[str, list[tuple[str, int]]] | None  # None: too many matches to count in time
    took_ms: float


def is_index(conn: sqlite3.Connection) -> bool:
    """The database is an index this version reads."""
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error:
        return False
    return {"documents", "pages", "pages_fts"} <= names and version >= store.OLDEST_READABLE


def search(conn: sqlite3.Connection, form: Form, name: str = "the index") -> Results:
    """The results page for ``form`` (its q is not empty). A query that
    cannot be searched raises ``FormError``."""
    started = time.perf_counter()
    filters = form.filters()
    scope: Scope = "doc" if form.scope == "doc" else "page"
    per_page = DOC_HITS if scope == "doc" else PAGE_HITS
    try:
        result = search_in(
            conn,
            form.q,
            per_page + 1,
            (form.page - 1) * per_page,
            scope=scope,
            filters=filters,
            name=name,
        )
    except IndexerError as e:
        raise FormError(str(e)) from None
    if scope == "doc":
        groups = [
            Group(
                d.doc_id or 0,
                d.path,
                d.kind,
                d.title,
                d.authors,
                d.copies,
                [PageHit(p.page, None, snippet_html(p.snippet)) for p in d.pages],
                in_meta=d.in_meta,
            )
            for d in result.docs[:per_page]
        ]
        more = len(result.docs) > per_page
    else:
        # one document's pages: all of them on the page
        shown = per_page if form.doc is not None else SHOWN_PER_DOCUMENT
        groups = _grouped(result.hits[:per_page], shown)
        more = len(result.hits) > per_page
        match = result.query
        if match:
            for g in groups:
                g.matching = _matching_pages(conn, match, g.doc_id)
    facets = _facets(conn, result.query, filters) if result.query else None
    return Results(groups, more, facets, (time.perf_counter() - started) * 1000)


def _grouped(hits: list[Hit], shown: int = SHOWN_PER_DOCUMENT) -> list[Group]:
    """Hits by document, each document where its best hit ranks, with its
    first ``shown`` hits."""
    groups: dict[int, Group] = {}
    for h in hits:
        key = h.doc_id or 0
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(
                key, h.path, h.kind, h.title, h.authors, h.copies, in_meta=h.in_meta
            )
        if len(g.hits) < shown and not (h.in_meta and not h.snippet):
            g.hits.append(PageHit(h.page, h.label, snippet_html(h.snippet), h.line))
    return list(groups.values())


def _matching_pages(conn: sqlite3.Connection, match: str, doc_id: int) -> int:
    """How many of the document's pages hold the words (FTS5 seeks to its
    stretch of page ids; symbol words like C++ are counted by their letters)."""
    low, high = page_range(conn, doc_id)
    if not high:
        return 0
    (count,) = conn.execute(
        "SELECT count(*) FROM pages_fts CROSS JOIN pages p ON p.id = pages_fts.rowid "
        "WHERE pages_fts MATCH ? AND pages_fts.rowid BETWEEN ? AND ? AND p.doc_id = ?",
        (match, low, high, doc_id),
    ).fetchone()
    return int(count)


@contextmanager
def _deadline(conn: sqlite3.Connection, ms: float) -> Iterator[None]:
    """Interrupts the connection's statements after ``ms``
    (``sqlite3.OperationalError: interrupted``)."""
    end = time.perf_counter() + ms / 1000
    conn.set_progress_handler(lambda: int(time.perf_counter() > end), 2000)
    try:
        yield
    finally:
        conn.set_progress_handler(None, 0)


def _facets(
    conn: sqlite3.Connection, match: str, filters: Filters
) -> dict[str, list[tuple[str, int]]] | None:
    """The matching documents counted by format and by language; None where
    the words are on more than ``FACET_PAGES`` pages, or too many to count
    within ``FACET_MS``."""
    where, params = filters.sql()
    too_many = conn.execute(
        "SELECT rowid FROM pages_fts WHERE pages_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
        (match, FACET_PAGES),
    ).fetchone()
    if too_many is not None:
        return None
    out: dict[str, list[tuple[str, int]]] = {}
    try:
        with _deadline(conn, FACET_MS):
            for name, column in (("format", "d.kind"), ("lang", "lower(d.language)")):
                rows = conn.execute(
                    f"SELECT {column} AS value, count(DISTINCT d.id) AS n FROM pages_fts "
                    "CROSS JOIN pages p ON p.id = pages_fts.rowid "
                    "JOIN documents d ON d.id = p.doc_id "
                    f"WHERE pages_fts MATCH ?{where} AND {column} IS NOT NULL "
                    "GROUP BY value ORDER BY n DESC, value LIMIT 20",
                    [match, *params],
                ).fetchall()
                out[name] = [(str(r[0]), int(r[1])) for r in rows]
    except sqlite3.OperationalError as e:
        if "interrupted" not in str(e):
            raise
        return None
    return out


@dataclass
class Summary:
    documents: int
    pages: int
    kinds: list[tuple[str, int]]
    errors: int


def summary(conn: sqlite3.Connection) -> Summary:
    """What the index holds, for the search page with no query."""
    kinds = [
        (str(r[0]), int(r[1]))
        for r in conn.execute(
            "SELECT kind, count(*) FROM documents GROUP BY kind ORDER BY count(*) DESC"
        )
    ]
    (pages,) = conn.execute("SELECT max(id) FROM pages").fetchone()  # (about: ids only grow)
    (errors,) = conn.execute("SELECT count(*) FROM documents WHERE error IS NOT NULL").fetchone()
    return Summary(sum(n for _, n in kinds), int(pages or 0), kinds, int(errors))


@dataclass
class PageRow:
    page: int
    label: str | None
    state: str  # text, or the page_gaps state
    text: str | None = None


@dataclass
class Document:
    id: int
    row: dict[str, object]
    original: dict[str, object] | None  # the document whose pages a copy shares
    copies: list[str]
    failed_ranges: list[tuple[int, int, str]]
    gaps: list[tuple[str, int]]  # pages without text, counted by state
    pages: list[PageRow]  # those from ``first``, DOCUMENT_PAGES of them at most
    first: int
    last_page: int  # the highest page number with a row

    @property
    def attached_to(self) -> str | None:
        return container_of(str(self.row["path"]))


def document_row(conn: sqlite3.Connection, doc_id: int) -> dict[str, object] | None:
    row = conn.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
    return None if row is None else dict(row)


def document(conn: sqlite3.Connection, doc_id: int, first: int = 1) -> Document | None:
    row = document_row(conn, doc_id)
    if row is None:
        return None
    original = None
    pages_of = doc_id
    if row.get("duplicate_of"):
        original = document_row(conn, int(str(row["duplicate_of"])))
        pages_of = int(str(row["duplicate_of"]))
    copies = [
        str(r[0])
        for r in conn.execute(
            "SELECT path FROM documents WHERE duplicate_of = ? ORDER BY path", (pages_of,)
        )
        if r[0] != row["path"]
    ]
    try:
        ranges = [(int(a), int(b), str(c)) for a, b, c in json.loads(str(row["failed_ranges"]))]
    except (TypeError, ValueError):
        ranges = []
    has_gaps = _has_table(conn, "page_gaps")
    gaps: list[tuple[str, int]] = []
    if has_gaps:
        gaps = [
            (str(r[0]), int(r[1]))
            for r in conn.execute(
                "SELECT state, count(*) FROM page_gaps WHERE doc_id = ? GROUP BY state "
                "ORDER BY count(*) DESC",
                (pages_of,),
            )
        ]
    end = first + DOCUMENT_PAGES
    label = "label" if _version(conn) >= 3 else "NULL"
    rows = [
        PageRow(int(r[0]), r[1], "text", str(r[2]))
        for r in conn.execute(
            f"SELECT page, {label}, text FROM pages WHERE doc_id = ? AND page >= ? AND page < ? "
            "ORDER BY page",
            (pages_of, first, end),
        )
    ]
    if has_gaps:
        rows += [
            PageRow(int(r[0]), r[1], str(r[2]))
            for r in conn.execute(
                "SELECT page, label, state FROM page_gaps "
                "WHERE doc_id = ? AND page >= ? AND page < ?",
                (pages_of, first, end),
            )
        ]
    (last,) = conn.execute("SELECT max(page) FROM pages WHERE doc_id = ?", (pages_of,)).fetchone()
    if has_gaps:
        (gap_last,) = conn.execute(
            "SELECT max(page) FROM page_gaps WHERE doc_id = ?", (pages_of,)
        ).fetchone()
        last = max(last or 0, gap_last or 0)
    return Document(
        doc_id,
        row,
        original,
        copies,
        ranges,
        gaps,
        sorted(rows, key=lambda p: p.page),
        first,
        int(last or 0),
    )


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    return found is not None


@dataclass
class PageText:
    doc: dict[str, object]
    page: int
    label: str | None
    text: Markup  # escaped, the query's words in <mark>
    marked: int  # how many matches are marked
    pages: int  # the document's page count
    line: int | None = None


def page_text(conn: sqlite3.Connection, doc_id: int, page: int, q: str = "") -> PageText | None:
    """A page of a document's stored text, the words of ``q`` marked (as the
    search that found it matched them: FTS5's highlight())."""
    doc = document_row(conn, doc_id)
    if doc is None:
        return None
    pages_of = int(str(doc["duplicate_of"] or doc_id))
    version = _version(conn)
    cols = ("label" if version >= 3 else "NULL") + ", " + ("line" if version >= 4 else "NULL")
    row = conn.execute(
        f"SELECT id, text, {cols} FROM pages WHERE doc_id = ? AND page = ?", (pages_of, page)
    ).fetchone()
    if row is None:
        return None
    text = str(row[1])
    if q:
        try:
            match = search_in(conn, q, 1, filters=Filters(documents=(pages_of,))).query
            found = conn.execute(
                "SELECT highlight(pages_fts, 0, ?, ?) FROM pages_fts "
                "WHERE pages_fts MATCH ? AND rowid = ?",
                (HL_START, HL_END, match, row[0]),
            ).fetchone()
            text = str(found[0]) if found else text
        except (IndexerError, sqlite3.Error):
            pass  # (the text unmarked)
    return PageText(
        doc,
        page,
        row[2],
        snippet_html(text),
        text.count(HL_START),
        int(str(doc["pages"] or 0)),
        row[3],
    )


@dataclass
class Errors:
    total: int
    reasons: list[tuple[str, int]]  # the commonest first
    rows: list[dict[str, object]]  # ERRORS_SHOWN from ``offset``, newest first


def errors(conn: sqlite3.Connection, offset: int = 0) -> Errors:
    """What could not be indexed and why: failed and partly read documents,
    unreadable folders."""
    union = (
        "SELECT id, path, kind, status, error AS reason, indexed_at AS recorded_at "
        "FROM documents WHERE error IS NOT NULL UNION ALL "
        "SELECT NULL, path, NULL, 'scan', reason, recorded_at FROM scan_errors"
    )
    (total,) = conn.execute(f"SELECT count(*) FROM ({union})").fetchone()
    reasons = [
        (str(r[0]), int(r[1]))
        for r in conn.execute(
            f"SELECT reason, count(*) FROM ({union}) GROUP BY reason "
            "ORDER BY count(*) DESC, reason LIMIT 50"
        )
    ]
    rows = [
        dict(r)
        for r in conn.execute(
            f"SELECT * FROM ({union}) ORDER BY recorded_at DESC, path LIMIT ? OFFSET ?",
            (ERRORS_SHOWN, offset),
        )
    ]
    return Errors(int(total), reasons, rows)
