"""indexer/viewer.py and ``indexer open``: a hit's document opened at its page."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from indexer.errors import UsageError
from indexer.viewer import command, target
from tests.conftest import run_cli


def only(*names: str):  # type: ignore[no-untyped-def]
    """A ``which`` that finds just these programs."""
    return lambda name: f"/usr/bin/{name}" if name in names else None


def test_the_first_pdf_viewer_found_opens_the_page() -> None:
    cmd = command("pdf", "/b/a b.pdf", 12, which=only("okular", "mupdf", "xdg-open"))
    assert cmd.argv == ["okular", "--page", "12", "/b/a b.pdf"] and cmd.at_page
    cmd = command("pdf", "/b/a.pdf", 3, which=only("mupdf", "zathura"))
    assert cmd.argv == ["zathura", "--page=3", "/b/a.pdf"]
    # no page asked for, or not a PDF: the desktop's opener
    assert command("pdf", "/b/a.pdf", None, which=only("zathura", "xdg-open")).argv == [
        "xdg-open",
        "/b/a.pdf",
    ]
    cmd = command("epub", "/b/a.epub", 4, which=only("zathura", "open"))
    assert cmd.argv == ["open", "/b/a.epub"] and not cmd.at_page


def test_a_template_fills_in_path_page_line_and_url() -> None:
    cmd = command("txt", "/n/log é.txt", 2, 120, template="vim +{line} '{path}'", which=only())
    assert cmd.argv == ["vim", "+120", "/n/log é.txt"]
    cmd = command("pdf", "/b/a b.pdf", 7, template="firefox {url}", which=only())
    assert cmd.argv == ["firefox", "file:///b/a%20b.pdf#page=7"]
    # a template that names no file gets the path at its end
    assert command("pdf", "/b/a.pdf", 7, template="viewer -p {page}").argv[-1] == "/b/a.pdf"


@pytest.mark.parametrize(
    ("kind", "template", "message"),
    [
        ("pdf", None, "no program to open PDF files was found (looked for zathura, "),
        ("epub", None, "no program to open EPUB files was found (looked for xdg-open, open)"),
        ("pdf", "viewer 'unclosed", 'viewer "viewer \'unclosed": No closing quotation'),
        ("pdf", "  ", "the viewer command is empty"),
    ],
)
def test_no_viewer_is_one_line_with_a_hint(kind: str, template: str | None, message: str) -> None:
    with pytest.raises(UsageError) as e:
        command(kind, "/b/a", 1, template=template, which=only())
    assert e.value.message.startswith(message) and e.value.hint


def test_a_hits_link_reads_back_into_its_path_and_page() -> None:
    assert target("file:///b/moby%20dick.pdf#page=12") == ("/b/moby dick.pdf", 12)
    assert target("file://localhost/b/a.epub") == ("/b/a.epub", None)
    assert target("/b/a.pdf") == ("/b/a.pdf", None)
    latin1 = target("file:///b/caf%E9.txt")[0]  # a name that is not UTF-8
    assert os.fsencode(latin1) == b"/b/caf\xe9.txt"
    with pytest.raises(UsageError):
        target("file://server/share/a.pdf")


def fake_viewer(bin_dir: Path, name: str, record: Path) -> None:
    """A program called ``name`` on PATH that writes its arguments to ``record``."""
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / name
    exe.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    exe.chmod(0o755)


def wait_for(path: Path, seconds: float = 20) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def test_open_starts_the_viewer_at_a_hits_page(tmp_path: Path) -> None:
    from tools.docgen import write_pdf

    root = tmp_path / "docs"
    root.mkdir()
    pdf = write_pdf(
        root / "field guide.pdf",
        ["Preface", "Contents", "The harpoon is thrown", "Second chapter"],
        labels=[
            {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
            {"startpage": 2, "prefix": "", "style": "D", "firstpagenum": 1},
        ],
    )
    (root / "notes.txt").write_text("one\n" * 10 + "\f" + "the harpoon line\n")
    db = tmp_path / "i.db"
    assert run_cli("index", root, "--db", db, "-q").returncode == 0
    (hit,) = [
        json.loads(x)
        for x in run_cli("search", "harpoon thrown", "--json", "--db", db).stdout.splitlines()
    ]
    record = tmp_path / "argv.json"
    fake_viewer(tmp_path / "bin", "evince", record)
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    # the hit's own link, as search printed it: the viewer outlives the command
    proc = run_cli("open", hit["url"], "--db", db, env=env)
    assert proc.returncode == 0 and proc.stdout == proc.stderr == "", proc.stderr
    assert json.loads(wait_for(record)) == ["--page-index=3", str(pdf)]
    # a printed label is a page of the file; --wait runs it in the foreground
    record.unlink()
    proc = run_cli("open", pdf, "--page", "2", "--wait", "--db", db, env=env)
    assert proc.returncode == 0 and json.loads(record.read_text()) == ["--page-index=4", str(pdf)]
    # a template from the environment gets a text file's line
    notes = root / "notes.txt"
    env["INDEXER_VIEWER"] = "less +{line}"
    proc = run_cli("open", notes, "--page", "2", "--print", "--db", db, env=env)
    assert proc.stdout == f"less +11 {shlex.quote(str(notes))}\n", proc.stderr


def test_open_says_in_one_line_what_stops_it(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("some text\n")
    db = tmp_path / "i.db"
    assert run_cli("index", root, "--db", db, "-q").returncode == 0
    cases = [
        (["open", root / "b.txt"], {}, f"error: {root / 'b.txt'} is not in the index"),
        (
            ["open", root / "a.txt", "--viewer", "no-such-viewer-here"],
            {},
            "error: cannot run no-such-viewer-here: No such file or directory",
        ),
        (["open", root / "a.txt"], {"PATH": "/nonexistent"}, "error: no program to open TXT"),
    ]
    for args, env, message in cases:
        proc = run_cli(*args, "--db", db, env=env)
        assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr
        assert len(proc.stderr.splitlines()) == 2 and proc.stderr.splitlines()[1][:6] == "hint: "
    (root / "a.txt").unlink()
    proc = run_cli("open", root / "a.txt", "--viewer", "true", "--db", db)
    assert proc.returncode == 2 and "no longer on disk" in proc.stderr.splitlines()[0]
