"""indexer/scan.py: what the walk lists, skips and reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.errors import UsageError
from indexer.scan import normalize_roots, scan
from tests.conftest import REPO, as_ordinary_user


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


def test_links_to_files_inside_the_roots_followed_links_to_dirs_not(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("x")
    tree = tmp_path / "tree"
    (tree / "real").mkdir(parents=True)
    (tree / "real" / "a.txt").write_text("x")
    os.symlink(tree / "real" / "a.txt", tree / "link.txt")
    os.symlink(tmp_path / "outside" / "secret.txt", tree / "out.txt")  # /etc/shadow, say
    os.symlink(tree / "real", tree / "dirlink")
    os.symlink(tree, tree / "loop")
    os.symlink(tree / "loop.txt", tree / "loop.txt")  # a link to itself
    os.symlink(tmp_path / "nowhere.txt", tree / "dangling.txt")
    found = scan([str(tree)])
    assert sorted(found.files) == [str(tree / "link.txt"), str(tree / "real" / "a.txt")]
    assert [(p, why) for p, why in found.errors] == [
        (str(tree / "loop.txt"), "too many levels of symbolic links")
    ]
    assert found.unreadable_dirs == []  # one bad link is not an unreadable folder
    anywhere = scan([str(tree)], follow_symlinks=True)
    assert str(tree / "out.txt") in anywhere.files
    # a root named by the user is followed wherever it leads
    assert list(scan([str(tree / "out.txt")]).files) == [str(tree / "out.txt")]


def test_a_folder_whose_entries_cannot_be_examined_is_unreadable(tmp_path: Path) -> None:
    """chmod 644 on a folder: its names can be listed, its files not examined.
    The folder is unreadable as a whole (the planner purges nothing below it),
    not a list of 'permission denied' files. Run without the capability that
    lets root ignore permissions."""
    locked = tmp_path / "locked"
    (locked / "sub").mkdir(parents=True)
    (locked / "a.txt").write_text("x")
    (locked / "sub" / "b.txt").write_text("y")
    (tmp_path / "open.txt").write_text("z")
    locked.chmod(0o644)
    try:
        script = (
            "import json, sys; from indexer.scan import scan; r = scan([sys.argv[1]]); "
            "print(json.dumps([sorted(r.files), r.errors, r.unreadable_dirs]))"
        )
        proc = subprocess.run(
            [*as_ordinary_user(), sys.executable, "-c", script, str(tmp_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=60,
        )
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    files, errors, unreadable = json.loads(proc.stdout)
    assert files == [str(tmp_path / "open.txt")]
    assert errors == [[str(locked), "permission denied (its entries cannot be examined)"]]
    assert unreadable == [str(locked)]


def test_an_empty_root_is_noted(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    assert scan([str(tmp_path / "mnt")]).empty_roots == [str(tmp_path / "mnt")]
    (tmp_path / "mnt" / ".hidden").write_text("x")  # not empty: something is mounted
    assert scan([str(tmp_path / "mnt")]).empty_roots == []


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
