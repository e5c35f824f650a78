"""indexer/search_index.py: the ranking budget, a filter's stretch of page
ids, the words a prefix covers; each through search() on a real index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from indexer import query as query_mod
from indexer import search_index, store
from indexer.extract.base import Meta
from indexer.messages import Document
from indexer.query import HL_END, HL_START
from indexer.search import Filters, search
from indexer.writer import WriterHandle


def test_ranking_keeps_to_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget of docs/search.md, made small: a word on every page comes
    newest first, unranked; with a rare word beside it the rare word ranks;
    a word on more pages than RANK_ROWS ranks only its newest ones."""
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), ["/"])
    w.start()
    for d in range(40):  # 40 documents of 5 pages: every page has "common"
        pages = []
        for n in range(1, 6):
            words = ["common"] * 3 + ["filler"] * 20
            if n % 2:
                words += ["middle"] * (1 + (d * 5 + n) % 4)
            if d in (3, 30) and n == 2:
                words += ["rare"] * (1 if d == 3 else 5)
            pages.append((n, " ".join(words)))
        w.send(Document(f"/d{d:02d}.txt", "txt", 1, 1, f"{d}", None, 5, pages))
    w.finish("ok", {})
    monkeypatch.setattr(search_index, "PROBE", 10)
    monkeypatch.setattr(search_index, "IDF_BUDGET", 150)
    monkeypatch.setattr(search_index, "RANK_ROWS", 30)

    hits = search(db, "common", limit=5).hits  # 200 pages: newest first
    assert [(h.path, h.page) for h in hits] == [("/d39.txt", n) for n in (5, 4, 3, 2, 1)]
    assert {h.rank for h in hits} == {0.0}
    # "rare" ranks (5 occurrences before 1); "common" must still be there
    assert [h.path for h in search(db, "common rare").hits] == ["/d30.txt", "/d03.txt"]
    assert search(db, "common rare -filler").hits == []
    # "middle" is on 120 pages: the 30 newest are ranked, best first
    ranked = search(db, "middle", limit=30).hits
    assert all(h.path >= "/d28.txt" for h in ranked)
    assert [h.rank for h in ranked] == sorted(h.rank for h in ranked)
    monkeypatch.setattr(search_index, "RANK_ROWS", 10_000)  # the whole index ranked
    best = search(db, "middle", limit=30).hits
    assert any(h.path < "/d28.txt" for h in best)


def test_a_filtered_search_keeps_to_the_stretch_its_documents_are_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents indexed together hold one stretch of page ids, and a filter
    that passes only them searches that stretch (SearchIndex.bounds); a document
    read again later has its new pages at the end, and is still found."""
    db = tmp_path / "i.db"
    for folder, first_time in (("old", 1), ("new", 100)):  # two runs
        w = WriterHandle(str(db), ["/"])
        w.start()
        for d in range(20):
            pages = [(n, f"common page {n} of {folder} {d}") for n in range(1, 6)]
            w.send(
                Document(
                    f"/{folder}/d{d:02d}.txt",
                    "txt",
                    1,
                    first_time + d,
                    f"{folder}{d}",
                    None,
                    5,
                    pages,
                )
            )
        w.finish("ok", {})
    w = WriterHandle(str(db), ["/"])  # /old/d05.txt changes: new pages, new ids
    w.start()
    w.send(Document("/old/d05.txt", "txt", 2, 50, "changed", None, 1, [(1, "common kraken")]))
    w.finish("ok", {})

    conn = sqlite3.connect(db)

    def stretch(folder: str) -> tuple[int, int]:
        low, high = conn.execute(
            "SELECT min(p.id), max(p.id) FROM pages p JOIN documents d ON d.id = p.doc_id "
            "WHERE d.path LIKE ?",
            (f"/{folder}/%",),
        ).fetchone()
        return int(low), int(high)

    def bounds(filters: Filters) -> str:
        return search_index.SearchIndex.of(conn, db, filters).bounds()

    low, high = stretch("new")
    assert bounds(Filters(paths=("/new",))) == f" AND pages_fts.rowid BETWEEN {low} AND {high}"
    assert bounds(Filters(since_ns=100)) == bounds(Filters(paths=("/new",)))
    assert bounds(Filters(paths=("/old",))) == ""  # d05's new pages are past /new's
    assert bounds(Filters(paths=("/old/d1*",))) != ""
    assert bounds(Filters(paths=("/nowhere",))) == " AND pages_fts.rowid BETWEEN 1 AND 0"

    def found(filters: Filters) -> set[str]:
        return {h.path for h in search(db, "common", limit=1000, filters=filters).hits}

    new = {f"/new/d{d:02d}.txt" for d in range(20)}
    cases = [
        (Filters(paths=("/new",)), new),
        (Filters(since_ns=100), new),
        (Filters(paths=("/old",)), {f"/old/d{d:02d}.txt" for d in range(20)}),
        (Filters(before_ns=100), {f"/old/d{d:02d}.txt" for d in range(20)}),
        (Filters(paths=("/old/d0*",), before_ns=60), {f"/old/d{d:02d}.txt" for d in range(10)}),
        (Filters(paths=("/nowhere",)), set()),
    ]
    for filters, expected in cases:
        assert found(filters) == expected, filters
    assert [h.path for h in search(db, "kraken", filters=Filters(paths=("/old",))).hits] == [
        "/old/d05.txt"
    ]
    docs = search(db, "common kraken", scope="doc", filters=Filters(before_ns=100)).docs
    assert [d.path for d in docs] == ["/old/d05.txt"]
    monkeypatch.setattr(search_index, "BOUND_DOCS", 3)  # too many documents to look up
    assert bounds(Filters(paths=("/new",))) == ""
    for filters, expected in cases:
        assert found(filters) == expected, filters
    conn.close()


def test_a_prefix_finds_the_pages_of_every_word_it_covers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix is searched as its words (query.expanded, from fts5vocab on
    the search's own connection): the same pages as FTS5's own prefix query,
    a title word that is on no page still found through the documents' index,
    on a read-only file too, and as an FTS5 prefix where it covers too many
    words."""
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), ["/"])
    w.start()
    texts = ["whale oil", "whaler ship", "what now", "wharf lights", "white wheat", "whale"]
    for d, text in enumerate(texts):
        pages = [(1, text), (2, "filler")]
        w.send(Document(f"/d{d}.txt", "txt", 1, 1, f"{d}", None, 2, pages))
    meta = Meta(title="Whangarei Harbour")  # a title word on no page
    w.send(Document("/m.txt", "txt", 1, 1, "m", None, 1, [(1, "harbour")], meta=meta))
    w.finish("ok", {})
    conn = sqlite3.connect(db)
    expected = {
        r[0] for r in conn.execute("SELECT rowid FROM pages_fts WHERE pages_fts MATCH 'wha*'")
    }
    conn.close()

    def found(query: str) -> set[str]:
        return {h.path for h in search(db, query, limit=50).hits}

    assert len(expected) == 5
    assert found("wha*") == {"/d0.txt", "/d1.txt", "/d2.txt", "/d3.txt", "/d5.txt", "/m.txt"}
    assert found("wha* oil") == {"/d0.txt"}
    assert found("wha* -oil") == {"/d1.txt", "/d2.txt", "/d3.txt", "/d5.txt", "/m.txt"}
    assert found("whan*") == {"/m.txt"}  # in the title only
    assert search(db, "wha* oil").query == '("whale" OR "whaler" OR "wharf" OR "what") AND "oil"'
    snippets = {h.path: h.snippet for h in search(db, "whale*").hits}
    assert snippets["/d1.txt"] == f"{HL_START}whaler{HL_END} ship"
    scope_doc = search(db, "wha* lights", scope="doc").docs
    assert [(d.path, [p.page for p in d.pages]) for d in scope_doc] == [("/d3.txt", [1, 1])]
    with monkeypatch.context() as m:  # a file it may not write: opened read-only
        m.setattr(store.os, "access", lambda *a: False)
        assert search(db, "wha* oil").query.startswith('("whale" OR')
        assert found("wha* -oil") == {"/d1.txt", "/d2.txt", "/d3.txt", "/d5.txt", "/m.txt"}
    monkeypatch.setattr(query_mod, "EXPAND_WORDS", 2)  # wha* covers 4 words
    assert found("wha* -oil") == {"/d1.txt", "/d2.txt", "/d3.txt", "/d5.txt", "/m.txt"}
    assert search(db, "wha* oil").query == '"wha"* "oil"'
    assert found("whal*") == {"/d0.txt", "/d1.txt", "/d5.txt"}
    assert search(db, "whal*").query == '("whale" OR "whaler")'  # 2 words: expanded
