"""indexer/extract/djvu.py: the text layer of each page through djvutxt, and
a clear reason without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import ExtractError
from indexer.extract.djvu import MISSING, extract_djvu
from tests.conftest import require_programs
from tools.formatgen import write_djvu


@pytest.fixture
def djvulibre() -> None:
    require_programs("djvulibre-bin", "djvutxt", "djvused", "cjb2", "djvm")


def test_each_page_has_its_text_layer_and_a_page_without_one_keeps_its_number(
    tmp_path: Path, djvulibre: None
) -> None:
    path = write_djvu(
        tmp_path / "scan.djvu", ["first page zebra\nsecond line", "", 'quote " and é']
    )
    x = extract_djvu(str(path))
    assert x.page_count == 3
    assert x.pages == [(1, "first page zebra\nsecond line"), (3, 'quote " and é')]


def test_a_truncated_djvu_is_a_one_line_reason(tmp_path: Path, djvulibre: None) -> None:
    data = write_djvu(tmp_path / "s.djvu", ["some words"] * 3).read_bytes()
    (tmp_path / "t.djvu").write_bytes(data[: len(data) // 3])
    with pytest.raises(ExtractError, match=r"^damaged DjVu \(") as e:
        extract_djvu(str(tmp_path / "t.djvu"))
    assert "\n" not in str(e.value)


def test_without_djvutxt_the_reason_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.djvu").write_bytes(b"AT&TFORM\x00\x00\x00\x10DJVMDIRM")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ExtractError) as e:
        extract_djvu(str(tmp_path / "a.djvu"))
    assert str(e.value) == MISSING
    (tmp_path / "b.djvu").write_bytes(b"%PDF-1.4 not djvu")
    with pytest.raises(ExtractError, match="not a DjVu document"):
        extract_djvu(str(tmp_path / "b.djvu"))
