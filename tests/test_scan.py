"""indexer/scan.py: what the walk lists, skips and reports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer.errors import UsageError
from indexer.scan import normalize_roots, scan


def make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for rel in [
        "a.pdf",
        "b.TXT",
        "sub/c.epub",
        "sub/deeper/d.md",
        "e.docx",
        ".hidden/f.txt",
        ".g.txt",
        "sub/h.html",
    ]:
        (root / rel).write_text("x")


def test_lists_supported_files_and_skips_hidden(tmp_path: Path) -> None:
    make_tree(tmp_path)
    found = scan([str(tmp_path)])
    rel = sorted(os.path.relpath(p, tmp_path) for p in found.files)
    assert rel == ["a.pdf", "b.TXT", "sub/c.epub", "sub/deeper/d.md", "sub/h.html"]
    assert found.files[str(tmp_path / "b.TXT")].kind == "txt"
    with_hidden = scan([str(tmp_path)], include_hidden=True)
    assert str(tmp_path / ".hidden/f.txt") in with_hidden.files
    assert str(tmp_path / ".g.txt") in with_hidden.files


def test_stat_is_recorded(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    entry = scan([str(tmp_path)]).files[str(tmp_path / "a.txt")]
    st = os.stat(tmp_path / "a.txt")
    assert (entry.size, entry.mtime_ns) == (5, st.st_mtime_ns)


def test_links_to_files_followed_links_to_dirs_not(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.txt").write_text("x")
    (tmp_path / "tree").mkdir()
    os.symlink(tmp_path / "real" / "a.txt", tmp_path / "tree" / "link.txt")
    os.symlink(tmp_path / "real", tmp_path / "tree" / "dirlink")
    os.symlink(tmp_path / "tree", tmp_path / "tree" / "loop")
    os.symlink(tmp_path / "nowhere.txt", tmp_path / "tree" / "dangling.txt")
    found = scan([str(tmp_path / "tree")])
    assert sorted(found.files) == [str(tmp_path / "tree" / "link.txt")]
    assert found.errors == []


def test_roots_are_checked_and_normalised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.pdf").write_text("x")
    (tmp_path / "photo.jpg").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert normalize_roots([".", "./", "a.pdf"]) == [str(tmp_path), str(tmp_path / "a.pdf")]
    with pytest.raises(UsageError, match="no such file or directory"):
        normalize_roots(["missing"])
    with pytest.raises(UsageError, match="not a supported document type"):
        normalize_roots(["photo.jpg"])
    assert list(scan([str(tmp_path / "a.pdf")]).files) == [str(tmp_path / "a.pdf")]
