"""indexer/extract/pdf.py: real PDFs in, page records or one-line reasons out."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pymupdf
import pytest

from indexer.errors import ExtractError
from indexer.extract import pdf
from indexer.extract.base import clean_text
from tests.conftest import FIXTURES
from tools.docgen import write_long_pdf


def test_pages_are_numbered_and_blank_pages_skipped() -> None:
    x = pdf.extract_pdf(str(FIXTURES / "good/field-guide.pdf"))
    assert x.page_count == 4
    assert [n for n, _ in x.pages] == [1, 2, 4]  # page 3 is blank
    assert "steam whistle" in dict(x.pages)[2]
    assert (x.first, x.last, x.failed) == (1, 4, [])


def test_page_range_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    write_long_pdf(path, 30)
    x = pdf.extract_pdf(str(path), 10, 12)
    assert x.page_count == 30 and (x.first, x.last) == (10, 12)
    assert [n for n, _ in x.pages] == [10, 11, 12]
    assert all(text.startswith(f"page{n:05d}") for n, text in x.pages)
    probe = pdf.extract_pdf(str(path), 1, None, limit=7)
    assert (probe.last, probe.page_count) == (7, 30)
    with pytest.raises(ExtractError, match="out of range"):
        pdf.extract_pdf(str(path), 31, 40)


def test_ranges_of_one_file_reuse_its_document_until_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    write_long_pdf(path, 30, marker="before")
    whole = pdf.extract_pdf(str(path))
    assert pdf._kept is None  # a whole document is closed at once
    first = pdf.extract_pdf(str(path), 1, 10)
    kept = pdf._kept
    assert kept is not None and kept[0][0] == str(path)
    second = pdf.extract_pdf(str(path), 11, 30)
    assert pdf._kept is not None and pdf._kept[1] is kept[1]  # the same open document
    assert first.pages + second.pages == whole.pages
    # the file changes between two ranges (new mtime): it is opened afresh
    time.sleep(0.01)
    write_long_pdf(path, 30, marker="after")
    again = pdf.extract_pdf(str(path), 11, 20)
    assert kept[1].is_closed and all("after" in t for _, t in again.pages)
    # another file closes the kept one
    other = tmp_path / "other.pdf"
    write_long_pdf(other, 5)
    pdf.extract_pdf(str(other))
    assert pdf._kept is None


def test_owner_password_only_opens_with_empty_password() -> None:
    x = pdf.extract_pdf(str(FIXTURES / "good/owner-password-only.pdf"))
    assert "tidal almanac" in x.pages[0][1]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("password.pdf", "encrypted: a password is required"),
        ("image-renamed.pdf", "not a PDF (the file is a PNG image)"),
        ("zero-bytes.pdf", "empty file (0 bytes)"),
        ("truncated.pdf", "damaged PDF"),
    ],
)
def test_broken_pdfs_give_one_line_reasons(name: str, reason: str) -> None:
    with pytest.raises(ExtractError) as info:
        pdf.extract_pdf(str(FIXTURES / "broken" / name))
    assert str(info.value).startswith(reason)
    assert "\n" not in str(info.value)


def test_scanned_pdf_has_pages_but_no_text() -> None:
    x = pdf.extract_pdf(str(FIXTURES / "empty/scanned.pdf"))
    assert x.page_count == 2 and x.pages == []


def test_pypdf_fallback_reads_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    direct = pdf.extract_pdf(str(FIXTURES / "good/field-guide.pdf"))
    monkeypatch.setattr(pdf, "_open_mupdf", lambda path: None)  # pymupdf "cannot open"
    fallback = pdf.extract_pdf(str(FIXTURES / "good/field-guide.pdf"))
    assert [n for n, _ in fallback.pages] == [n for n, _ in direct.pages]
    assert "steam whistle near the harbour" in " ".join(dict(fallback.pages)[2].split())


def test_unreadable_page_falls_back_to_pypdf(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = pdf._open_mupdf

    class BrokenPage:
        def get_text(self) -> str:
            raise RuntimeError("MuPDF error: cannot parse content stream")

    def open_with_broken_page_2(path: str):  # type: ignore[no-untyped-def]
        doc = real_open(path)
        load = doc.load_page

        class Doc:
            page_count = doc.page_count

            def load_page(self, n: int):  # type: ignore[no-untyped-def]
                return BrokenPage() if n == 1 else load(n)

            def close(self) -> None:
                doc.close()

        return Doc()

    monkeypatch.setattr(pdf, "_open_mupdf", open_with_broken_page_2)
    x = pdf.extract_pdf(str(FIXTURES / "good/field-guide.pdf"))
    assert [n for n, _ in x.pages] == [1, 2, 4]
    assert "Fog signals" in dict(x.pages)[2]


def test_clean_text_normalises_ligatures_nuls_and_surrogates() -> None:
    assert clean_text("the \ufb01le and \ufb02oor") == "the file and floor"
    assert clean_text("a\x00b") == "ab"
    assert clean_text("bad \ud800 surrogate") == "bad ? surrogate"
    assert clean_text("line  \nnext\n\n\n\nend") == "line\nnext\n\nend"


def test_a_file_name_that_is_not_utf8_is_read_by_pymupdf(tmp_path: Path) -> None:
    """pymupdf cannot take such a name; it gets the file by descriptor instead
    of falling back to pypdf (7-8x slower)."""
    try:
        path = str(tmp_path / os.fsdecode(b"guide-\xe9.pdf"))
        with open(FIXTURES / "good" / "field-guide.pdf", "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
    except OSError as e:  # macOS's APFS, for one, refuses such names
        pytest.skip(f"this file system refuses file names that are not UTF-8: {e}")
    doc = pdf._open_mupdf(path)
    assert doc is not None
    doc.close()
    same = pdf.extract_pdf(str(FIXTURES / "good" / "field-guide.pdf"))
    assert pdf.extract_pdf(path).pages == same.pages


def test_a_page_tree_that_claims_a_billion_pages_falls_back_to_pypdf(tmp_path: Path) -> None:
    """MuPDF refuses to count it ("code=7: Invalid number of pages", an
    "unexpected error" before); pypdf reads the one page there is."""
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "countword on the only page")
    doc.save(tmp_path / "one.pdf")
    data = (tmp_path / "one.pdf").read_bytes()
    assert data.count(b"/Count 1") == 1
    (tmp_path / "bomb.pdf").write_bytes(data.replace(b"/Count 1", b"/Count 1000000000"))
    x = pdf.extract_pdf(str(tmp_path / "bomb.pdf"), limit=50)
    assert (x.page_count, x.pages) == (1, [(1, "countword on the only page")])


def test_metadata_and_printed_page_labels(tmp_path: Path) -> None:
    """The info dictionary and the catalog's /Lang become the document's
    metadata (from the range that reads page 1 only); page labels give each
    page its printed number where it differs."""
    from tools.docgen import write_pdf

    path = write_pdf(
        tmp_path / "labelled.pdf",
        ["Preface text", "Contents", "Chapter one", "Chapter two"],
        metadata={
            "title": "A  Field Guide\nto Whales",
            "author": "Ann Author; Bo Writer",
            "subject": "cetaceans",
            "keywords": "whales, sea",
            "creationDate": "D:20240517103000+02'00'",
        },
        labels=[
            {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
            {"startpage": 2, "prefix": "", "style": "D", "firstpagenum": 1},
        ],
        lang="en-GB",
    )
    x = pdf.extract_pdf(str(path))
    assert x.meta is not None
    assert x.meta.title == "A Field Guide to Whales"  # one line
    assert (x.meta.authors, x.meta.language) == ("Ann Author; Bo Writer", "en-GB")
    assert (x.meta.subject, x.meta.keywords) == ("cetaceans", "whales, sea")
    assert x.meta.created == "2024-05-17T10:30:00"
    assert x.labels == {1: "i", 2: "ii", 3: "1", 4: "2"}
    later = pdf.extract_pdf(str(path), first=3)
    assert later.meta is None and later.labels == {3: "1", 4: "2"}
    plain = pdf.extract_pdf(str(write_pdf(tmp_path / "plain.pdf", ["text"])))
    assert plain.meta is None and plain.labels == {}


def test_a_word_broken_at_a_line_end_is_joined(tmp_path: Path) -> None:
    """exam-/ple at a line's end is the word example again (pymupdf's
    dehyphenation); a hyphen inside a line stays."""
    from tools.docgen import write_pdf

    path = tmp_path / "hyphen.pdf"
    write_pdf(path, ["An exam-\nple of self-contained text."])
    ((_, text),) = pdf.extract_pdf(str(path)).pages
    assert "example" in text and "self-contained" in text, text


def test_a_mupdf_failure_nobody_foresaw_falls_back_to_pypdf_or_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page tree MuPDF counted and then could not walk raised its own
    RuntimeError ("code=7: ...") out of the extractor: an "unexpected error".
    Now pypdf reads the file instead, or the reason is MuPDF's, in one line."""
    good = str(FIXTURES / "good/field-guide.pdf")
    expected = pdf.extract_pdf(good).pages
    real = pymupdf.Document.page_count
    asked = {"n": 0}

    def flaky(doc: pymupdf.Document) -> int:
        asked["n"] += 1
        if asked["n"] > 1:  # counted once, then not
            raise RuntimeError("code=7: cannot find page 2 in page tree")
        return int(real.fget(doc))  # type: ignore[attr-defined]

    monkeypatch.setattr(pymupdf.Document, "page_count", property(flaky))
    x = pdf.extract_pdf(good)
    assert [n for n, _ in x.pages] == [n for n, _ in expected] and asked["n"] >= 2
    assert [t for _, t in x.pages] == [t for _, t in expected]

    import pypdf

    def broken(*a: object, **k: object) -> None:
        raise pypdf.errors.PdfReadError("trailer not found")

    monkeypatch.setattr(pypdf, "PdfReader", broken)
    asked["n"] = 0
    with pytest.raises(ExtractError) as e:
        pdf.extract_pdf(good)
    assert str(e.value) == "damaged PDF (code=7: cannot find page 2 in page tree)"


def test_form_values_and_comments_are_text_of_their_page(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((50, 50), "first page")
    page = doc.new_page()
    page.insert_text((50, 50), "the form page")
    for name, value, top in (("shown", "filled and shown wombat", 100), ("bare", "stale", 150)):
        widget = pymupdf.Widget()
        widget.field_name, widget.field_value = name, value
        widget.field_type = pymupdf.PDF_WIDGET_TYPE_TEXT
        widget.rect = pymupdf.Rect(50, top, 300, top + 20)
        page.add_widget(widget)
    page.add_text_annot((50, 200), "sticky note koala")
    highlight = page.add_highlight_annot(pymupdf.Rect(50, 40, 120, 55))
    highlight.set_info(content="highlight comment dingo")
    highlight.update()
    page.add_freetext_annot(pymupdf.Rect(50, 300, 300, 350), "free text emu")
    doc.save(tmp_path / "form.pdf")
    doc.close()
    # a field whose value its appearance does not show (set by a program
    # that left the viewer to draw it)
    doc = pymupdf.open(tmp_path / "form.pdf")
    bare = next(w for w in doc[1].widgets() if w.field_name == "bare")
    doc.xref_set_key(bare.xref, "V", "(filled bare numbat)")
    doc.save(tmp_path / "bare.pdf")
    doc.close()
    assert "numbat" not in pymupdf.open(tmp_path / "bare.pdf")[1].get_text()
    pages = dict(pdf.extract_pdf(str(tmp_path / "bare.pdf")).pages)
    assert pages[1] == "first page"
    for words in (
        "filled and shown wombat",
        "filled bare numbat",
        "sticky note koala",
        "highlight comment dingo",
        "free text emu",
    ):
        assert pages[2].count(words) == 1, words  # once: a shown value is not repeated


def test_right_to_left_and_vertical_cjk_text_come_out_in_reading_order(corpus: Path) -> None:
    arabic = pdf.extract_pdf(str(corpus / "pdf/rtl/pdfjs-ArabicCIDTrueType.pdf")).pages[0][1]
    # logical order, presentation forms normalised ("types of Arabic fonts")
    assert arabic.splitlines()[0] == "انواع الخطوط العربية"
    english_arabic = pdf.extract_pdf(str(corpus / "pdf/rtl/pymupdf-test-E_A.pdf")).pages[0][1]
    assert "Arabic that what comes" in " ".join(english_arabic.split())
    chinese = pdf.extract_pdf(str(corpus / "pdf/cjk/pdfjs-XiaoBiaoSong.pdf")).pages[0][1]
    # a column of one character a line becomes the words it spells
    assert "关于红军作战的原则" in chinese.splitlines()
    assert "一九三七年八月一日" in chinese.splitlines()


def test_join_vertical_joins_only_columns_of_single_characters() -> None:
    assert (
        pdf.join_vertical("目\n录\n关\n于\nplain line\n中文 words")
        == "目录关于\nplain line\n中文 words"
    )
    assert pdf.join_vertical("中\n文") == "中\n文"  # two lines: not a column
