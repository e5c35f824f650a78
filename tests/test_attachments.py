"""indexer/extract/attachments.py and the documents made of them: files
attached to a PDF are documents of their own at ``PDF//NAME``, which come,
change, move and go with their PDF."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pymupdf

from indexer.extract import extract
from indexer.extract.attachments import read_attachments
from tests.conftest import invoke, search_json
from tools.docgen import write_epub, write_pdf


def write_report(path: Path, tmp: Path, *, csv: str = "1,attached csv quoll") -> Path:
    """A PDF with an attached CSV, PDF, EPUB (named with a folder that climbs
    out: ``../../book.epub``), an image (not indexed), a PNG posing as text,
    and a file-attachment annotation."""
    inner = write_pdf(tmp / "inner.pdf", ["inner page one", "inner page two quokka"])
    book = write_epub(tmp / "inner.epub", [("One", "epub chapter wallaby")])
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((50, 50), "the outer report")
    doc.embfile_add("data.csv", f"a,b\n{csv}\n".encode(), filename="data.csv")
    doc.embfile_add("inner.pdf", inner.read_bytes(), filename="inner.pdf")
    doc.embfile_add("book", book.read_bytes(), filename="../../book.epub")
    doc.embfile_add("pic.png", b"\x89PNG\r\n\x1a\n", filename="pic.png")
    doc.embfile_add("fake.txt", b"\x89PNG\r\n\x1a\n binary", filename="fake.txt")
    page.add_file_annot((100, 100), b"annotated attachment numbat", "note.txt")
    doc.save(path)
    doc.close()
    return path


def test_attached_files_are_extracted_like_files(tmp_path: Path) -> None:
    x = extract("pdf", str(write_report(tmp_path / "r.pdf", tmp_path)))
    assert x.pages == [(1, "the outer report")]
    found = {a.name: a for a in x.attachments}
    assert sorted(found) == ["book.epub", "data.csv", "fake.txt", "inner.pdf", "note.txt"]
    assert found["inner.pdf"].extracted is not None
    assert found["inner.pdf"].extracted.pages[1] == (2, "inner page two quokka")
    assert found["book.epub"].kind == "epub"
    assert found["fake.txt"].error == "not a text file (the file is a PNG image)"
    assert x.embedded == []  # (the bytes stay in the worker)


def test_names_are_made_unique_and_size_limits_hold() -> None:
    got = read_attachments(
        [("a.txt", b"one", 3), ("dir/a.txt", b"two", 3), ("big.txt", None, 2**40)]
    )
    assert [(a.name, a.error) for a in got] == [
        ("a.txt", None),
        ("a (2).txt", None),
        ("big.txt", "attachment over the size limit (256 MiB)"),
    ]


def test_attachments_come_change_move_and_go_with_their_pdf(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    report = write_report(lib / "report.pdf", tmp_path)
    db = tmp_path / "i.db"
    code, _out, err = invoke("index", lib, "--db", db)
    assert code == 1, err  # fake.txt is an error record of its own
    assert f"{report}//fake.txt: not a text file" in err

    def paths() -> list[str]:
        conn = sqlite3.connect(db)
        try:
            return [p for (p,) in conn.execute("SELECT path FROM documents ORDER BY path")]
        finally:
            conn.close()

    names = ["", "//book.epub", "//data.csv", "//fake.txt", "//inner.pdf", "//note.txt"]
    assert paths() == [f"{report}{n}" for n in names]
    hits = search_json(db, "quokka")
    assert [(h["path"], h["page"]) for h in hits] == [(f"{report}//inner.pdf", 2)]
    assert hits[0]["url"] == f"file://{report}"  # (its PDF: the pages are its own)
    assert [h["path"] for h in search_json(db, "wallaby")] == [f"{report}//book.epub"]
    # unchanged: nothing is read again, and the attachments stay
    code, _out, err = invoke("index", lib, "--db", db)
    assert paths() == [f"{report}{n}" for n in names], err
    # changed: its attachments are read again
    stat = report.stat()
    write_report(report, tmp_path, csv="2,attached csv bilby")
    os.utime(report, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    invoke("index", lib, "--db", db)
    assert search_json(db, "quoll") == []
    assert [h["path"] for h in search_json(db, "bilby")] == [f"{report}//data.csv"]
    # moved: they move with it; deleted: they go
    moved = lib / "moved.pdf"
    report.rename(moved)
    invoke("index", lib, "--db", db)
    assert paths() == [f"{moved}{n}" for n in names]
    moved.unlink()
    invoke("index", lib, "--db", db)
    assert paths() == []
