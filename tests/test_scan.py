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
        "e.xlsx",
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


def test_links_to_files_inside_the_roots_followed_once_links_to_dirs_not(tmp_path: Path) -> None:
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
    (tree / "real" / ".b.txt").write_text("x")  # hidden: not listed by its own name
    os.symlink(tree / "real" / ".b.txt", tree / "b.txt")
    found = scan([str(tree)])
    # link.txt is a.txt, listed already: one file, one document
    assert sorted(found.files) == [str(tree / "b.txt"), str(tree / "real" / "a.txt")]
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
    (tmp_path / "photo.gif").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert normalize_roots([".", "./", "a.pdf"]) == [str(tmp_path), str(tmp_path / "a.pdf")]
    with pytest.raises(UsageError, match="no such file or directory"):
        normalize_roots(["missing"])
    with pytest.raises(UsageError, match="not a supported document type"):
        normalize_roots(["photo.gif"])
    assert list(scan([str(tmp_path / "a.pdf")]).files) == [str(tmp_path / "a.pdf")]


def test_exclusions_are_gitignore_patterns_from_the_flag_and_each_folders_ignore_file(
    tmp_path: Path,
) -> None:
    """--exclude patterns are relative to the root; an .indexerignore's to its
    own folder, and a deeper one decides first (``!`` takes a file back);
    nothing below an excluded folder is listed; files of no supported type
    are counted, excluded ones are not."""
    for rel in [
        "keep.pdf",
        "drafts/a.pdf",
        "drafts/sub/b.pdf",
        "books/c.pdf",
        "books/c.tmp.pdf",
        "books/old/d.pdf",
        "books/old/keep.tmp.pdf",
        "books/top.pdf",
        "top.pdf",
        "photo.gif",
        "books/photo.gif",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "books" / ".indexerignore").write_text("# temporary files\n*.tmp.pdf\nold/\n")
    (tmp_path / "books" / "old" / ".indexerignore").write_text("!keep.tmp.pdf\n")
    root = str(tmp_path)

    def listed(*exclude: str) -> tuple[list[str], list[str]]:
        result = scan([root], exclude=exclude)
        rel = sorted(os.path.relpath(p, root) for p in result.files)
        return rel, sorted(os.path.relpath(p, root) for p in result.excluded)

    assert listed() == (
        ["books/c.pdf", "books/top.pdf", "drafts/a.pdf", "drafts/sub/b.pdf", "keep.pdf", "top.pdf"],
        ["books/c.tmp.pdf", "books/old"],  # (old/ is left out whole: its own file not read)
    )
    files, excluded = listed("drafts/", "/top.pdf", "*.gif")
    assert files == ["books/c.pdf", "books/top.pdf", "keep.pdf"]
    assert excluded == [
        "books/c.tmp.pdf",
        "books/old",
        "books/photo.gif",
        "drafts",
        "photo.gif",
        "top.pdf",
    ]
    (tmp_path / "books" / ".indexerignore").write_text("*.tmp.pdf\n")  # old/ back in
    assert listed()[0] == [
        "books/c.pdf",
        "books/old/d.pdf",
        "books/old/keep.tmp.pdf",
        "books/top.pdf",
        "drafts/a.pdf",
        "drafts/sub/b.pdf",
        "keep.pdf",
        "top.pdf",
    ]
    assert sorted(os.path.relpath(p, root) for p in scan([root]).unsupported) == [
        "books/photo.gif",
        "photo.gif",
    ]
    (tmp_path / "books" / ".indexerignore").write_bytes(b"\xff\xfe*.pdf")
    broken = scan([root])
    assert [(os.path.relpath(p, root), why) for p, why in broken.errors] == [
        ("books/.indexerignore", "ignore file not read: not UTF-8 text")
    ]
    assert "books/c.pdf" in [os.path.relpath(p, root) for p in broken.files]


def test_a_folder_reached_through_two_roots_is_walked_once(tmp_path: Path) -> None:
    """A root inside another, or a link to another root's folder, adds no
    second listing of its files; a file named as a root stays a root."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "a.txt").write_text("x")
    os.symlink(docs, tmp_path / "alias")
    roots = normalize_roots([str(docs / "sub"), str(tmp_path / "alias"), str(docs)])
    assert roots == [str(tmp_path / "alias")]
    assert list(scan(roots).files) == [str(tmp_path / "alias" / "sub" / "a.txt")]
    named = str(docs / "sub" / "a.txt")
    assert normalize_roots([str(docs), named]) == [str(docs), named]
