"""indexer/extract/__init__.py: every format beyond PDF, EPUB and text files,
indexed through the real command and found on its page by search."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import invoke, require_programs, search_json
from tools.formatgen import write_djvu, write_docx, write_fb2, write_mobi, write_odt


def test_every_format_is_indexed_and_found_on_its_page(tmp_path: Path) -> None:
    require_programs("djvulibre-bin", "djvutxt", "djvused", "cjb2", "djvm")
    lib = tmp_path / "lib"
    lib.mkdir()
    write_docx(lib / "report.docx", ["cover", "findings page aardvark"], title="Word Report")
    write_odt(lib / "bericht.odt", ["titel", "zweite seite bandicoot"], title="Bericht")
    write_fb2(lib / "novel.fb2", [("One", "first"), ("Two", "chapter two capybara")], title="Novel")
    write_fb2(lib / "zipped.fb2.zip", [("Only", "a dingo in a zip")], title="Zipped", zipped=True)
    write_mobi(lib / "kindle.azw3", ["<p>an echidna on a kindle</p>"], title="Kindle Book")
    write_djvu(lib / "scan.djvu", ["front", "", "a scanned fossa"])
    code, _out, err = invoke("index", lib, "--db", tmp_path / "i.db", "--workers", "2")
    assert code == 0, err
    expected = {
        "aardvark": ("report.docx", 2, "Word Report", "docx"),
        "bandicoot": ("bericht.odt", 2, "Bericht", "odt"),
        "capybara": ("novel.fb2", 2, "Novel", "fb2"),
        "dingo": ("zipped.fb2.zip", 1, "Zipped", "fb2"),
        "echidna": ("kindle.azw3", 1, "Kindle Book", "mobi"),
        "fossa": ("scan.djvu", 3, None, "djvu"),
    }
    for word, (name, page, title, kind) in expected.items():
        hits = search_json(tmp_path / "i.db", word)
        assert [(Path(str(h["path"])).name, h["page"]) for h in hits] == [(name, page)], word
        assert hits[0]["title"] == (title or Path(name).stem)  # (the file's name without one)
        code, out, _ = invoke("search", word, "--db", tmp_path / "i.db", "--format", kind, "--json")
        assert code == 0 and name in out
    conn = sqlite3.connect(tmp_path / "i.db")
    kinds = dict(conn.execute("SELECT kind, count(*) FROM documents GROUP BY kind").fetchall())
    assert kinds == {"docx": 1, "odt": 1, "fb2": 2, "mobi": 1, "djvu": 1}
