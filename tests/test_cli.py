"""indexer/cli.py: the commands end to end, their output streams and exit statuses."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import (
    FIXTURES,
    REPO,
    check_against_manifest,
    invoke,
    read_manifest,
    run_cli,
)


@pytest.fixture(scope="module")
def fixtures_db(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    db = tmp_path_factory.mktemp("cli") / "fixtures.db"
    proc = run_cli("index", FIXTURES, "--db", db)
    return db, proc


def test_index_fixtures_matches_expected(
    fixtures_db: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, proc = fixtures_db
    assert proc.returncode == 1, proc.stderr  # the broken fixtures fail, the run finishes
    assert check_against_manifest(db, FIXTURES, read_manifest(FIXTURES / "EXPECTED.tsv")) == []
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_index_output_streams(fixtures_db: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, proc = fixtures_db
    assert proc.stdout == ""  # results only on stdout; nothing to print here
    lines = proc.stderr.strip().splitlines()
    broken = [r["path"] for r in read_manifest(FIXTURES / "EXPECTED.tsv") if r["expect"] == "error"]
    for rel in broken:
        line = next(x for x in lines if x.startswith(str(FIXTURES / rel) + ": "))
        assert len(line) < 200
    assert "Traceback" not in proc.stderr
    assert lines[-1].startswith("19 new, 0 changed, 0 moved, 0 deleted, 9 failed;")


def test_search_output_formats(fixtures_db: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = fixtures_db
    proc = run_cli("search", "mizzen mast", "--db", db)  # piped: [ ] markers
    assert proc.returncode == 0
    assert proc.stdout == (
        f"{FIXTURES / 'good/voyage.epub'}:3: Storm Lightning split the [mizzen] [mast] in the "
        "second night watch.\n"
    )
    code, out, _ = invoke("search", "lighthouses OR kerosene", "--fts", "--db", db, "--json")
    hits = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {(Path(h["path"]).name, h["page"]) for h in hits} == {
        ("field-guide.pdf", 1),
        ("field-guide.pdf", 4),
    }
    assert set(hits[0]) == {
        *("path", "page", "label", "kind", "title", "authors", "rank", "snippet"),
        *("in_meta", "copies", "url", "line"),
    }
    code, out, _ = invoke("search", "narwhal", "--db", db)
    assert (code, out) == (1, "")


def test_search_for_scripts_csv_files_and_documents(
    fixtures_db: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """--csv has a header and quotes what needs it, --files prints each
    matching file once (for xargs), --scope doc --json one object a document
    with its best page per word; filters and their mistakes."""
    import csv
    import io

    db, _ = fixtures_db
    code, out, _ = invoke("search", "lamp OR kerosene OR mast", "--fts", "--db", db, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) >= 2
    assert set(rows[0]) == {
        "path",
        "page",
        "label",
        "kind",
        "title",
        "authors",
        "rank",
        "word",
        "snippet",
        "copies",
    }
    code, out, _ = invoke("search", "lamp OR kerosene OR mast", "--fts", "--db", db, "--files")
    assert code == 0 and len(out.splitlines()) == len(set(out.splitlines())) >= 2
    assert all(Path(line).is_file() for line in out.splitlines())
    code, out, _ = invoke("search", "lamp kerosene", "--scope", "doc", "--json", "--db", db)
    docs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [Path(d["path"]).name for d in docs] == ["field-guide.pdf"]
    assert [p["word"] for p in docs[0]["pages"]] == ["lamp", "kerosene"]
    code, out, _ = invoke("search", "lamp", "--format", "epub", "--files", "--db", db)
    assert (code, out) == (1, "")
    for args, message in [
        (["--csv", "--json"], "error: --json, --csv and --files are one each"),
        (["--format", "pdf,xlsx"], "error: --format xlsx: not a kind the index holds"),
        (["--since", "last week"], "error: --since 'last week' is not a date"),
        (["--scope", "book"], "error: --scope 'book': it is page or doc"),
    ]:
        proc = run_cli("search", "lamp", "--db", db, *args)
        assert proc.returncode == 2 and proc.stderr.splitlines()[0] == message, proc.stderr


def test_search_into_a_closed_pipe_exits_quietly(
    fixtures_db: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, _ = fixtures_db
    cmd = f"{sys.executable} -m indexer search 'the OR a' --fts --db {db} --limit 100 | head -c 10"
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "Error" not in proc.stderr


def test_python_m_and_help() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("index", "search", "stats", "config"):
        assert command in proc.stdout


@pytest.mark.parametrize("command", ["index", "search"])
def test_the_main_process_stays_light(command: str, tmp_path: Path) -> None:
    """Start-up is paid on every command: the main process imports neither the
    PDF library (only workers need it) nor pydantic (typer 0.29+ imports it to
    build every option, +0.1 s; pyproject keeps typer below that)."""
    db = tmp_path / "i.db"
    args = ["index", str(FIXTURES / "good"), "--db", str(db), "-q"]
    if command == "search":
        assert run_cli(*args).returncode == 0
        args = ["search", "whale", "--db", str(db)]
    code = (  # main() ends the process after the exit handlers: report from one
        "import atexit, runpy, sys\n"
        "heavy = ('pydantic', 'pymupdf', 'fitz', 'pypdf', 'ebooklib', 'lxml')\n"
        "atexit.register(lambda: print(sorted(m for m in heavy if m in sys.modules)))\n"
        f"sys.argv = ['indexer', *{args!r}]\n"
        "runpy.run_module('indexer', run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("closed", [(0,), (1,), (2,), (0, 1, 2)])
def test_closed_standard_streams(closed: tuple[int, ...], tmp_path: Path) -> None:
    """Started with stdin, stdout or stderr closed (`>&-`, some launchers), the
    run still indexes: Python makes sys.stdout None, which loky flushes, and the
    workers would inherit the closed descriptor."""
    db = tmp_path / "i.db"
    proc = subprocess.run(
        [sys.executable, "-m", "indexer", "index", str(FIXTURES / "good"), "--db", str(db)],
        stdout=subprocess.DEVNULL if 1 in closed else subprocess.PIPE,
        stderr=subprocess.DEVNULL if 2 in closed else subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=lambda: [os.close(fd) for fd in closed],  # noqa: PLW1509
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    if 2 not in closed:
        assert "error" not in proc.stderr.lower()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM documents WHERE status = 'ok'").fetchone()[0] > 0
    conn.close()


def test_no_child_process_imports_the_cli(tmp_path: Path) -> None:
    """Run as the installed `indexer` script is (a file run as __main__, written
    as pip writes it from pyproject's entry point). multiprocessing re-runs such
    a script in a child it starts (the writer did, under spawn; a forked worker
    does): the entry point must not import the CLI (typer) there for nothing."""
    with open(REPO / "pyproject.toml", "rb") as f:
        entry = tomllib.load(f)["project"]["scripts"]["indexer"]
    module, func = entry.split(":")
    script = tmp_path / "indexer-script.py"  # what pip writes to bin/indexer, plus a marker
    script.write_text(
        "import os, sys\n"
        f"from {module} import {func}\n"
        "if __name__ != '__main__' and 'indexer.cli' in sys.modules:\n"
        f"    open(os.path.join({str(tmp_path)!r}, f'cli-in-{{os.getpid()}}'), 'w').close()\n"
        "if __name__ == '__main__':\n"
        f"    sys.exit({func}())\n"
    )
    db = tmp_path / "i.db"
    proc = subprocess.run(
        [sys.executable, str(script), "index", str(FIXTURES / "good"), "--db", str(db), "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.glob("cli-in-*")) == []
    assert sqlite3.connect(db).execute("SELECT count(*) FROM documents").fetchone()[0] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "/no/such/path"], "error: /no/such/path: no such file or directory"),
        (["search", "whale", "--db", "/no/such.db"], "error: no index at /no/such.db"),
        (["index", str(FIXTURES / "good"), "--db", "/no/such/dir/i.db"], "does not exist"),
        (["index", str(FIXTURES / "good"), "--workers", "zero"], "invalid workers from --workers"),
        (["stats", "--db", str(FIXTURES / "good/notes.txt")], "is not an SQLite database"),
    ],
)
def test_fatal_errors_are_one_line_with_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr.splitlines()[0]
    assert "Traceback" not in proc.stderr


def test_a_writer_that_cannot_open_the_index_ends_the_run_cleanly(tmp_path: Path) -> None:
    """The index is new, so the plan needs no database and the first tasks start
    before the writer is waited for; the writer then fails to create the file
    (a link to a folder that does not exist): one line, exit 2, no hang."""
    db = tmp_path / "i.db"
    db.symlink_to("/nonexistent-indexer-dir/i.db")
    proc = run_cli("index", FIXTURES / "good", "--db", db, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: cannot write the index {db}: unable to open database file"
    ]


def test_all_good_files_exit_0_and_stats(tmp_path: Path) -> None:
    db = tmp_path / "good.db"
    proc = run_cli("index", FIXTURES / "good", "--db", db, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["new"] == 8 and summary["failed"] == 0 and summary["pages"] == 13
    code, out, _ = invoke("stats", "--db", db)
    assert code == 0 and out.startswith("8 documents: 8 ok, 0 empty, 0 partial, 0 failed; 13 pages")


def test_default_db_and_env(tmp_path: Path) -> None:
    proc = run_cli("index", FIXTURES / "good" / "notes.txt", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "index.db").is_file()
    proc = run_cli(
        "index",
        FIXTURES / "good" / "notes.txt",
        cwd=tmp_path,
        env={"INDEXER_DB": str(tmp_path / "env.db")},
    )
    assert proc.returncode == 0 and (tmp_path / "env.db").is_file()


def test_permission_denied_file_is_an_error_record(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(FIXTURES / "good", docs)
    os.chmod(docs / "notes.txt", 0o000)
    cmd = [sys.executable, "-m", "indexer", "index", str(docs), "--db", str(tmp_path / "i.db")]
    if os.geteuid() == 0:
        # root reads anything; without these two capabilities the mode bits apply to it too
        drop = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", "--", *cmd]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 1, proc.stderr
    assert f"{docs / 'notes.txt'}: permission denied" in proc.stderr.splitlines()
    conn = sqlite3.connect(tmp_path / "i.db")
    row = conn.execute("SELECT status FROM documents WHERE path LIKE '%notes.txt'").fetchone()
    assert row == ("error",)


def test_command_line_mistakes_are_one_line_and_a_hint(tmp_path: Path) -> None:
    """An unknown option or a missing argument is said like every other error
    (``error:`` and ``hint:``), not in typer's framed box; a query that starts
    with '-' is told to go after '--', which works."""
    proc = run_cli("search", "-sextant", "--db", tmp_path / "i.db")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: No such option: -s",
        "hint: a query that starts with '-' goes after '--': python -m indexer search -- -word",
    ]
    proc = run_cli("index")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: Missing argument 'PATHS...'.",
        "hint: see python -m indexer index --help",
    ]
    db = tmp_path / "i.db"
    assert run_cli("index", FIXTURES / "good", "--db", db, "-q").returncode == 0
    found = run_cli("search", "--db", db, "--", "-narwhal sextant")
    assert found.returncode == 0 and "sextant" in found.stdout, found.stderr


def test_version_help_usage_and_a_folder_given_as_the_index(tmp_path: Path) -> None:
    """--version and -V print the version; -h is --help; usage names the
    arguments as the help does (QUERY, not typer's {QUERY}); --db naming a
    folder says which file to name instead, for each command."""
    from indexer import __version__

    for flag in ("--version", "-V"):
        proc = run_cli(flag)
        assert (proc.returncode, proc.stdout) == (0, f"indexer {__version__}\n")
    assert run_cli("-h").stdout == run_cli("--help").stdout
    usage = {
        "search": "search [OPTIONS] QUERY",
        "index": "index [OPTIONS] PATHS...",
        "show": "show [OPTIONS] PATH",
    }
    for command, line in usage.items():
        proc = run_cli(command, "-h")
        assert proc.returncode == 0 and line in proc.stdout, proc.stdout
        assert "{" not in proc.stdout.split("\n\n")[1], proc.stdout
    folder = tmp_path / "here"
    folder.mkdir()
    hint = f"hint: name a file in it: --db {folder / 'index.db'}"
    for args in (("search", "x"), ("index", FIXTURES / "good"), ("stats",)):
        proc = run_cli(*args, "--db", folder)
        assert proc.returncode == 2 and proc.stderr.splitlines()[-1] == hint, proc.stderr


def test_shell_completion_completes_commands_and_options() -> None:
    """The script ``indexer --show-completion bash`` prints (what
    --install-completion installs), sourced in a real bash, completes a
    command's name and its options through the installed console script."""
    beside = Path(sys.executable).parent / "indexer"  # (this Python's, not another's on PATH)
    prog = str(beside) if beside.exists() else shutil.which("indexer")
    assert prog, "the indexer console script is not installed"
    script = subprocess.run([prog, "--show-completion", "bash"], capture_output=True, text=True)
    assert script.returncode == 0 and "_INDEXER_COMPLETE" in script.stdout, script.stderr

    def complete(*words: str) -> list[str]:
        bash = (
            f"{script.stdout}\nCOMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; "
            f"_indexer_completion {prog}; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        )
        proc = subprocess.run(["bash", "-c", bash], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert complete("indexer", "se") == ["search", "serve"]
    assert complete("indexer", "sea") == ["search"]
    assert "--format" in complete("indexer", "search", "--fo")
    assert complete("indexer", "index", "--no-hid") == ["--no-hidden"]


def test_the_summary_says_what_was_left_alone_and_the_exit_status_what_is_not_indexed(
    tmp_path: Path,
) -> None:
    """A run's summary counts what it did not read: unchanged files, files
    that still fail (exit 1 while any does, though they are not tried again)
    and files of unsupported types (listed with --verbose, and by a dry run)."""
    root = tmp_path / "docs"
    root.mkdir()
    shutil.copy(FIXTURES / "good" / "notes.txt", root)
    (root / "broken.pdf").write_bytes(b"not a pdf at all")
    (root / "photo.jpg").write_bytes(b"\xff\xd8")
    (root / "notes.xlsx").write_bytes(b"PK")
    db = tmp_path / "i.db"
    first = run_cli("index", root, "--db", db)
    assert first.returncode == 1
    assert first.stderr.splitlines()[-1].endswith("; 2 files of unsupported types skipped"), (
        first.stderr
    )
    again = run_cli("index", root, "--db", db, "-v")
    assert again.returncode == 1, again.stderr  # broken.pdf is still not indexed
    summary = [line for line in again.stderr.splitlines() if line.startswith("0 new")]
    assert summary == [
        "0 new, 0 changed, 0 moved, 0 deleted, 0 failed; 0 pages in "
        + summary[0].split(" pages in ")[1].split(" s")[0]
        + " s; 1 unchanged; 1 still failing (--retry-errors to retry); "
        "2 files of unsupported types skipped"
    ]
    listed = sorted(line for line in again.stderr.splitlines() if line.startswith("unsupported"))
    assert listed == [f"unsupported: {root / 'notes.xlsx'}", f"unsupported: {root / 'photo.jpg'}"]
    dry = run_cli("index", root, "--db", db, "--dry-run", "-v")
    assert f"unsupported: {root / 'photo.jpg'}" in dry.stdout.splitlines()
    assert "1 failed before (skipped), 2 of unsupported types" in dry.stderr
    (root / "broken.pdf").unlink()
    (root / "photo.jpg").unlink()
    last = run_cli("index", root, "--db", db)
    assert last.returncode == 0, last.stderr
    assert "still failing" not in last.stderr and "1 file of unsupported types" in last.stderr


def test_stats_runs_shows_what_each_run_did(tmp_path: Path) -> None:
    """Each run stores its figures in the runs table (counts, pages/min,
    worker efficiency, CPU and peak memory by role, errors by kind);
    ``stats --runs`` shows the last runs, newest first."""
    docs = tmp_path / "docs"
    shutil.copytree(FIXTURES / "good", docs)
    db = tmp_path / "i.db"
    assert run_cli("index", docs, "--db", db, "-q").returncode == 0
    shutil.copy(FIXTURES / "broken" / "image-renamed.pdf", docs / "photo.pdf")
    assert run_cli("index", docs, "--db", db, "-q").returncode == 1
    proc = run_cli("stats", "--runs", "--db", db)
    assert proc.returncode == 0, proc.stderr
    newest, oldest = proc.stdout.splitlines()
    assert newest.startswith("run 2 ") and " some_failed " in newest
    assert "1 new, 0 changed, 0 deleted, 1 failed; 0 pages" in newest
    assert newest.endswith("; errors: not a PDF 1")
    assert oldest.startswith("run 1 ") and " ok " in oldest and "8 new" in oldest
    assert "2 workers" in oldest and "CPU main " in oldest and "writer " in oldest
    runs = [
        json.loads(x)
        for x in run_cli("stats", "--runs", "--json", "--db", db).stdout.split("\n")
        if x
    ]
    assert [r["id"] for r in runs] == [2, 1] and runs[1]["roots"] == [str(docs)]
    first = runs[1]["summary"]
    assert first["pages"] == 13 and first["pages_per_min"] > 0 and first["docs_per_min"] > 0
    assert 0 < first["worker_efficiency"] <= 1
    assert set(first["cpu"]) == {"main", "workers", "writer"}
    assert all(v >= 0 for v in first["cpu"].values()) and first["cpu"]["workers"] > 0
    assert first["peak_rss_mib"]["main"] > 0 and first["peak_rss_mib"]["writer"] > 0
    assert runs[0]["summary"]["errors"] == {"not a PDF": 1}


def test_show_prints_a_document_or_one_page_by_label_or_number(tmp_path: Path) -> None:
    from tools.docgen import write_pdf

    root = tmp_path / "docs"
    root.mkdir()
    pdf = write_pdf(
        root / "guide.pdf",
        ["Preface page", "", "The harpoon\nis thrown", "Second chapter"],
        metadata={"title": "Field Guide", "author": "Ann Author"},
        labels=[
            {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
            {"startpage": 2, "prefix": "", "style": "D", "firstpagenum": 1},
        ],
    )
    db = tmp_path / "i.db"
    assert run_cli("index", root, "--db", db, "-q").returncode == 0
    proc = run_cli("show", pdf, "--db", db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str(pdf)
    assert "  title: Field Guide" in lines and "  authors: Ann Author" in lines
    assert lines[-1] == "  pages with text: i (1), 1 (3), 2 (4)"
    # a label wins over a number; a number that is no label is the page in the file
    assert run_cli("show", pdf, "--page", "1", "--db", db).stdout == "The harpoon\nis thrown\n"
    assert run_cli("show", pdf, "--page", "i", "--db", db).stdout == "Preface page\n"
    assert run_cli("show", pdf, "--page", "4", "--db", db).stdout == "Second chapter\n"
    code, out, _ = invoke("show", pdf, "--page", "2", "--json", "--db", db)
    shown = {"path": str(pdf), "page": 4, "label": "2", "line": None, "text": "Second chapter"}
    assert json.loads(out) == shown
    for args, message in [
        ((pdf, "--page", "ii"), f"error: {pdf} has no page 'ii' with text"),  # blank
        ((root / "other.pdf",), f"error: {root / 'other.pdf'} is not in the index"),
    ]:
        proc = run_cli("show", *args, "--db", db)
        assert proc.returncode == 2 and proc.stderr.splitlines()[0] == message, proc.stderr


def test_search_on_a_pseudo_terminal_highlights_words_and_links_pages(
    fixtures_db: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """A real pseudo-terminal: the matched words are bold red and nothing else
    is, the page is an OSC 8 link to file:///...#page=N, and no matches says
    so on stderr."""
    import os
    import pty
    import re
    import sys

    db, _ = fixtures_db

    def on_a_terminal(*args: str) -> tuple[int, str]:
        leader, follower = pty.openpty()
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "300", "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "indexer", *args, "--db", str(db)],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")

    code, out = on_a_terminal("search", "kerosene", "--format", "pdf")
    assert code == 0
    bold_red = re.findall(r"\x1b\[1;31m([^\x1b]*)\x1b\[0m", out)
    assert bold_red and {w.lower() for w in bold_red} == {"kerosene"}
    links = re.findall(r"\x1b\]8;[^;]*;(file://[^\x1b\x07]+)", out)
    assert links and all(re.fullmatch(r"file:///\S+\.pdf#page=\d+", u) for u in links)
    plain = re.sub(r"\x1b\]8;[^\x1b\x07]*(\x1b\\|\x07)|\x1b\[[0-9;]*m", "", out)
    assert "p. " in plain and "kerosene" in plain.lower()
    code, out = on_a_terminal("search", "zzzznothing")
    assert code == 1 and out.strip() == "no matches"
    code, out, _ = invoke("search", "kerosene", "--format", "pdf", "--json", "--db", db)
    (first, *_) = [json.loads(line) for line in out.splitlines()]
    assert first["url"] == Path(first["path"]).as_uri() + f"#page={first['page']}"


def test_a_text_files_pages_say_which_line_they_start_at(tmp_path: Path) -> None:
    """A long text file is cut into pages; each page records the line of the
    file it starts at, which show, a hit on a terminal and --json report, so
    an editor can open the file there."""
    import io
    import re

    from indexer import output
    from indexer.search import search

    root = tmp_path / "docs"
    root.mkdir()
    paragraphs = [f"Paragraph {i} of the log.\n" + "word " * 150 + "\n" for i in range(60)]
    paragraphs[41] = "The kraken surfaced here.\n" + "word " * 150 + "\n"
    text = "\n".join(paragraphs)
    (root / "log.txt").write_text(text)
    db = tmp_path / "i.db"
    assert run_cli("index", root, "--db", db, "-q").returncode == 0
    (hit,) = search(db, "kraken").hits
    lines = text.split("\n")
    assert hit.page > 1 and hit.line is not None
    # the page's first line in the file is the page's first line of text
    code, out, _ = invoke("show", root / "log.txt", "--page", str(hit.page), "--db", db)
    assert code == 0 and out.splitlines()[0] == lines[hit.line - 1]
    assert "The kraken surfaced here." in out
    code, out, _ = invoke("show", root / "log.txt", "--json", "--db", db)
    listed = json.loads(out)["pages_with_text"]
    assert listed[0] == {"page": 1, "label": None, "line": 1}
    assert [p["line"] for p in listed] == sorted(p["line"] for p in listed)
    out_io = io.StringIO()
    output.write(search(db, "kraken"), "terminal", out_io)
    plain = re.sub(r"\x1b\]8;[^\x1b]*\x1b\\|\x1b\[[0-9;]*m", "", out_io.getvalue())
    assert f"p. {hit.page} (line {hit.line}): " in plain
