"""indexer/extract/mobi.py: Kindle books through MuPDF, their EXTH metadata,
DRM and damage."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import ExtractError
from indexer.extract.mobi import extract_mobi
from tools.formatgen import write_mobi


def test_a_mobi_book_is_read_in_laid_out_pages_with_its_metadata(tmp_path: Path) -> None:
    chapters = [
        f"<h1>Chapter {i}</h1><p>{'filler words ' * 400}</p><p>marker{i}</p>" for i in range(1, 4)
    ]
    x = extract_mobi(
        str(write_mobi(tmp_path / "b.mobi", chapters, title="Kindle T", author="K. Author"))
    )
    assert x.page_count > 3  # MuPDF's layout: more pages than chapters
    text = {n: t for n, t in x.pages}
    found = [next(n for n, t in text.items() if f"marker{i}" in t) for i in range(1, 4)]
    assert found == sorted(found) and found[0] < found[-1]
    assert x.meta is not None
    assert (x.meta.title, x.meta.authors, x.meta.language) == ("Kindle T", "K. Author", "en")


def test_drm_and_damage_are_one_line_reasons(tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match="DRM-protected"):
        extract_mobi(str(write_mobi(tmp_path / "d.azw", ["<p>x</p>"], drm=True)))
    (tmp_path / "n.mobi").write_bytes(b"not a palm database at all" * 10)
    with pytest.raises(ExtractError, match="not a MOBI/AZW book"):
        extract_mobi(str(tmp_path / "n.mobi"))
    good = write_mobi(tmp_path / "g.mobi", ["<p>text</p>"]).read_bytes()
    (tmp_path / "t.mobi").write_bytes(good[:100])
    with pytest.raises(ExtractError, match="MOBI"):
        extract_mobi(str(tmp_path / "t.mobi"))
