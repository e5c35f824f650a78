"""indexer/extract/epub.py against tools/epubcases.py: every case the EPUB 2
and 3 specifications allow, in both versions, has its phrase on its page,
indexed through the real command and found by search."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from indexer.extract.epub import extract_epub
from tests.conftest import invoke, search_json
from tools.epubcases import CASES, VERSIONS, write_case


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_has_its_phrase_on_its_page_and_its_metadata(
    tmp_path: Path, name: str, version: int
) -> None:
    case = CASES[name]
    x = extract_epub(str(write_case(tmp_path, name, version)))
    pages = dict(x.pages)
    assert case.phrase in " ".join(pages.get(case.position, "").split()), pages
    assert x.failed == []
    for word in (*case.absent, "&"):  # (an unexpanded entity reference is not text)
        assert not any(word in text for text in pages.values()), word
    assert x.meta is not None
    # the editor is not an author; the publication date, not the modification's
    meta = (x.meta.title, x.meta.authors, x.meta.language, x.meta.created, x.meta.identifier)
    assert meta == (
        f"{name} in EPUB {version}",
        case.authors,
        "en-GB",
        "1999-09-09",
        "urn:isbn:9780000000002",
    )


def test_every_case_is_indexed_and_found_by_search(tmp_path: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    for name in CASES:
        for version in VERSIONS:
            write_case(books, name, version)
    db = tmp_path / "i.db"
    code, _out, err = invoke("index", books, "--db", db, "--workers", "2")
    assert code == 0, err
    statuses = sqlite3.connect(db).execute("SELECT DISTINCT status FROM documents").fetchall()
    assert statuses == [("ok",)]
    for name, case in CASES.items():
        hits = search_json(db, f'"{case.phrase}"')
        found = {(Path(str(h["path"])).name, h["page"]) for h in hits}
        want = {(f"{name}-epub{v}.epub", case.position) for v in VERSIONS}
        assert want <= found, name
