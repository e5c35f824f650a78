"""indexer/progress.py: what a run shows on a terminal and what it writes to a pipe.

Real runs of ``python -m indexer``: once with stderr and stdout on a
pseudo-terminal (colours and rich), once piped (plain lines, rich not imported)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from indexer.progress import Reporter
from tests.conftest import FIXTURES, REPO, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_terminal(*args: object) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; (status, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer", *map(str, args)],
        stdout=slave,
        stderr=slave,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(30), b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_colours_errors_and_the_summary(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    status, out = run_on_terminal("index", FIXTURES, "--db", db)
    assert status == 1
    assert ANSI.search(out), "no terminal styling"
    plain = ANSI.sub("", out)
    assert "zero-bytes.pdf: empty file (0 bytes)" in plain
    assert re.search(r"\d+ new, 0 changed, 0 moved, 0 deleted, \d+ failed", plain)
    status, out = run_on_terminal("search", "whale", "--db", db)
    assert status == 0 and ANSI.search(out) and "whale" in ANSI.sub("", out).lower()


def test_a_pipe_gets_plain_lines_and_no_rich(tmp_path: Path) -> None:
    proc = run_cli("index", FIXTURES, "--db", tmp_path / "i.db", "--verbose")
    assert proc.returncode == 1
    assert not ANSI.search(proc.stderr) and not ANSI.search(proc.stdout)
    assert "zero-bytes.pdf: empty file (0 bytes)" in proc.stderr
    reporter = Reporter(stream=open(os.devnull, "w"))
    reporter.error("/a", "broken")
    reporter.info("detail")
    assert reporter._console is None  # rich was never needed


def test_the_time_left_comes_from_the_average_so_far() -> None:
    """Progress is in bytes; the time left is the run's average rate applied
    to what is left (so one big file does not swing it), shown once 2 % or
    10 s is done."""
    from indexer.progress import Snapshot, left_text, progress_line

    def snap(elapsed: float, done: int) -> Snapshot:
        return Snapshot(elapsed, 3, 10, done, 1000, 250, 1)

    assert snap(5, 10).left is None  # 1 % after 5 s: too soon to say
    assert snap(12, 10).left == 12 * 990 / 10
    assert snap(30, 500).left == 30
    assert [left_text(s) for s in (None, 30.4, 150, 7300)] == [
        "",
        "about 30 s left",
        "about 2 min left",
        "about 2 h 01 min left",
    ]
    assert progress_line(snap(30, 500)) == (
        "progress: 50 % of 1.0 kB, 3 of 10 files, 250 pages (8/s), 1 failed, 30 s, about 30 s left"
    )


def test_a_long_run_logs_progress_lines_and_a_terminal_shows_pages_and_percent(
    tmp_path: Path,
) -> None:
    """Off a terminal, --progress-every prints a progress line that often (and
    none without it); on a terminal the bar shows the percentage, the files,
    pages and pages/s, and the file being read."""
    from tools.docgen import write_long_pdf

    root = tmp_path / "docs"
    root.mkdir()
    write_long_pdf(root / "long.pdf", 2500)
    for name in ("notes.txt", "readme.md"):
        (root / name).write_bytes((FIXTURES / "good" / name).read_bytes())
    logged = run_cli("index", root, "--db", tmp_path / "a.db", "--progress-every", "0.2")
    assert logged.returncode == 0, logged.stderr
    lines = [line for line in logged.stderr.splitlines() if line.startswith("progress: ")]
    assert lines, logged.stderr
    assert re.fullmatch(
        r"progress: \d+ % of [\d.]+ [kM]B, \d of 3 files, [\d,]+ pages \([\d,]+/s\), 0 failed, "
        r"\d+ s(, about \d+ s left)?",
        lines[0],
    ), lines
    quiet = run_cli("index", root, "--db", tmp_path / "b.db")
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("progress")]
    bad = run_cli("index", root, "--db", tmp_path / "c.db", "--progress-every", "-1")
    assert bad.returncode == 2 and "invalid progress_every" in bad.stderr
    status, out = run_on_terminal("index", root, "--db", tmp_path / "d.db")
    plain = ANSI.sub("", out)
    assert status == 0, plain
    assert re.search(r"indexing .* \d+ % .*files +[\d,]+ pages +[\d,]+ pages/s", plain), plain
    assert "long.pdf" in plain
