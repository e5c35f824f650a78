"""OCR (indexer/extract/ocr.py and its use by the PDF extractor and a run):
scans rendered from known text, the corpus's real scans, and what a run
says when Tesseract or a language is missing.

Needs Debian's tesseract-ocr (skipped with that reason without it, a failure
in CI, which installs it), and ../shared/corpus for the real scans."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pymupdf
import pytest

from indexer.extract.ocr import OcrSpec, is_scan, parse_tsv, problem
from indexer.extract.pdf import extract_pdf
from indexer.store import unrecognised_under
from tests.conftest import require_programs, run_cli
from tools.docgen import write_image_pdf, write_pdf, write_scanned_pdf

TEXTS = [
    "The harbour master logged seventeen schooners before noon.\n" * 4,
    "Quinces and marmalade were shipped to Lisbon on Tuesday.\n" * 4,
    "A lighthouse keeper counted gulls along the breakwater.\n" * 4,
]


@pytest.fixture(autouse=True)
def tesseract() -> None:
    require_programs("tesseract-ocr", "tesseract")


def test_tesseract_tsv_becomes_lines_paragraphs_and_a_mean_confidence() -> None:
    head = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tl\tt\tw\th\tconf\ttext"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t",
        "5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t90\tHello",
        "5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t80\tworld",
        "5\t1\t1\t1\t2\t1\t0\t0\t1\t1\t70\tagain",
        "5\t1\t2\t1\t1\t1\t0\t0\t1\t1\t60\tNext",
        "5\t1\t2\t1\t1\t2\t0\t0\t1\t1\t-1\t ",
    ]
    text, confidence = parse_tsv("\n".join([head, *rows]))
    assert text == "Hello world\nagain\n\nNext"
    assert confidence == 75.0
    assert parse_tsv(head) == ("", None)


def test_a_rendered_scan_is_read_page_by_page(tmp_path: Path) -> None:
    pdf = write_scanned_pdf(tmp_path / "scan.pdf", TEXTS, dpi=200, noise=0.002, angle=1.5)
    assert extract_pdf(str(pdf)).pages == []  # no text layer
    x = extract_pdf(str(pdf), ocr=OcrSpec("auto"))
    assert x.images == [] and sorted(x.recognised) == [1, 2, 3]
    by_page = dict(x.pages)
    assert "schooners" in by_page[1] and "marmalade" in by_page[2] and "breakwater" in by_page[3]
    for engine, languages, dpi, confidence in x.recognised.values():
        assert engine.startswith("tesseract ") and languages == "eng" and dpi == 300
        assert confidence is not None and 50 < confidence <= 100


def test_auto_keeps_a_text_layer_and_always_replaces_it(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "text.pdf", ["Typeset words about anchors.", "More about sails."])
    auto = extract_pdf(str(pdf), ocr=OcrSpec("auto"))
    assert auto.recognised == {} and dict(auto.pages)[1] == "Typeset words about anchors."
    always = extract_pdf(str(pdf), ocr=OcrSpec("always"))
    assert sorted(always.recognised) == [1, 2]
    assert "anchors" in dict(always.pages)[1]


def test_a_small_picture_is_not_a_scan(tmp_path: Path, corpus: Path) -> None:
    source = pymupdf.open(write_image_pdf(tmp_path / "x.pdf"))
    png = source[0].get_pixmap(dpi=20).tobytes("png")
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(0, 0, 595, 842), stream=png, keep_proportion=False)
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 150, 150), stream=png)
    assert is_scan(doc[0]) and not is_scan(doc[1])
    # a scan written in strips (PCLm) covers the page in many small images
    strips = pymupdf.open(corpus / "pdf" / "scanned" / "qpdf-pclm-in.pdf")[0]
    assert len(strips.get_image_info()) > 10 and is_scan(strips)


def test_a_run_with_ocr_makes_scans_searchable_and_keeps_text_pages(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_scanned_pdf(docs / "scan.pdf", TEXTS, noise=0.002)
    write_pdf(docs / "typeset.pdf", ["Typeset words about anchors."])
    # a PDF of text pages and scanned pages
    mixed = pymupdf.open(write_pdf(docs / "part.pdf", ["A typeset preface about rigging."]))
    mixed.insert_pdf(pymupdf.open(write_scanned_pdf(tmp_path / "s.pdf", TEXTS[1:2])))
    mixed.save(docs / "mixed.pdf")
    (docs / "part.pdf").unlink()
    db = tmp_path / "index.db"
    proc = run_cli("index", docs, "--db", db, "--ocr", "auto", "-v")
    assert proc.returncode == 0, proc.stderr
    assert "ocr: " in proc.stderr and "warning" not in proc.stderr
    conn = sqlite3.connect(db)
    found = {
        (path.rsplit("/", 1)[1], page)
        for path, page in conn.execute(
            "SELECT d.path, p.page FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
            "JOIN documents d ON d.id = p.doc_id WHERE pages_fts MATCH 'marmalade'"
        )
    }
    assert found == {("scan.pdf", 2), ("mixed.pdf", 2)}
    records = {
        (path.rsplit("/", 1)[1], page)
        for path, page in conn.execute(
            "SELECT d.path, o.page FROM page_ocr o JOIN documents d ON d.id = o.doc_id"
        )
    }
    assert records == {("scan.pdf", 1), ("scan.pdf", 2), ("scan.pdf", 3), ("mixed.pdf", 2)}
    (preface,) = conn.execute(
        "SELECT text FROM pages p JOIN documents d ON d.id = p.doc_id "
        "WHERE d.path LIKE '%mixed.pdf' AND p.page = 1"
    ).fetchone()
    assert preface == "A typeset preface about rigging."  # the text layer, not OCR
    assert conn.execute("SELECT count(*) FROM page_gaps").fetchone() == (0,)
    conn.close()
    stats = run_cli("stats", "--db", db)
    assert "4 pages recognised by OCR" in stats.stdout


def test_a_later_ocr_run_reads_only_what_is_not_recognised_yet(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_scanned_pdf(docs / "scan.pdf", TEXTS[:2], noise=0.002)
    write_pdf(docs / "typeset.pdf", ["Typeset words about anchors."])
    db = tmp_path / "index.db"
    assert run_cli("index", docs, "--db", db).returncode == 0  # without --ocr: image only
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM page_gaps").fetchone() == (2,)
    proc = run_cli("index", docs, "--db", db, "--ocr", "auto")
    assert proc.returncode == 0, proc.stderr
    assert "1 changed" in proc.stderr and "1 unchanged" in proc.stderr
    assert conn.execute("SELECT count(*) FROM page_ocr").fetchone() == (2,)
    assert conn.execute("SELECT count(*) FROM page_gaps").fetchone() == (0,)
    again = run_cli("index", docs, "--db", db, "--ocr", "auto")
    assert "0 changed" in again.stderr and "2 unchanged" in again.stderr
    plain = run_cli("index", docs, "--db", db)  # a run without --ocr keeps them
    assert "2 unchanged" in plain.stderr
    assert conn.execute("SELECT count(*) FROM page_ocr").fetchone() == (2,)
    # pages recognised in other languages are read again in these
    assert unrecognised_under(conn, [str(docs)], "eng") == set()
    assert unrecognised_under(conn, [str(docs)], "eng+deu") == {str(docs / "scan.pdf")}
    conn.close()


def test_missing_tesseract_or_language_is_one_warning_and_text_is_indexed(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_scanned_pdf(docs / "scan.pdf", TEXTS[:1], noise=0.002)
    write_pdf(docs / "typeset.pdf", ["Typeset words about anchors."])
    empty = tmp_path / "tessdata"
    empty.mkdir()
    db = tmp_path / "index.db"
    proc = run_cli("index", docs, "--db", db, "--ocr", "auto", env={"TESSDATA_PREFIX": str(empty)})
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(("warning", "hint"))]
    assert lines == [
        f"warning: OCR language eng is not installed in TESSDATA_PREFIX={empty}: "
        "scanned pages are not recognised",
        "hint: apt-get install tesseract-ocr-eng",
    ]
    assert run_cli("search", "anchors", "--db", db).returncode == 0
    # no tesseract on PATH at all
    assert problem(OcrSpec()) is None
    proc = run_cli(
        "index", docs, "--db", tmp_path / "b.db", "--ocr", "auto", env={"PATH": str(tmp_path)}
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: tesseract is not installed: scanned pages are not recognised" in proc.stderr
    assert proc.stderr.count("warning") == 1


def test_the_corpus_scans_are_recognised(tmp_path: Path, corpus: Path) -> None:
    db = tmp_path / "index.db"
    proc = run_cli("index", corpus / "pdf" / "scanned", "--db", db, "--ocr", "auto")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    (page,) = conn.execute(
        "SELECT p.page FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
        "JOIN documents d ON d.id = p.doc_id "
        "WHERE pages_fts MATCH '\"single page a4 test document\"' AND d.path LIKE '%pclm-in.pdf'"
    ).fetchone()
    assert page == 1
    (recognised,) = conn.execute(
        "SELECT count(*) FROM page_ocr WHERE confidence IS NOT NULL"
    ).fetchone()
    assert recognised >= 3
    conn.close()
    assert os.path.getsize(db) > 0


def test_pages_read_with_low_confidence_are_listed_as_unsearchable(tmp_path: Path) -> None:
    from indexer import ledger

    docs = tmp_path / "docs"
    docs.mkdir()
    write_scanned_pdf(docs / "scan.pdf", TEXTS[:2], noise=0.002)
    db = tmp_path / "index.db"
    assert run_cli("index", docs, "--db", db, "--ocr", "auto").returncode == 0
    conn = sqlite3.connect(db)
    conn.execute("UPDATE page_ocr SET confidence = 31.5 WHERE page = 2")
    conn.commit()
    (doc,) = ledger.unsearchable(conn)
    assert [(g.first, g.last, g.state) for g in doc.gaps] == [(2, 2, ledger.LOW_OCR)]
    conn.close()
    stats = run_cli("stats", "--db", db, "--unsearchable")
    assert f"page 2 {ledger.LOW_OCR}" in stats.stdout


def test_image_files_are_documents_when_ocr_is_on(tmp_path: Path) -> None:
    from tools.docgen import scan_pixmaps, write_tiff

    docs = tmp_path / "docs"
    docs.mkdir()
    pixmaps = scan_pixmaps(TEXTS)
    pixmaps[0].save(str(docs / "receipt.png"))
    pixmaps[1].save(str(docs / "photo.jpg"))
    write_tiff(docs / "fax.tif", pixmaps[1:3])  # two pages, as a fax or scanner writes
    (docs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    db = tmp_path / "index.db"
    plain = run_cli("index", docs, "--db", db)  # without --ocr: pictures are not documents
    assert plain.returncode == 0, plain.stderr
    assert "4 files of unsupported types skipped" in plain.stderr
    proc = run_cli("index", docs, "--db", db, "--ocr", "auto")
    assert proc.returncode == 1, proc.stderr  # (the broken one)
    assert "4 new" in proc.stderr and "1 failed" in proc.stderr
    assert "broken.png: damaged image (" in proc.stderr
    conn = sqlite3.connect(db)

    def pages_with(word: str) -> set[tuple[str, int]]:
        return {
            (path.rsplit("/", 1)[1], page)
            for path, page in conn.execute(
                "SELECT d.path, p.page FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
                "JOIN documents d ON d.id = p.doc_id WHERE pages_fts MATCH ?",
                (word,),
            )
        }

    assert pages_with("schooners") == {("receipt.png", 1)}
    assert pages_with("marmalade") == {("photo.jpg", 1), ("fax.tif", 1)}
    assert pages_with("breakwater") == {("fax.tif", 2)}
    kinds = dict(conn.execute("SELECT kind, count(*) FROM documents GROUP BY kind").fetchall())
    assert kinds == {"image": 4}
    (reason,) = conn.execute("SELECT reason FROM errors").fetchone()
    assert reason.startswith("damaged image (") and "unexpected" not in reason
    (n,) = conn.execute("SELECT count(*) FROM page_ocr WHERE confidence > 50").fetchone()
    assert n == 4
    conn.close()
    again = run_cli("index", docs, "--db", db, "--ocr", "auto")
    assert "0 new" in again.stderr and "3 unchanged" in again.stderr


def test_pictures_that_are_an_epubs_pages_are_recognised(tmp_path: Path, corpus: Path) -> None:
    from indexer.extract.epub import extract_epub
    from tools.docgen import scan_pixmaps, write_raw_epub

    png = scan_pixmaps(TEXTS[:1])[0].tobytes("png")
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:identifier id="id">x</dc:identifier><dc:title>Scans</dc:title>'
        "<dc:language>en</dc:language></metadata><manifest>"
        '<item id="p1" href="text/p1.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="img" href="images/p1.png" media-type="image/png"/>'
        '<item id="p2" href="images/p1.png" media-type="image/png"/>'
        '</manifest><spine><itemref idref="p1"/><itemref idref="p2"/></spine></package>'
    )
    page = (
        '<html xmlns="http://www.w3.org/1999/xhtml"><body>'
        '<div><img src="../images/p1.png" alt=""/></div></body></html>'
    )
    book = write_raw_epub(
        tmp_path / "scans.epub", opf, {"text/p1.xhtml": page, "images/p1.png": png}
    )
    assert extract_epub(str(book)).images == [1, 2]  # without OCR: pictures
    x = extract_epub(str(book), OcrSpec("auto"))
    assert x.images == [] and sorted(x.recognised) == [1, 2]
    assert all("schooners" in text for _, text in x.pages)
    # a real comic whose spine items are bitmaps
    comic = extract_epub(str(corpus / "epub" / "page-blanche-bitmaps-in-spine.epub"), OcrSpec())
    assert "BLANCHE" in dict(comic.pages)[2]
