"""indexer/search.py: ranking, snippets, query fallback, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import DatabaseError, QueryError, UsageError
from indexer.messages import Document
from indexer.search import HL_END, HL_START, literal_query, search
from indexer.writer import WriterHandle


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("search") / "i.db"
    w = WriterHandle(str(db), ["/"])
    w.start()
    docs = [
        (
            "/whales.txt",
            "txt",
            "a",
            1,
            [(1, "The white whale, the white whale! Ahab hunted the whale.")],
        ),
        (
            "/book.pdf",
            "pdf",
            "b",
            3,
            [(1, "A book about ships."), (3, "Once a whale was seen from the ship.")],
        ),
        ("/e-mail.md", "md", "c", 1, [(1, "Send an e-mail about C++ and the file.")]),
    ]
    for path, kind, sha256, page_count, pages in docs:
        w.send(
            Document(
                path=path,
                kind=kind,
                size=1,
                mtime_ns=1,
                sha256=sha256,
                status=None,
                page_count=page_count,
                pages=pages,
            )
        )
    w.finish("ok", {})
    return db


def test_hits_are_ranked_with_pages_and_snippets(db: Path) -> None:
    result = search(db, "whale")
    assert [(h.path, h.page) for h in result.hits] == [("/whales.txt", 1), ("/book.pdf", 3)]
    assert result.hits[0].rank <= result.hits[1].rank
    assert f"{HL_START}whale{HL_END}" in result.hits[0].snippet
    assert result.hits[1].marked() == "Once a [whale] was seen from the ship."


def test_phrases_limits_offsets(db: Path) -> None:
    assert [h.path for h in search(db, '"white whale"').hits] == ["/whales.txt"]
    assert len(search(db, "whale", limit=1).hits) == 1
    assert [h.path for h in search(db, "whale", offset=1).hits] == ["/book.pdf"]
    assert search(db, "narwhal").hits == []


def test_invalid_fts_syntax_falls_back_to_literal_words(db: Path) -> None:
    result = search(db, "C++")
    assert result.note and "not valid FTS5 syntax" in result.note
    assert [h.path for h in result.hits] == ["/e-mail.md"]
    assert [h.path for h in search(db, "e-mail").hits] == ["/e-mail.md"]
    assert literal_query('say "hi" now') == '"say" "hi" "now"'
    # a query that starts with '*' is an FTS5 "special query" error
    starred = search(db, "*whale")
    assert starred.note and "not valid FTS5 syntax" in starred.note
    assert "/whales.txt" in [h.path for h in starred.hits]
    with pytest.raises(QueryError, match="no words to search for"):
        search(db, "**")


def test_queries_are_nfkc_normalised_like_the_text(db: Path) -> None:
    assert [h.path for h in search(db, "\ufb01le").hits] == ["/e-mail.md"]


def test_errors(db: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="empty"):
        search(db, "   ")
    with pytest.raises(DatabaseError, match="no index at"):
        search(tmp_path / "missing.db", "whale")
