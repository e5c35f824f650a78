"""indexer/lock.py: one run per index; a dead holder's lock is taken over;
searching never waits for it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from indexer.lock import RunLock
from tests.conftest import FIXTURES, REPO, run_cli
from tools.docgen import write_long_pdf


def test_a_second_run_exits_2_naming_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    with RunLock(db).acquire():
        proc = run_cli("index", FIXTURES / "good", "--db", db)
    assert proc.returncode == 2
    line = proc.stderr.splitlines()[0]
    assert re.fullmatch(
        rf"error: another run \(pid {os.getpid()}, started \S+\) holds the lock on {db}", line
    ), line
    assert "--wait" in proc.stderr


def test_wait_waits_for_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    lock = RunLock(db).acquire()
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "indexer",
            "index",
            str(FIXTURES / "good"),
            "--db",
            str(db),
            "--wait",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    time.sleep(1.5)
    assert proc.poll() is None  # still waiting
    lock.release()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert time.monotonic() - started >= 1.5


def test_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from indexer.lock import RunLock; from pathlib import Path;"
            "RunLock(Path(sys.argv[2])).acquire(); print('held', flush=True); time.sleep(600)",
            str(REPO),
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert f"pid {holder.pid}" in RunLock(db).holder()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert Path(str(db) + ".lock").read_text()  # the dead holder's pid is still written there
    proc = run_cli("index", FIXTURES / "good", "--db", db)
    assert proc.returncode == 0, proc.stderr


def test_search_works_while_a_run_is_writing(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "first.txt").write_text("the harbour master keeps a ledger")
    assert run_cli("index", docs, "--db", db).returncode == 0
    write_long_pdf(docs / "long.pdf", 1500)
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer", "index", str(docs), "--db", str(db), "--workers", "1"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        searched = 0
        while proc.poll() is None:
            s = run_cli("search", "ledger", "--db", db)
            assert s.returncode == 0, s.stderr
            assert "first.txt:1:" in s.stdout
            searched += 1
        assert searched >= 1
    finally:
        proc.communicate(timeout=120)
    assert proc.returncode == 0
