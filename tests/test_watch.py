"""indexer/watch.py: when a pass is due (pure), and a real watcher process
on a real folder: files created, written slowly, moved and deleted, the lock
held while it watches, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from indexer.watch import Debouncer
from tests.conftest import FIXTURES, REPO, run_cli


def test_a_pass_is_due_once_changes_have_been_quiet_or_have_gone_on_too_long() -> None:
    d = Debouncer(quiet=2.0, longest=10.0)
    assert not d.due(0.0) and d.wait(0.0) is None
    d.changed(1.0)
    assert not d.due(2.5) and d.wait(2.5) == 0.5
    d.changed(2.5)  # a file still being written: the quiet time starts again
    assert not d.due(4.0) and d.due(4.5)
    d.reset()
    assert not d.due(100.0)
    for t in range(0, 12):  # changes every second, never quiet
        d.changed(50.0 + t)
        if d.due(50.0 + t + 0.5):
            break
    assert t == 10  # longest: read anyway, 10 s after the first change


def _until(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_a_watcher_indexes_changes_holds_the_lock_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "first.txt").write_text("an albatross at dawn\n")
    db = tmp_path / "i.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer", "watch", docs, "--db", db, "--quiet-seconds", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:

        def found(word: str) -> list[str]:
            hits = run_cli("search", word, "--files", "--db", db)
            return hits.stdout.splitlines() if db.exists() else []

        assert _until(lambda: found("albatross") == [str(docs / "first.txt")])
        held = run_cli("index", docs, "--db", db)
        assert held.returncode == 2 and "holds the lock" in held.stderr
        # a file written in pieces, 0.4 s apart (less than the quiet time):
        # read once, complete
        with open(docs / "slow.txt", "w") as f:
            for word in ("kraken", "narwhal", "leviathan"):
                f.write(word + "\n")
                f.flush()
                time.sleep(0.4)
        assert _until(lambda: found("leviathan") == [str(docs / "slow.txt")])
        assert found("kraken") == [str(docs / "slow.txt")]
        (docs / "slow.txt").rename(docs / "renamed.txt")
        (docs / "sub").mkdir()
        (docs / "sub" / "guide.pdf").write_bytes(
            (FIXTURES / "good" / "field-guide.pdf").read_bytes()
        )
        assert _until(lambda: found("leviathan") == [str(docs / "renamed.txt")])
        assert _until(lambda: len(found("guide")) == 1)
        (docs / "first.txt").unlink()
        assert _until(lambda: found("albatross") == [])
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert lines[0] == "watching 1 path(s) for changes; Ctrl-C stops"
    assert lines[-1] == "stopped watching"
    summaries = lines[1:-1]
    assert summaries[0].startswith("1 new, 0 changed")
    assert sum(line.startswith("1 new") for line in summaries) == 3  # each file read once
    assert any(", 1 moved," in line for line in summaries), summaries
    assert any(", 1 deleted," in line for line in summaries), summaries
    again = run_cli("index", docs, "--db", db)  # the lock is free again
    assert again.returncode == 0 and again.stderr.startswith("0 new, 0 changed"), again.stderr


def test_without_watchdog_it_says_which_extra_to_install(tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    (blocker / "watchdog").mkdir(parents=True)
    (blocker / "watchdog" / "__init__.py").write_text("raise ImportError('not here')\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "indexer", "watch", docs, "--db", tmp_path / "i.db"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{REPO}"},
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-2:] == [
        "error: indexer watch needs the watchdog package",
        "hint: pip install 'indexer[watch]'",
    ]


def test_events_lost_to_a_full_queue_make_a_pass_that_catches_up(tmp_path: Path) -> None:
    """watchdog reports an inotify queue overflow only as a log record; the
    watcher takes it for a change (in-process, a real pool and writer)."""
    import logging
    import threading

    from indexer.config import Config
    from indexer.progress import Reporter
    from indexer.watch import watch

    docs = tmp_path / "docs"
    docs.mkdir()
    passes = []
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=([str(docs)], Config(db=tmp_path / "i.db"), Reporter.silent_reporter()),
        kwargs={"quiet": 0.2, "rescan": 3600, "on_pass": passes.append, "stop": stop},
    )
    thread.start()
    try:
        assert _until(lambda: len(passes) == 1)
        time.sleep(0.5)
        assert len(passes) == 1  # nothing changed: no second pass
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        assert _until(lambda: len(passes) == 2, timeout=10)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert not logging.getLogger("watchdog").handlers  # (taken away when it stops)
