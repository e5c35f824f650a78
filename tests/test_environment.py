"""What a user's machine does to a run: the crash table for the environment.

Each case prepares a tree of real documents (and indexes it first where the
case needs an index), does to it what a machine does (a file rewritten while
it is read, a disk that is not mounted, a folder that cannot be entered, a
link out of the roots, a FIFO, stored data another tool damaged, file names
that carry terminal escapes), runs the real command, and checks:

* the documented exit status and one clear line on stderr;
* ``PRAGMA integrity_check`` is ok, no ``-wal`` or ``-shm`` is left, no
  process of the run lives on, no ``indexer-results-*`` folder is left;
* what must not be lost is still in the index;
* the next run (with the machine mended) completes the index: it equals a
  fresh index of the same tree.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from indexer import store
from indexer.plan import UNMOUNTED
from indexer.work import CHANGED
from tests.conftest import (
    FIXTURES,
    REPO,
    as_ordinary_user,
    db_snapshot,
    run_cli,
    run_in_session,
    session_processes,
)
from tools.docgen import write_epub, write_long_pdf, write_looping_pdf


@dataclass
class Machine:
    """One case's world: the tree, the index, and what the run is started with."""

    root: Path
    db: Path
    tmp: Path  # the run's TMPDIR
    env: dict[str, str] = field(default_factory=dict)
    prefix: list[str] = field(default_factory=list)  # e.g. without root's capabilities

    def index(
        self, *args: str, timeout: float = 120, full: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``indexer index`` on the tree. ``full``: the -wal file may stay
        (the disk is full and it holds the committed part, or another program
        still has the index open)."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(self.tmp), **self.env}
        command = [*self.prefix, sys.executable, "-m", "indexer", "index", str(self.root)]
        sid, done = run_in_session([*command, "--db", str(self.db), *args], env, timeout)
        _assert_nothing_left(sid, self, wal=not full)
        return done

    def rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()


def _assert_nothing_left(sid: int, m: Machine, wal: bool = True) -> None:
    _assert_no_process_left(sid)
    assert not list(m.tmp.glob("indexer-results-*")), "a results folder was left behind"
    for suffix in ("-wal", "-shm") if wal else ():
        assert not Path(str(m.db) + suffix).exists(), f"{suffix} left behind"


def good_tree(root: Path) -> None:
    shutil.copytree(FIXTURES / "good", root)


def fresh_copy(m: Machine) -> dict[str, object]:
    """A clean index of the tree as it is now (the same paths), to compare with."""
    other = Machine(m.root, m.db.with_name("fresh.db"), m.tmp)
    proc = other.index()
    assert proc.returncode in (0, 1), proc.stderr
    snap = db_snapshot(other.db)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(other.db) + suffix).unlink(missing_ok=True)
    return snap


# --- the cases -----------------------------------------------------------------------
# prepare(m): the tree and the machine before the run that is checked;
# mend(m): the machine put right before the next run; kept(m): what the checked
# run must not have lost (asserted after it).


def _rewritten(m: Machine) -> None:
    good_tree(m.root)
    (m.root / "log-fault-rewrite.txt").write_text("a log that is written to while read\n")
    m.env["INDEXER_FAULTS"] = "1"


def _rewritten_pdf(m: Machine) -> None:
    m.root.mkdir()
    write_long_pdf(m.root / "long-fault-range-once-rewrite.pdf", 400)
    m.env["INDEXER_FAULTS"] = "1"


def _no_faults(m: Machine) -> None:
    m.env.pop("INDEXER_FAULTS", None)


def _mount_disk(m: Machine) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(m.root)], check=True)
    shutil.copytree(FIXTURES / "good", m.root, dirs_exist_ok=True)  # (copy2: same mtimes)


def _unmounted(m: Machine) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    m.root.mkdir()
    _mount_disk(m)
    assert m.index().returncode == 0
    subprocess.run(["umount", str(m.root)], check=True)  # the disk goes: an empty mount point


def _remounted(m: Machine) -> None:
    _mount_disk(m)  # (another tmpfs, so another device: this run purges nothing either)


def _emptied(m: Machine) -> None:
    good_tree(m.root)
    assert m.index().returncode == 0
    for f in m.root.iterdir():  # the user empties the folder: that is purged
        f.unlink()


def _locked(m: Machine) -> None:
    good_tree(m.root)
    (m.root / "locked").mkdir()
    shutil.copy(FIXTURES / "good" / "notes.txt", m.root / "locked" / "kept.txt")
    assert m.index().returncode == 0
    (m.root / "locked").chmod(0o644)  # names can be listed, files not examined
    m.prefix = as_ordinary_user()


def _unlocked(m: Machine) -> None:
    (m.root / "locked").chmod(0o755)


def _link_out(m: Machine) -> None:
    good_tree(m.root)
    secret = m.root.parent / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_text("root:the-secret-password-hash:19000:0:99999:7:::\n")
    os.symlink(secret, m.root / "shadow.txt")


def _fifo(m: Machine) -> None:
    good_tree(m.root)
    os.mkfifo(m.root / "pipe.pdf")  # nobody writes to it: opening it would block
    os.mkfifo(m.root / "pipe.txt")


def _damaged_ranges(m: Machine) -> None:
    m.root.mkdir()
    write_long_pdf(m.root / "book.pdf", 120)
    shutil.copy(FIXTURES / "good" / "field-guide.pdf", m.root / "guide.pdf")
    assert m.index().returncode == 0
    conn = sqlite3.connect(m.db)
    with conn:  # another tool's idea of failed ranges
        conn.execute(
            "UPDATE documents SET status = 'partial', failed_ranges = ? WHERE path LIKE ?",
            ('[[1, 999999999, "x"]]', "%book.pdf"),
        )
        conn.execute(
            "UPDATE documents SET status = 'partial', failed_ranges = ? WHERE path LIKE ?",
            ("not json", "%guide.pdf"),
        )
    conn.close()


ESC_NAME = "title\x1b]0;pwned\x07\x1b[2J.txt"
FORGED = "broken\n0 new, 0 changed, 0 moved, 0 deleted, 0 failed; all fine.pdf"


def _escapes(m: Machine) -> None:
    good_tree(m.root)
    (m.root / ESC_NAME).write_text("clear \x1b[2J the screen, ring \x07 the bell: escapeword\n")
    (m.root / FORGED).write_bytes(b"not a pdf at all")


@dataclass(frozen=True)
class Case:
    name: str
    prepare: Callable[[Machine], None]
    status: int  # exit status of the checked run
    line: Callable[[Machine], str] | None  # a whole line of its stderr
    mend: Callable[[Machine], None] = lambda m: None
    kept: Callable[[Machine], None] = lambda m: None
    args: tuple[str, ...] = ()  # for the checked run
    pattern: str | None = None  # a line of its stderr matches it (re.fullmatch)


def _still_indexed(*names: str) -> Callable[[Machine], None]:
    def kept(m: Machine) -> None:
        paths = {str(p) for (p,) in m.rows("SELECT path FROM documents WHERE status = 'ok'")}
        for name in names:
            assert str(m.root / name) in paths, f"{name} was purged"

    return kept


def _not_indexed(m: Machine) -> None:
    assert m.rows("SELECT path FROM documents WHERE path LIKE '%shadow%'") == []
    assert m.rows("SELECT count(*) FROM pages WHERE text LIKE '%secret-password%'") == [(0,)]


def _clipped(m: Machine) -> None:
    assert m.rows("SELECT status, pages FROM documents WHERE path LIKE '%book.pdf'") == [
        ("ok", 120)
    ]
    assert m.rows(
        "SELECT count(*) FROM pages p JOIN documents d ON d.id = p.doc_id "
        "WHERE d.path LIKE '%book.pdf'"
    ) == [(120,)]


def _no_raw_escapes(m: Machine) -> None:
    search = run_cli("search", "escapeword", "--db", m.db)
    assert search.returncode == 0, search.stderr
    assert "\x1b" not in search.stdout and "\x07" not in search.stdout
    assert "\\x1b]0;pwned\\x07" in search.stdout  # the name, escaped
    stats = run_cli("stats", "--errors", "--db", m.db)
    assert "broken\\x0a0 new" in stats.stdout and "\n0 new" not in stats.stdout


def _dropped(table: str) -> Callable[[Machine], None]:
    def prepare(m: Machine) -> None:
        good_tree(m.root)
        assert m.index().returncode == 0
        conn = sqlite3.connect(m.db)
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
        conn.close()

    return prepare


def _changed_by_sql(sql: str) -> Callable[[Machine], None]:
    def prepare(m: Machine) -> None:
        good_tree(m.root)
        assert m.index().returncode == 0
        conn = sqlite3.connect(m.db)
        with conn:
            assert conn.execute(sql).rowcount > 0
        conn.close()

    return prepare


VOYAGE = "(SELECT id FROM documents WHERE path LIKE '%voyage.epub')"


def _repaired_line(objects: str) -> Callable[[Machine], str]:
    return lambda m: f"repaired the index: re-created {objects}, dropped by another tool"


def _whole_again(m: Machine) -> None:
    """The run that repaired the index also completed it."""
    assert db_snapshot(m.db) == fresh_copy(m)


def _low_ulimit_v(m: Machine) -> None:
    good_tree(m.root)
    # a document that takes all the memory it can get, under a limit lower than
    # the worker's own cap: the reason names the limit the worker really had
    (m.root / "hog-fault-memory.txt").write_text("a document that takes all the memory\n")
    m.env["INDEXER_FAULTS"] = "1"
    m.prefix = ["prlimit", f"--as={300 * 2**20}"]  # ulimit -v: room for Python, little more


def _limit(option: str) -> Callable[[Machine], None]:
    def prepare(m: Machine) -> None:
        good_tree(m.root)
        m.prefix = ["prlimit", option]

    return prepare


def _stopped_worker(m: Machine) -> None:
    good_tree(m.root)
    (m.root / "stuck-fault-hang.txt").write_text("a worker that stops on this one\n")
    m.env["INDEXER_FAULTS"] = "1"


def _files_that_lie(m: Machine) -> None:
    m.root.mkdir()
    for name in ("zeros.txt", "zeros.pdf", "zeros.epub", "zeros.html"):
        with open(m.root / name, "wb") as f:
            f.truncate(2 * 2**30)  # 2 GB of NUL bytes (sparse: no disk used)
    write_looping_pdf(m.root / "loop.pdf")
    chapters = [(f"Chapter {i}", f"the log of day {i}") for i in range(10_000)]
    write_epub(m.root / "long-voyage.epub", chapters)


def _told_what_they_are(m: Machine) -> None:
    rows = dict(m.rows("SELECT substr(path, length(?) + 2), error FROM documents", str(m.root)))
    assert rows["zeros.txt"] == rows["zeros.html"] == "text file larger than 256 MiB"
    assert rows["zeros.pdf"] == "not a PDF (the file is only NUL bytes)"
    assert rows["zeros.epub"] == "not an EPUB (the file is only NUL bytes)"
    assert "cyclic page references" in str(rows["loop.pdf"])
    assert rows["long-voyage.epub"] is None
    assert m.rows("SELECT count(*) FROM pages") == [(10_000,)]


def _stopped_range(m: Machine) -> None:
    m.root.mkdir()
    write_long_pdf(m.root / "long-fault-range-stop.pdf", 1200)
    m.env["INDEXER_FAULTS"] = "1"


AGAIN = re.escape(" (try 1 of 3: tried again on the next run)")

CASES = [
    Case(
        "a file rewritten while it is read",
        _rewritten,
        1,
        lambda m: f"{m.root / 'log-fault-rewrite.txt'}: {CHANGED}",
        mend=_no_faults,
    ),
    Case(
        "a chunked PDF rewritten while its ranges are read",
        _rewritten_pdf,
        1,
        lambda m: f"{m.root / 'long-fault-range-once-rewrite.pdf'}: {CHANGED}",
        mend=_no_faults,
        args=("--workers", "2"),  # one worker (a busy machine) reads it whole: no ranges
    ),
    Case(
        "the disk is not mounted: an empty root on another device",
        _unmounted,
        1,
        lambda m: f"{m.root}: {UNMOUNTED}",
        mend=_remounted,
        kept=_still_indexed("notes.txt", "voyage.epub"),
    ),
    Case(
        "a folder the user emptied",
        _emptied,
        0,
        None,
        pattern=r"0 new, 0 changed, 0 moved, 8 deleted, 0 failed; 0 pages in \d+\.\d s",
    ),
    Case(
        "a folder that can be listed but not entered",
        _locked,
        1,
        lambda m: f"{m.root / 'locked'}: permission denied (its entries cannot be examined)",
        mend=_unlocked,
        kept=_still_indexed("locked/kept.txt", "notes.txt"),
    ),
    Case("a link out of the roots", _link_out, 0, None, kept=_not_indexed),
    Case(
        "another tool deleted a document's pages: --repair",
        _changed_by_sql(f"DELETE FROM pages WHERE doc_id = {VOYAGE}"),
        0,
        lambda m: "repair: the full-text index is rebuilt from the pages",
        args=("--repair",),
        kept=_whole_again,
    ),
    Case(
        "another tool rewrote a document's text: --reindex",
        _changed_by_sql(f"UPDATE pages SET text = 'scribbled over' WHERE doc_id = {VOYAGE}"),
        0,
        None,
        args=("--reindex",),
        kept=_whole_again,
    ),
    Case(
        "a low address-space limit (ulimit -v)",
        _low_ulimit_v,
        1,
        None,
        mend=_no_faults,
        # under the 300 MiB limit, not the worker's own cap (a share of the RAM)
        pattern=r".*/hog-fault-memory\.txt: out of memory \(worker limit [12]?\d{1,2} MiB\)"
        + AGAIN,
    ),
    Case(
        "an address-space limit too low for any process (ulimit -v 120000)",
        _limit(f"--as={120_000 * 1024}"),
        2,
        lambda m: (
            "error: cannot start the writer and worker processes: the address-space limit "
            "is 117 MiB (ulimit -v), a run needs at least 160 MiB"
        ),
    ),
    Case(
        "too few file descriptors (ulimit -n 24)",
        _limit("--nofile=24"),
        2,
        lambda m: (
            "error: cannot start 2 worker process(es): the limit of open files is 24 "
            "(ulimit -n), a run needs about 36"
        ),
        args=("--workers", "2"),
    ),
    Case(
        "a low soft limit of file descriptors, a higher hard one (ulimit -Sn 24)",
        _limit("--nofile=24:4096"),
        0,
        None,
        args=("--workers", "2"),
    ),
    Case(
        "a worker that stops past its deadline",
        _stopped_worker,
        1,
        None,
        mend=_no_faults,
        args=("--timeout", "1"),
        pattern=r".*/stuck-fault-hang\.txt: timed out after 1 s" + AGAIN,
    ),
    Case(
        "a chunked PDF whose worker is stopped (SIGSTOP) on a long range",
        _stopped_range,
        1,
        None,
        mend=_no_faults,
        args=("--timeout", "1", "--workers", "2"),
        pattern=r".*/long-fault-range-stop\.pdf: partly indexed: "
        r".*: timed out: no page read for 1 s.*",
    ),
    Case(
        "2 GB of NUL bytes under each document name, a looping page tree, 10,000 chapters",
        _files_that_lie,
        1,
        lambda m: f"{m.root / 'zeros.pdf'}: not a PDF (the file is only NUL bytes)",
        kept=_told_what_they_are,
    ),
    Case("another tool dropped jobs", _dropped("jobs"), 0, _repaired_line("jobs")),
    Case(
        "another tool dropped pages_fts",
        _dropped("pages_fts"),
        0,
        _repaired_line("pages_fts"),
        kept=_whole_again,
    ),
    Case(
        "another tool dropped pages",
        _dropped("pages"),
        0,
        _repaired_line("pages, pages_doc, pages_ad, pages_au"),
        kept=_whole_again,
    ),
    Case("FIFOs with document names", _fifo, 0, None),
    Case("failed ranges another tool wrote", _damaged_ranges, 0, None, kept=_clipped),
    Case(
        "terminal escapes and newlines in names and text",
        _escapes,
        1,
        lambda m: (
            f"{m.root}/broken\\x0a0 new, 0 changed, 0 moved, 0 deleted, 0 failed; all fine.pdf: "
            "not a PDF, or a badly damaged one (no %PDF header)"
        ),
        kept=_no_raw_escapes,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_environment(case: Case, tmp_path: Path) -> None:
    m = Machine(tmp_path / "docs", tmp_path / "index.db", tmp_path / "tmp")
    m.tmp.mkdir()
    try:
        _run_case(case, m)
    finally:
        if os.path.ismount(m.root):
            subprocess.run(["umount", "-l", str(m.root)], check=False)


def _run_case(case: Case, m: Machine) -> None:
    case.prepare(m)
    proc = m.index(*case.args)
    assert proc.returncode == case.status, proc.stderr
    if case.line is not None:
        assert case.line(m) in proc.stderr.splitlines(), proc.stderr
    if case.pattern is not None:
        assert any(re.fullmatch(case.pattern, x) for x in proc.stderr.splitlines()), proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected error" not in proc.stderr
    assert m.rows("PRAGMA integrity_check") == [("ok",)]
    case.kept(m)
    case.mend(m)
    m.prefix = []
    again = m.index()
    assert again.returncode in (0, 1), again.stderr
    assert db_snapshot(m.db) == fresh_copy(m)


def test_stats_on_an_index_another_tool_damaged_says_so_in_one_line(tmp_path: Path) -> None:
    m = Machine(tmp_path / "docs", tmp_path / "index.db", tmp_path)
    _dropped("jobs")(m)
    proc = run_cli("stats", "--db", m.db)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: cannot read {m.db}: the index was changed by another tool (no such table: jobs)",
        "hint: an `indexer index` run repairs it",
    ]


def test_an_index_on_read_only_media_can_be_searched(tmp_path: Path) -> None:
    m = Machine(tmp_path / "docs", tmp_path / "media" / "index.db", tmp_path)
    m.db.parent.mkdir()
    good_tree(m.root)
    assert m.index().returncode == 0
    m.db.chmod(0o444)
    m.db.parent.chmod(0o555)  # a DVD, a read-only share: no -shm can be made beside it
    try:
        hits = run_cli("search", "mizzen", "--db", m.db, prefix=as_ordinary_user())
        stats = run_cli("stats", "--db", m.db, prefix=as_ordinary_user())
    finally:
        m.db.parent.chmod(0o755)
    assert hits.returncode == 0, hits.stderr
    assert hits.stdout.startswith(f"{m.root / 'voyage.epub'}:3: ")
    assert stats.returncode == 0 and stats.stdout.startswith("8 documents: 8 ok")
    assert not [p for p in m.db.parent.iterdir() if p.name.endswith(("-wal", "-shm"))]


def test_a_locale_that_is_not_utf8(tmp_path: Path) -> None:
    """LC_ALL=C with Python's UTF-8 mode and locale coercion off: the command
    line's bytes arrive as surrogates and stdout is ASCII."""
    m = Machine(tmp_path / "docs", tmp_path / "index.db", tmp_path)
    good_tree(m.root)
    assert m.index().returncode == 0
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    proc = run_cli("search", "café", "--db", m.db, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"{m.root / 'latin1.txt'}:1: Le [caf\\xe9] du port" in proc.stdout


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` for the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_disk_with_no_room_at_all(tmp_path: Path) -> None:
    with small_disk(tmp_path / "full", "1m") as full:
        filler = full / "filler"
        with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:  # until every byte is taken
                f.write(b"x" * 4096)
        m = Machine(tmp_path / "docs", full / "index.db", tmp_path)
        good_tree(m.root)
        proc = m.index()
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [
            f"error: cannot write the index {m.db}: the disk is full"
        ]
        filler.unlink()
        assert m.index().returncode == 0
        assert db_snapshot(m.db) == fresh_copy(m)


def test_the_disk_fills_up_under_the_index(tmp_path: Path) -> None:
    """A small tmpfs under the index: the run stops with one line and exit 2,
    what it committed is valid and searchable, and once there is room the next
    run completes the index."""
    from tools.docgen import write_corpus

    with small_disk(tmp_path / "full", "1m") as full:
        m = Machine(tmp_path / "docs", full / "index.db", tmp_path / "tmp")
        m.tmp.mkdir()
        write_corpus(m.root, n_pdfs=60, pages=(20, 40), n_epubs=0, n_texts=10, seed=5)
        proc = m.index("--batch-seconds", "0.1", full=True)
        assert proc.returncode == 2, proc.stderr
        assert (
            proc.stderr.splitlines()[-1]
            == f"error: cannot write the index {m.db}: the disk is full"
        )
        assert m.rows("PRAGMA integrity_check") == [("ok",)]
        committed = m.rows("SELECT count(*) FROM documents")[0][0]
        assert m.rows("SELECT count(*) FROM jobs")[0][0] > 0  # the rest is still planned
        search = run_cli("search", "the", "--db", m.db)
        assert search.returncode in (0, 1) and search.stderr == "", search.stderr
        subprocess.run(["mount", "-o", "remount,size=64m", str(full)], check=True)
        again = m.index()
        assert again.returncode == 0, again.stderr
        assert m.rows("SELECT count(*) FROM documents")[0][0] == 70 > committed
        assert m.rows("SELECT count(*) FROM jobs") == [(0,)]
        assert db_snapshot(m.db) == fresh_copy(m)


NO_TEMP = """set -e
W=$1; shift
# every temporary folder read-only in place (what is in them stays visible:
# the interpreter or the checkout may live there), but for the index's folder
for d in /tmp /var/tmp /usr/tmp; do
    if [ -d "$d" ]; then mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; fi
done
mount --bind "$W" "$W"
mount -o remount,bind,rw "$W"
cd "$(dirname "$W")/ro"
exec env -u TMPDIR "$@"
"""


def test_no_writable_temporary_folder_anywhere(tmp_path: Path) -> None:
    """/tmp, /var/tmp and the working folder read-only, TMPDIR unset (in a
    mount namespace of its own): one line and a hint, no traceback, exit 2."""
    if os.geteuid() != 0:
        pytest.skip("a mount namespace with read-only folders needs root (CI runs as root)")
    for name in ("ro", "w"):
        (tmp_path / name).mkdir()
    good_tree(tmp_path / "docs")
    script = tmp_path / "no-temp.sh"
    script.write_text(NO_TEMP)
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", str(script), str(tmp_path / "w")]
        + [sys.executable, "-m", "indexer", "index", str(tmp_path / "docs")]
        + ["--db", str(tmp_path / "w" / "index.db")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: cannot start the worker processes: no writable temporary folder",
        "hint: set TMPDIR to a folder you can write to",
    ]


def test_what_a_killed_run_left_in_the_temporary_folder_goes_with_the_next_run(
    tmp_path: Path,
) -> None:
    """kill -9 of the whole run leaves its results folder and multiprocessing's
    folder (the fork server's socket) behind; they carry the pid, and the next
    run removes them."""
    short = Path(tempfile.mkdtemp(prefix="ix", dir="/tmp"))  # room for a socket path in it
    m = Machine(tmp_path / "docs", tmp_path / "index.db", short)
    good_tree(m.root)
    (m.root / "stuck-fault-hang.txt").write_text("keeps the run busy\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(m.tmp), "INDEXER_FAULTS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer", "index", str(m.root), "--db", str(m.db)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not (list(m.tmp.glob("indexer-results-*")) and list(m.tmp.glob("ixmp-*"))):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()[1]
        time.sleep(0.05)
    left = sorted(p.name.rsplit("-", 1)[0] for p in m.tmp.iterdir())
    assert left == [f"indexer-results-{proc.pid}", f"ixmp-{proc.pid}"]
    os.killpg(proc.pid, 9)
    proc.wait(30)
    _assert_no_process_left(proc.pid)
    assert sorted(p.name.rsplit("-", 1)[0] for p in m.tmp.iterdir()) == left  # left behind
    (m.root / "stuck-fault-hang.txt").unlink()
    try:
        assert m.index().returncode == 0  # (it checks that nothing is left)
        assert list(m.tmp.iterdir()) == []
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _assert_no_process_left(sid: int) -> None:
    deadline = time.monotonic() + 15
    while left := session_processes(sid):
        assert time.monotonic() < deadline, f"processes of the run live on: {left}"
        time.sleep(0.1)


def test_another_program_holds_a_write_transaction_on_the_index(tmp_path: Path) -> None:
    """A sqlite3 shell with an open write transaction: searches go on (WAL),
    the run says it waits, waits for the busy timeout, then says so in one
    line with a hint;
    once the other program is done, the next run completes the index."""
    m = Machine(tmp_path / "docs", tmp_path / "index.db", tmp_path)
    good_tree(m.root)
    assert m.index().returncode == 0
    (m.root / "later.txt").write_text("written while another program held the index\n")
    other = sqlite3.connect(m.db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO scan_errors VALUES ('/x', 'held', 'now')")
    try:
        hits = run_cli("search", "mizzen", "--db", m.db)
        assert hits.returncode == 0, hits.stderr
        proc = m.index(full=True)  # (the other program's connection keeps the -wal)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"waiting for the index {m.db}: another program may be writing to it (for up to 10 s)",
        f"error: cannot write the index {m.db}: another program is writing to it (waited 10 s)",
        "hint: close that program (a sqlite3 shell, a database browser) or run again later",
    ], proc.stderr
    assert m.index().returncode == 0
    assert db_snapshot(m.db) == fresh_copy(m)


def test_the_index_is_created_with_the_users_umask(tmp_path: Path) -> None:
    m = Machine(tmp_path / "docs", tmp_path / "private" / "index.db", tmp_path)
    m.db.parent.mkdir()
    good_tree(m.root)
    m.prefix = ["sh", "-c", 'umask 077; exec "$0" "$@"']
    assert m.index().returncode == 0
    for f in m.db.parent.iterdir():
        assert f.stat().st_mode & 0o077 == 0, f"{f.name} is readable by others"


def test_no_home_and_closed_standard_streams(tmp_path: Path) -> None:
    """Started by cron or a service manager: no HOME, and stdin, stdout and
    stderr closed. The run works, and the index is whole."""
    root = tmp_path / "docs"
    good_tree(root)
    db = tmp_path / "i.db"
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    env["PYTHONPATH"] = str(REPO)
    command = f"exec {sys.executable} -m indexer index {root} --db {db} <&- >&- 2>&-"
    proc = subprocess.run(["sh", "-c", command], env=env, timeout=120)
    assert proc.returncode == 0
    assert db_snapshot(db) == fresh_copy(Machine(root, db, tmp_path))
    found = run_cli("search", "sextant", "--db", db, env={"HOME": ""})
    assert found.returncode == 0 and found.stdout, found.stderr


def test_a_read_only_current_folder(tmp_path: Path) -> None:
    """The default index (index.db in the current folder) cannot be made
    there: one line that says so and how to choose another, exit 2."""
    root = tmp_path / "docs"
    good_tree(root)
    here = tmp_path / "here"
    here.mkdir()
    here.chmod(0o555)
    proc = run_cli("index", root, cwd=here, prefix=as_ordinary_user())
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: cannot write the index {here / 'index.db'}: its folder {here} is not writable",
        "hint: choose an index file in a folder you can write to: --db FILE",
    ]
    db = tmp_path / "elsewhere.db"
    assert run_cli("index", root, "--db", db, cwd=here, prefix=as_ordinary_user()).returncode == 0
    assert run_cli("search", "sextant", "--db", db, cwd=here).returncode == 0


def _made_by_another_version(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()


def _truncated(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])


def _replaced_by_a_directory(db: Path) -> None:
    db.unlink()
    db.mkdir()


INDEX_FILES = [
    # (what, how the index file is spoiled, the one line index and search print)
    (
        "a directory",
        _replaced_by_a_directory,
        "error: cannot write the index {db}: it is a directory, not an index file",
        "error: {db} is a directory, not an index file",
    ),
    (
        "random bytes",
        lambda db: db.write_bytes(os.urandom(5000)),
        "error: {db} is not an SQLite database",
        "error: {db} is not an SQLite database",
    ),
    (
        "a truncated copy",
        _truncated,
        "error: cannot write the index {db}: the file is damaged (truncated or overwritten: "
        "database disk image is malformed)",
        "error: cannot read {db}: the file is damaged (truncated or overwritten: "
        "database disk image is malformed)",
    ),
    (
        "a newer version's",
        _made_by_another_version,
        "error: {db} was written by a newer indexer (schema 99, this one knows {version})",
        "error: {db} was written by a newer indexer (schema 99, this one knows {version})",
    ),
]


@pytest.mark.parametrize(
    ("spoil", "index_line", "search_line"),
    [case[1:] for case in INDEX_FILES],
    ids=[case[0] for case in INDEX_FILES],
)
def test_an_index_file_that_is_not_an_index(
    spoil: Callable[[Path], None], index_line: str, search_line: str, tmp_path: Path
) -> None:
    """Whatever took the index file's place: one line from `index` and from
    `search`, exit 2, and the file is left as it is (nothing overwritten)."""
    m = Machine(tmp_path / "docs", tmp_path / "index.db", tmp_path)
    good_tree(m.root)
    assert m.index().returncode == 0
    for suffix in ("-wal", "-shm"):
        Path(str(m.db) + suffix).unlink(missing_ok=True)
    spoil(m.db)
    before = m.db.read_bytes() if m.db.is_file() else None
    proc = m.index()
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == index_line.format(
        db=m.db, version=store.SCHEMA_VERSION
    ), proc.stderr
    found = run_cli("search", "sextant", "--db", m.db)
    assert found.returncode == 2
    assert found.stderr.splitlines()[0] == search_line.format(
        db=m.db, version=store.SCHEMA_VERSION
    ), found.stderr
    assert (m.db.read_bytes() if m.db.is_file() else None) == before


def test_an_index_that_cannot_be_written_is_still_searched(tmp_path: Path) -> None:
    """A read-only index file, or one in a read-only folder: `index` says
    which in one line, `search` reads it."""
    m = Machine(tmp_path / "docs", tmp_path / "ro" / "index.db", tmp_path)
    m.db.parent.mkdir()
    good_tree(m.root)
    assert m.index().returncode == 0
    m.prefix = as_ordinary_user()
    m.db.chmod(0o444)
    proc = m.index("-q")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: cannot write the index {m.db}: the file or its directory is read-only"
    ]
    m.db.chmod(0o644)
    m.db.parent.chmod(0o555)
    try:
        proc = m.index("-q")
        assert proc.returncode == 2
        # (its lock file is there from the first run, so the writer finds out)
        assert proc.stderr.splitlines() == [
            f"error: cannot write the index {m.db}: the file or its directory is read-only"
        ]
        found = run_cli("search", "sextant", "--db", m.db, prefix=as_ordinary_user())
        assert found.returncode == 0 and "notes.txt" in found.stdout, found.stderr
    finally:
        m.db.parent.chmod(0o755)


def test_rows_another_tool_added_are_searchable_after_repair(tmp_path: Path) -> None:
    """Another tool inserted page rows without indexing them (the FTS index
    out of sync): `indexer index --repair` rebuilds it, and they are found."""
    m = Machine(tmp_path / "docs", tmp_path / "index.db", tmp_path)
    good_tree(m.root)
    assert m.index().returncode == 0
    conn = sqlite3.connect(m.db)
    conn.execute(
        "INSERT INTO pages (doc_id, page, text) SELECT id, 99, 'a narwhal tusk' FROM documents "
        "WHERE path LIKE '%notes.txt'"
    )
    conn.commit()
    conn.close()
    assert run_cli("search", "narwhal", "--db", m.db).returncode == 1  # not indexed
    proc = m.index("--repair")
    assert proc.returncode == 0, proc.stderr
    assert "repair: the full-text index is rebuilt from the pages" in proc.stderr
    found = run_cli("search", "narwhal", "--db", m.db)
    assert found.returncode == 0 and f"{m.root / 'notes.txt'}:99:" in found.stdout
    assert m.rows("PRAGMA integrity_check") == [("ok",)]
