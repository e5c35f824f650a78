"""Interrupted runs: kill -9 (whole run, writer, worker), Ctrl-C, SIGTERM.

Each case starts a real `python -m indexer index` on a generated corpus in its
own session, interrupts it when the index reaches a given state, checks that
the database is valid with no half-visible document, runs again, and compares
the result with a clean single run on the same files (same documents, same
pages, same text)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import FIXTURES, REPO, db_snapshot, run_cli, session_processes
from tools.docgen import write_corpus, write_long_pdf

FAST = ["--batch-seconds", "0.1", "--batch-rows", "200"]


@pytest.fixture(scope="module")
def gen_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "corpus"
    write_corpus(root, n_pdfs=50, pages=(10, 40), n_epubs=6, n_texts=30, seed=3)
    write_long_pdf(root / "long.pdf", 1000)
    for i in range(6):  # small, so read last; slow where INDEXER_FAULTS=1 (the interruptions)
        (root / f"zz-fault-slow-{i}.txt").write_text(f"a slow note, number {i}\n")
    for f in (FIXTURES / "broken").iterdir():
        shutil.copy(f, root / ("broken-" + f.name))
    return root


@pytest.fixture(scope="module")
def clean(gen_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    db = tmp_path_factory.mktemp("clean") / "clean.db"
    proc = run_cli("index", gen_corpus, "--db", db)
    assert proc.returncode == 1, proc.stderr  # the broken- files
    snap = db_snapshot(db)
    assert snap["integrity"] == "ok"
    return snap


def start(
    corpus: Path, db: Path, *extra: str, tmpdir: Path | None = None, slow: bool = True
) -> subprocess.Popen[str]:
    """``slow``: the last files take half a second each (INDEXER_FAULTS=1), so
    that work is left to interrupt once a share of the run is committed."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **({"INDEXER_FAULTS": "1"} if slow else {})}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen(
        [sys.executable, "-m", "indexer", "index", str(corpus), "--db", str(db), *FAST, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def committed(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return -1  # not created yet


def wait_until(proc: subprocess.Popen[str], ready, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before the interruption point"
        assert time.monotonic() < deadline, "the interruption point was never reached"
        time.sleep(0.01)


def total_files(corpus: Path) -> int:
    return sum(1 for _ in corpus.iterdir())


def assert_all_gone(proc: subprocess.Popen[str], seconds: float = 15) -> None:
    """The killed run's main process and, within ``seconds``, every process it started."""
    proc.wait(30)
    deadline = time.monotonic() + seconds
    while left := session_processes(proc.pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of the killed run live on: {_described(left)}")
        time.sleep(0.1)


def _described(processes: list[psutil.Process]) -> list[str]:
    out = []
    for p in processes:
        try:
            out.append(f"{p.pid} ({p.status()}, parent {p.ppid()}): {' '.join(p.cmdline())}")
        except psutil.Error:
            continue
    return out


def assert_consistent(db: Path, clean: dict[str, object]) -> None:
    """Valid, and every visible document is whole (its pages are the clean run's)."""
    if not db.exists():
        return
    snap = db_snapshot(db)
    assert snap["integrity"] == "ok" and snap["fts_integrity"]
    clean_pages: dict[str, list[tuple[int, str]]] = {}
    for path, page, text in clean["pages"]:  # type: ignore[union-attr]
        clean_pages.setdefault(path, []).append((page, text))
    got: dict[str, list[tuple[int, str]]] = {}
    for path, page, text in snap["pages"]:  # type: ignore[union-attr]
        got.setdefault(path, []).append((page, text))
    for doc in snap["docs"]:  # type: ignore[union-attr]
        path = doc[0]
        assert got.get(path, []) == clean_pages.get(path, []), f"half-visible: {path}"


def rerun_matches_clean(corpus: Path, db: Path, clean: dict[str, object]) -> None:
    proc = run_cli("index", corpus, "--db", db)
    # 1 if the broken files were still to do; 0 if the killed run had recorded them
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert db_snapshot(db) == clean
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    conn.close()


@pytest.mark.parametrize("point", ["early", "mid", "late"])
def test_kill_9_of_the_whole_run(
    point: str, gen_corpus: Path, clean: dict[str, object], tmp_path: Path
) -> None:
    db = tmp_path / "i.db"
    n = total_files(gen_corpus)
    proc = start(gen_corpus, db)
    if point == "early":
        wait_until(proc, lambda: committed(db) >= 0)  # schema there, nothing published
    elif point == "mid":
        wait_until(proc, lambda: committed(db) >= n * 0.3)
    else:
        wait_until(proc, lambda: committed(db) >= n * 0.8)
    os.killpg(proc.pid, signal.SIGKILL)
    assert_all_gone(proc)
    assert_consistent(db, clean)
    rerun_matches_clean(gen_corpus, db, clean)
    # the named semaphores the killed run left in /dev/shm went with the next run
    left = [
        n for n in os.listdir("/dev/shm") if re.match(rf"sem\.(loky|mp-indexer)-{proc.pid}-", n)
    ]
    assert left == []


def _forked(proc: subprocess.Popen[str], db: Path, writer: bool) -> psutil.Process:
    """The writer (``writer=True``: the one with the index open) or a pool
    worker: both are children of the fork server (launch.worker_context)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "multiprocessing.forkserver" not in " ".join(child.parent().cmdline()):
                    continue
                if (str(db) in {f.path for f in child.open_files()}) == writer:
                    return child
            except psutil.Error:
                continue
        time.sleep(0.05)
    raise AssertionError(f"no {'writer' if writer else 'worker'} forked by the fork server")


def test_kill_9_of_the_main_process_alone(
    gen_corpus: Path, clean: dict[str, object], tmp_path: Path
) -> None:
    """kill -9 of the main pid only (not the group): the writer commits what it
    holds and exits; the workers (and so the fork server) exit too, instead of
    finishing their task and waiting for work forever; the workers remove the
    temporary folder of big results, which the main process no longer can."""
    db = tmp_path / "i.db"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = start(gen_corpus, db, tmpdir=tmpdir)
    wait_until(proc, lambda: committed(db) >= total_files(gen_corpus) * 0.3)
    _forked(proc, db, writer=False)  # the pool is up
    ours = lambda: [p.name[:16] for p in tmpdir.iterdir() if p.name.startswith("indexer")]  # noqa: E731
    assert ours() == ["indexer-results-"]
    os.kill(proc.pid, signal.SIGKILL)
    assert_all_gone(proc)
    assert ours() == []  # (multiprocessing's pymp-* folder for its socket stays)
    assert_consistent(db, clean)
    rerun_matches_clean(gen_corpus, db, clean)


def test_kill_9_of_the_writer(gen_corpus: Path, clean: dict[str, object], tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    proc = start(gen_corpus, db)
    wait_until(proc, lambda: committed(db) >= total_files(gen_corpus) * 0.3)
    _forked(proc, db, writer=True).kill()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "error: the writer process died (signal 9)" in err
    assert "Traceback" not in err
    assert_consistent(db, clean)
    rerun_matches_clean(gen_corpus, db, clean)


def test_kill_9_of_a_worker_fails_nothing(
    gen_corpus: Path, clean: dict[str, object], tmp_path: Path
) -> None:
    db = tmp_path / "i.db"
    proc = start(gen_corpus, db, "--verbose", "--json")
    wait_until(proc, lambda: committed(db) >= total_files(gen_corpus) * 0.2)
    _forked(proc, db, writer=False).kill()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # only the broken- files failed
    assert "a worker crashed (signal 9" in err
    assert db_snapshot(db) == clean  # the crashed task was rerun alone and succeeded


@pytest.mark.parametrize("target", ["fork server", "worker", "writer"])
def test_sigterm_to_a_child_alone_is_ignored(
    target: str, gen_corpus: Path, clean: dict[str, object], tmp_path: Path
) -> None:
    """A SIGTERM to the process group is the main process's to handle (it stops
    the workers with SIGKILL and has the writer commit), so the processes it
    started ignore it. A killed fork server would take the writer's exit status
    with it, and the writer would look dead while it commits."""
    db = tmp_path / "i.db"
    proc = start(gen_corpus, db)
    # as soon as the index exists (the writer made it, the workers run): the
    # whole run can end within 0.1 s of its first committed document
    wait_until(proc, lambda: committed(db) >= 0)
    if target == "fork server":
        victim = _forked(proc, db, writer=False).parent()
    else:
        victim = _forked(proc, db, writer=target == "writer")
    victim.terminate()
    time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the signal could be checked"
    assert victim.is_running() and victim.status() != psutil.STATUS_ZOMBIE
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # only the broken- files failed
    assert "crashed" not in err and "died" not in err
    assert db_snapshot(db) == clean


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_commit_what_arrived(
    sig: signal.Signals, gen_corpus: Path, clean: dict[str, object], tmp_path: Path
) -> None:
    db = tmp_path / "i.db"
    proc = start(gen_corpus, db)
    wait_until(proc, lambda: committed(db) >= total_files(gen_corpus) * 0.3)
    os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole foreground process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: ")
    assert "Traceback" not in err
    assert_consistent(db, clean)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    assert conn.execute("SELECT count(*) FROM jobs WHERE state = 'in_progress'").fetchone() == (0,)
    conn.close()
    rerun_matches_clean(gen_corpus, db, clean)


def test_a_file_in_progress_when_three_runs_died_is_a_suspect_not_a_fourth_death(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document that ends every run (a machine-killing file) must not stop
    every nightly run forever: the jobs table counts the runs that died while
    it was in progress, and after SUSPECT_AFTER of them it becomes an error
    record with a one-line reason instead of being tried again."""
    from indexer.plan import SUSPECT_AFTER

    monkeypatch.setenv("INDEXER_FAULTS", "1")
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"note{i}.txt").write_text(f"an innocent note number {i}")
    poison = docs / "poison-fault-hang.txt"
    poison.write_text("this one never finishes\n" * 10_000)  # over --small-file-kb: a task alone
    db = tmp_path / "i.db"

    def poison_state() -> tuple[str, int, int] | None:
        """The poison's job: its state, attempts and the run that last started it."""
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            try:
                row = conn.execute(
                    "SELECT state, attempts, run_id FROM jobs WHERE path = ?", (str(poison),)
                ).fetchone()
                return None if row is None else (row[0], row[1], row[2])
            finally:
                conn.close()
        except sqlite3.Error:
            return None

    for death in range(SUSPECT_AFTER):
        proc = start(docs, db, "--workers", "2")
        this_run = ("in_progress", death, death + 1)  # started by this run, the deaths so far
        wait_until(proc, lambda s=this_run: committed(db) >= 4 and poison_state() == s)
        os.killpg(proc.pid, signal.SIGKILL)  # the run dies with the poison in progress
        assert_all_gone(proc)
    proc = start(docs, db, "--workers", "2")
    _, err = proc.communicate(timeout=60)
    reason = f"suspected of ending the run: it was being indexed when {SUSPECT_AFTER} runs died"
    assert proc.returncode == 1, err
    assert f"{poison}: {reason}" in err.splitlines()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT path, reason FROM errors").fetchall() == [(str(poison), reason)]
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM documents WHERE status = 'ok'").fetchone() == (4,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    # not tried again until it changes (or --retry-errors)
    again = run_cli("index", docs, "--db", db)
    assert again.returncode == 1, again.stderr  # (it is still not indexed)
    assert "; 1 still failing (--retry-errors to retry)" in again.stderr
    assert "1 failed before (skipped)" in run_cli("index", docs, "--db", db, "--dry-run").stderr
