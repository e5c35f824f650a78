"""``indexer search`` as a library call: ranked hits with highlighted snippets.

Why this module exists: the query side of the index. A query is FTS5 syntax
(``white whale``, ``"white whale"``, ``whale NOT moby``, ``whal*``), normalised
with NFKC like the indexed text. People also type things that are not valid
FTS5 (``C++``, ``don't``, ``e-mail``): instead of an error, such a query is run
again as its words quoted literally, and a note says so (sqlite-utils answers
with a "--quote" hint; we apply it). Hits are ordered by FTS5's bm25 ``rank``.
Snippets carry ``HL_START``/``HL_END`` control characters around the matched
words; the CLI turns them into bold on a terminal or ``[`` ``]`` in a pipe.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from indexer import store
from indexer.errors import QueryError, UsageError

HL_START, HL_END = "\x02", "\x03"
SNIPPET_TOKENS = 24

_SQL = f"""
SELECT d.path, p.page, d.kind, pages_fts.rank AS rank,
       snippet(pages_fts, 0, '{HL_START}', '{HL_END}', '…', {SNIPPET_TOKENS}) AS snippet
FROM pages_fts
JOIN pages p ON p.id = pages_fts.rowid
JOIN documents d ON d.id = p.doc_id
WHERE pages_fts MATCH ?
ORDER BY pages_fts.rank
LIMIT ? OFFSET ?
"""


@dataclass(frozen=True)
class Hit:
    path: str
    page: int
    kind: str
    rank: float
    snippet: str  # with HL_START / HL_END around matches, newlines folded to spaces

    def marked(self, start: str = "[", end: str = "]") -> str:
        return self.snippet.replace(HL_START, start).replace(HL_END, end)


@dataclass(frozen=True)
class SearchResult:
    query: str  # the FTS5 query that ran
    hits: list[Hit]
    note: str | None = None


def literal_query(query: str) -> str:
    """Every word quoted: the query means 'all these words', nothing else."""
    words = re.findall(r"\w[\w'’.+#-]*", query)
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def _is_syntax_error(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return any(
        part in msg
        for part in ("fts5", "syntax error", "no such column", "unterminated", "special query")
    )


def search(db: str | Path, query: str, limit: int = 20, offset: int = 0) -> SearchResult:
    query = unicodedata.normalize("NFKC", query).strip()
    if not query:
        raise UsageError("the search query is empty")
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    conn = store.connect(db)
    try:
        note = None
        try:
            rows = conn.execute(_SQL, (query, limit, offset)).fetchall()
            used = query
        except sqlite3.OperationalError as e:
            if not _is_syntax_error(e):
                raise QueryError(f"search failed: {e}") from None
            used = literal_query(query)
            if not used:
                shown = query if len(query) <= 60 else query[:59] + "…"
                raise QueryError(
                    f"no words to search for in {shown!r}",
                    hint='FTS5 syntax: words, "a phrase", word*, a OR b, a NOT b',
                ) from None
            note = f"not valid FTS5 syntax ({e}); searched for the words {used}"
            rows = conn.execute(_SQL, (used, limit, offset)).fetchall()
    finally:
        conn.close()
    hits = [
        Hit(r["path"], r["page"], r["kind"], r["rank"], " ".join(r["snippet"].split()))
        for r in rows
    ]
    return SearchResult(used, hits, note)
