"""indexer/extract/text.py and html.py: encodings and visible text."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.errors import ExtractError
from indexer.extract import kind_of
from indexer.extract.html import extract_html, markup_to_text
from indexer.extract.text import decode_bytes, detect_encoding, extract_text
from tests.conftest import FIXTURES

SAMPLES = {
    "utf-8": "Grüße aus Köln, naïve café.",
    "latin-1": "Le café du port servait une crème brûlée délicieuse aux marins du quai.",
    "cp1252": "Nooit had hij zo’n “mooie” zomer gekend – zei hij tegen iedereen.",
    "shift_jis": "日本語のテキストです。これはテストの文章で、文字コードの判定を確認します。",
    "koi8-r": "Окончательного разорения отца семейства никто не ожидал в этом городе.",
}


@pytest.mark.parametrize("encoding", list(SAMPLES))
def test_legacy_encodings_are_decoded(encoding: str) -> None:
    text = SAMPLES[encoding] * 3
    assert decode_bytes(text.encode(encoding)) == text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codecs.BOM_UTF8 + b"bom", ("utf-8", 3)),
        (codecs.BOM_UTF16_LE + "bom".encode("utf-16-le"), ("utf-16-le", 2)),
        (codecs.BOM_UTF16_BE + "bom".encode("utf-16-be"), ("utf-16-be", 2)),
        ("no bom here, long enough".encode("utf-16-le"), ("utf-16-le", 0)),
        ("no bom here, long enough".encode("utf-16-be"), ("utf-16-be", 0)),
    ],
)
def test_boms_and_bomless_utf16(data: bytes, expected: tuple[str, int]) -> None:
    assert detect_encoding(data) == expected


def test_text_fixtures() -> None:
    assert "crème brûlée" in extract_text(str(FIXTURES / "good/latin1.txt")).pages[0][1]
    assert "Übersetzung" in extract_text(str(FIXTURES / "good/utf16.txt")).pages[0][1]


def test_empty_text_file_is_an_empty_document(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    x = extract_text(str(tmp_path / "empty.txt"))
    assert (x.page_count, x.pages) == (1, [])


def test_html_keeps_visible_text_only() -> None:
    text = extract_html(str(FIXTURES / "good/page.html")).pages[0][1]
    assert "scriptword" not in text and "color:red" not in text
    assert "naïve quay – six o’clock" in text  # windows-1252 from <meta charset>
    assert "Neap tides follow the quarter moon" in text.splitlines()


def test_deeply_nested_markup_does_not_hit_the_recursion_limit() -> None:
    data = ("<div>" * 20000 + "deep inside" + "</div>" * 20000).encode()
    assert "deep inside" in markup_to_text(data)


def test_malformed_and_empty_markup() -> None:
    assert markup_to_text(b"<p>unclosed <b>bold <i>italic") == "unclosed bold italic"
    assert markup_to_text(b"") == ""
    assert markup_to_text(b"<?xml version='1.0' encoding='utf-8'?><html/>") == ""


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.PDF", "pdf"),
        ("b.epub", "epub"),
        ("c.md", "md"),
        ("d.htm", "html"),
        ("e.txt", "txt"),
        ("f.xlsx", None),
        ("noext", None),
    ],
)
def test_kinds_come_from_extensions(name: str, kind: str | None) -> None:
    assert kind_of(name) == kind


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("guide.txt", (FIXTURES / "good/field-guide.pdf").read_bytes(), "the file is a PDF"),
        ("archive.md", (FIXTURES / "good/voyage.epub").read_bytes(), "the file is a zip archive"),
        ("photo.html", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "the file is a PNG image"),
        ("dump.txt", bytes(range(256)) * 40, "binary content"),
    ],
)
def test_files_that_are_not_text_are_refused(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    extract = extract_html if name.endswith(".html") else extract_text
    with pytest.raises(ExtractError) as e:
        extract(str(path))
    assert str(e.value) == f"not a text file ({reason})"


@pytest.mark.parametrize(
    "data",
    [
        b"caf\xc3\xa9 au lait\n\x00\x00\x00\x00\n",  # NUL padding in valid UTF-8: kept
        "caf\u00e9 au lait\n".encode("utf-16-le"),  # NULs of UTF-16 without a BOM
        "caf\u00e9 au lait\n".encode("cp1252"),  # not UTF-8, but no NULs
        # BOM-less UTF-16 with few NUL bytes: Japanese with a little ASCII
        ("\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8" * 30 + " au lait").encode("utf-16-le"),
        ("\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8" * 30 + " au lait").encode("utf-16-be"),
    ],
)
def test_text_with_nuls_or_legacy_bytes_is_still_text(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(data)
    assert "lait" in extract_text(str(path)).pages[0][1]


def test_an_internal_dtd_is_neither_text_nor_expanded(tmp_path: Path) -> None:
    page = tmp_path / "dtd.xhtml"
    page.write_bytes(
        b'<?xml version="1.0"?>\n<!DOCTYPE html [ <!ENTITY secret SYSTEM "file:///etc/passwd">'
        b' <!ENTITY foo "bar"> ]>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
        b"<title>Hidden title</title></head><body><p>Hello &foo; &secret; world</p></body></html>"
    )
    x = extract_html(str(page))
    # no "]>", no title, nothing fetched, the references to declared entities dropped
    assert x.pages == [(1, "Hello world")]


def test_long_text_is_cut_into_pages_at_form_feeds_and_paragraphs(tmp_path: Path) -> None:
    from indexer.extract.base import PAGE_CHARS

    para = "The whale rose beside the ship and the crew watched it in silence. " * 20
    body = "\n\n".join([para] * 40)  # about 54,000 characters
    (tmp_path / "long.txt").write_text("Preface\fChapter one\n\n" + body)
    x = extract_text(str(tmp_path / "long.txt"))
    assert x.pages[0] == (1, "Preface") and x.pages[1][1].startswith("Chapter one")
    assert x.page_count == len(x.pages) > 10
    assert [n for n, _ in x.pages] == list(range(1, x.page_count + 1))
    assert all(len(t) <= PAGE_CHARS for _, t in x.pages)
    # the cuts fall between paragraphs: every page past the first two is whole paragraphs
    assert all(t.startswith("The whale") and t.endswith("silence.") for _, t in x.pages[2:])
    # a page break keeps its number when its page is empty
    (tmp_path / "blank.txt").write_text("one\f\f three")
    assert extract_text(str(tmp_path / "blank.txt")).pages == [(1, "one"), (3, "three")]


@given(st.text(alphabet=st.sampled_from("ab \n\f\t"), max_size=3000), st.integers(4, 60))
def test_pages_joined_are_the_text(text: str, size: int) -> None:
    from indexer.extract.base import split_pages

    pages = split_pages(text, size)
    assert "".join(pages) == text.replace("\f", "")
    assert all(len(p) <= size for p in pages)
    assert len(pages) >= text.count("\f") + 1  # every form feed ends a page


def test_html_pages_are_cut_too(tmp_path: Path) -> None:
    rows = "".join(f"<p>Row {i} of the ledger, with the whale oil sold.</p>" for i in range(2000))
    (tmp_path / "big.html").write_text(f"<html><body>{rows}</body></html>")
    x = extract_html(str(tmp_path / "big.html"))
    assert len(x.pages) > 10 and x.pages[0][1].startswith("Row 0 ")
    assert sum(t.count("Row ") for _, t in x.pages) == 2000


def test_titles_of_markdown_and_html(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("intro line\n\n# The  Harpoon Guide\n\ntext\n")
    (tmp_path / "b.md").write_text("Setext Title\n============\n\ntext\n")
    (tmp_path / "c.md").write_text("no heading at all\n")
    (tmp_path / "n.txt").write_text("# not a heading in a text file\n")
    (tmp_path / "d.html").write_text(
        "<html><head><title>Ship &amp; Sea</title></head><body>x</body>"
    )
    (tmp_path / "e.html").write_text("<html><body><h1>The <b>Log</b></h1><p>x</p></body></html>")
    titles = {
        name: (x.meta.title if x.meta else None)
        for name, x in [
            ("a", extract_text(str(tmp_path / "a.md"))),
            ("b", extract_text(str(tmp_path / "b.md"))),
            ("c", extract_text(str(tmp_path / "c.md"))),
            ("n", extract_text(str(tmp_path / "n.txt"))),
            ("d", extract_html(str(tmp_path / "d.html"))),
            ("e", extract_html(str(tmp_path / "e.html"))),
        ]
    }
    assert titles == {
        "a": "The Harpoon Guide",
        "b": "Setext Title",
        "c": None,
        "n": None,
        "d": "Ship & Sea",
        "e": "The Log",
    }


@given(st.text(alphabet=st.sampled_from("ab \n\f"), max_size=3000))
def test_each_page_records_the_line_it_starts_at(text: str) -> None:
    """The line a page starts at holds the start of the page's text, for any
    text (blank lines and form feeds before it included; a page cut at a
    space or a form feed starts inside a line)."""
    from indexer.extract import base

    x = base.text_pages(text, lines=True)
    file_lines = text.replace("\f", "").split("\n")
    assert set(x.lines) == {n for n, _ in x.pages}
    for n, page in x.pages:
        assert page.split("\n")[0].strip() in file_lines[x.lines[n] - 1]
    assert base.text_pages(text).lines == {}  # text out of markup: no lines
