"""indexer/extract/fb2.py: a page per section, zipped books, encodings, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import ExtractError
from indexer.extract.fb2 import extract_fb2
from tools.formatgen import write_fb2

SECTIONS = [
    ("Chapter One", "Prince Andrew rode on\n\nthe second paragraph"),
    ("Chapter Two", "Natasha sang"),
]


@pytest.mark.parametrize("zipped", [False, True])
def test_each_section_is_a_page_with_the_title_info(tmp_path: Path, zipped: bool) -> None:
    name = "war.fb2.zip" if zipped else "war.fb2"
    path = write_fb2(
        tmp_path / name,
        SECTIONS,
        title="Война и мир",
        author=("Лев", "Толстой"),
        encoding="windows-1251",
        zipped=zipped,
        part="Том первый",
    )
    x = extract_fb2(str(path))
    assert x.page_count == 3
    assert dict(x.pages) == {
        1: "Том первый",  # the part's own text, not its chapters'
        2: "Chapter One\nPrince Andrew rode on\nthe second paragraph",
        3: "Chapter Two\nNatasha sang",
    }
    assert x.meta is not None
    assert (x.meta.title, x.meta.authors, x.meta.language, x.meta.created) == (
        "Война и мир",
        "Лев Толстой",
        "ru",
        "1869-01-01",
    )


def test_images_are_not_text_and_entities_stay_unexpanded(tmp_path: Path) -> None:
    path = tmp_path / "e.fb2"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE FictionBook [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0"><body><section>'
        "<p>plain words &x;</p></section></body>"
        '<binary id="i" content-type="image/png">iVBORw0KGgo=</binary></FictionBook>',
        encoding="utf-8",
    )
    x = extract_fb2(str(path))
    assert x.pages == [(1, "plain words")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<html><body>not a book</body></html>", "not an FB2 book (its root element is <html>)"),
        (b"\x89PNG\r\n\x1a\n", "is not XML"),
        (b'<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0"/>', "without a <body>"),
    ],
)
def test_bad_books_have_one_line_reasons(tmp_path: Path, data: bytes, reason: str) -> None:
    (tmp_path / "bad.fb2").write_bytes(data)
    with pytest.raises(ExtractError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        extract_fb2(str(tmp_path / "bad.fb2"))
