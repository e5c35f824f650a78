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
