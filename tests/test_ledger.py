"""indexer/ledger.py and the ledger the writer keeps (schema.sql: page_gaps,
ledger): every page of every document has a row, and ``stats
--unsearchable`` says which pages a search cannot find and why."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from indexer.messages import Document, PageRange
from indexer.writer import WriterHandle
from tests.conftest import FIXTURES, invoke
from tests.test_writer import NEW, doc, rows
from tools.docgen import write_epub, write_image_pdf, write_pdf


def test_a_streamed_document_and_a_retry_keep_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)])
    w.start()
    # a chunked PDF: page 2 shows an image, page 5 is blank, pages 6-7 failed
    w.send(PageRange("/big.pdf", 4, 7, [(4, "four")], NEW, {5: "v"}))
    w.send(PageRange("/big.pdf", 1, 3, [(1, "one"), (3, "three")], NEW, {2: "ii"}, [2]))
    failed = [(6, 7, "unreadable page (bad xref)")]
    w.send(doc("/big.pdf", [], page_count=7, status="partial", failed_ranges=failed))
    w.finish("ok", {})
    ledger = "SELECT page, label, chars, state FROM ledger WHERE path = ? ORDER BY page"
    assert rows(db, ledger, "/big.pdf") == [
        (1, None, 3, "text"),
        (2, "ii", 0, "no text: image only"),
        (3, None, 5, "text"),
        (4, None, 4, "text"),
        (5, "v", 0, "no text: blank"),
        (6, None, 0, "failed: unreadable page (bad xref)"),
        (7, None, 0, "failed: unreadable page (bad xref)"),
    ]
    # a retry reads pages 6-7 again: 6 has text now, 7 is blank
    w = WriterHandle(str(db), [str(tmp_path)])
    w.start()
    w.send(PageRange("/big.pdf", 6, 7, [(6, "six")], None))
    w.send(Document("/big.pdf", "pdf", 10, 1, "h", None, 7, mode="ranges", retried=[(6, 7)]))
    w.finish("ok", {})
    assert rows(db, ledger, "/big.pdf")[5:] == [
        (6, None, 3, "text"),
        (7, None, 0, "no text: blank"),
    ]
    assert rows(db, "SELECT count(*) FROM ledger") == [(7,)]


def test_every_page_has_a_row_and_unsearchable_says_why(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(FIXTURES / "good/field-guide.pdf", lib)  # page 3 is blank
    shutil.copy(FIXTURES / "broken/truncated.pdf", lib)
    write_image_pdf(lib / "scan.pdf", 3)
    write_pdf(lib / "text.pdf", ["all text here", "and here"])
    chapters = [("One", "chapter one text"), ("Two", "chapter two"), ("Three", "three")]
    write_epub(lib / "holes.epub", chapters, missing=["c2.xhtml"])
    db = tmp_path / "i.db"
    code, _out, err = invoke("index", lib, "--db", db)
    assert code == 1, err  # (a failed file)
    conn = sqlite3.connect(db)
    for path, pages in conn.execute("SELECT path, pages FROM documents WHERE pages > 0"):
        numbers = [n for (n,) in conn.execute("SELECT page FROM ledger WHERE path = ?", (path,))]
        assert sorted(numbers) == list(range(1, pages + 1)), path
    conn.close()
    code, out, _err = invoke("stats", "--db", db, "--unsearchable")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("truncated.pdf: failed: " + lines[0].split(": failed: ")[1])
    assert f"{lib}/field-guide.pdf (ok, 4 pages): page 3 no text: blank" in lines
    assert f"{lib}/scan.pdf (empty, 3 pages): pages 1-3 no text: image only" in lines
    assert any(
        line.startswith(f"{lib}/holes.epub (partial, 3 pages): page 2 failed: chapter c2.xhtml")
        for line in lines
    )
    assert not any("text.pdf" in line for line in lines)
    code, out, _err = invoke("stats", "--db", db, "--unsearchable", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert records[-1] == {
        "totals": {
            "documents failed": 1,
            "failed": 1,
            "no text: blank": 1,
            "no text: image only": 3,
        }
    }
    scan = next(r for r in records if r.get("path", "").endswith("scan.pdf"))
    assert scan["gaps"] == [{"first": 1, "last": 3, "state": "no text: image only"}]
