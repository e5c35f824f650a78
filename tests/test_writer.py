"""indexer/writer.py: the real writer process, its transactions and its deaths."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from indexer.errors import DatabaseError
from indexer.messages import Document, NewFile, PageRange, PlannedJob, Started, StorePlan
from indexer.writer import WriterHandle
from tests.conftest import REPO


def doc(path: str, pages: list[tuple[int, str]], **kw: object) -> Document:
    fields: dict[str, object] = {
        "kind": "pdf",
        "size": 10,
        "mtime_ns": 1,
        "sha256": "h-" + path,
        "status": None,
        "page_count": max((n for n, _ in pages), default=1),
        "pages": pages,
    }
    fields.update(kw)
    return Document(path=path, **fields)  # type: ignore[arg-type]


def rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_documents_pages_and_status(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)])
    w.start()
    w.send(doc("/a.pdf", [(1, "alpha"), (2, "beta")]))
    w.send(doc("/e.pdf", []))
    w.send(doc("/x.pdf", [], status="error", error="encrypted: a password is required"))
    stats = w.finish("ok", {})
    assert stats["documents"] == 3 and stats["pages"] == 2
    assert rows(db, "SELECT path, status, error FROM documents ORDER BY path") == [
        ("/a.pdf", "ok", None),
        ("/e.pdf", "empty", None),
        ("/x.pdf", "error", "encrypted: a password is required"),
    ]
    assert rows(db, "SELECT reason FROM errors") == [("encrypted: a password is required",)]
    # it ends without the interpreter's teardown, but only after closing the
    # index (which checkpoints and removes the WAL file)
    assert not w.process.is_alive() and w.process.exitcode == 0
    assert not Path(str(db) + "-wal").exists()


NEW = NewFile("pdf", 10, 1)  # a range of a document extracted whole: it streams


def part(path: str, first: int, last: int, new: NewFile | None = NEW) -> PageRange:
    return PageRange(
        path=path,
        first=first,
        last=last,
        pages=[(n, f"{path} page {n}") for n in range(first, last + 1)],
        new=new,
    )


def test_parts_are_published_in_page_order_with_the_doc(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)])
    w.start()
    w.send(part("/big.pdf", 3, 4))
    w.send(part("/big.pdf", 1, 2))
    w.send(doc("/big.pdf", [], page_count=4))
    w.finish("ok", {})
    assert rows(db, "SELECT page, text FROM pages ORDER BY id") == [
        (n, f"/big.pdf page {n}") for n in range(1, 5)
    ]
    assert rows(db, "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH 'big'") == [(4,)]
    assert rows(db, "SELECT status, pages, sha256 FROM documents") == [("ok", 4, "h-/big.pdf")]


def test_a_streaming_document_is_invisible_until_its_doc_and_others_wait(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)], batch_rows=1, batch_seconds=0.05)
    w.start()
    w.send(doc("/old.pdf", [(1, "first version")]))
    time.sleep(0.5)  # committed by time
    w.send(part("/old.pdf", 1, 2))  # a changed file: its ranges stream in
    w.send(part("/big.pdf", 1, 2))  # another chunked document: held
    w.send(doc("/small.txt", [(1, "small")], kind="txt"))  # waits
    w.send(part("/big.pdf", 3, 3))
    time.sleep(0.8)  # several batch periods: nothing may be committed now
    assert rows(db, "SELECT path FROM documents") == [("/old.pdf",)]
    assert rows(db, "SELECT text FROM pages") == [("first version",)]
    w.send(part("/old.pdf", 3, 3))
    w.send(doc("/old.pdf", [], page_count=3))
    w.send(doc("/big.pdf", [], page_count=3))
    w.finish("ok", {})
    assert rows(db, "SELECT path, status, pages FROM documents ORDER BY path") == [
        ("/big.pdf", "ok", 3),
        ("/old.pdf", "ok", 3),
        ("/small.txt", "ok", 1),
    ]
    assert rows(db, "SELECT text FROM pages WHERE doc_id = 1 ORDER BY id") == [
        (f"/old.pdf page {n}",) for n in (1, 2, 3)
    ]
    assert rows(db, "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH 'first'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH 'page'") == [(6,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.parametrize("how", ["finish", "parent dies"])
def test_a_run_that_stops_mid_stream_keeps_the_old_version_and_commits_the_rest(
    how: str, tmp_path: Path
) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)])
    w.start()
    w.send(doc("/old.pdf", [(1, "first version")]))
    w.finish("ok", {})
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        sys.path.insert(0, {str(REPO / "tests")!r})
        from indexer.messages import PlannedJob, StorePlan
        from indexer.writer import WriterHandle
        from test_writer import doc, part
        w = WriterHandle({str(db)!r}, ["/"], batch_seconds=0.05)
        w.start()
        w.send(StorePlan(["/"], [PlannedJob("/old.pdf", "changed", "pdf", 10, 2)]))
        w.send(part("/old.pdf", 1, 2))
        w.send(doc("/done.txt", [(1, "finished meanwhile")], kind="txt"))
        time.sleep(0.5)
        if {how!r} == "finish":
            w.finish("interrupted", {{}})
        else:
            os._exit(0)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the orphan commits, then exits
        if rows(db, "SELECT count(*) FROM documents WHERE path = '/done.txt'") == [(1,)]:
            break
        time.sleep(0.1)
    assert rows(db, "SELECT path, status FROM documents ORDER BY path") == [
        ("/done.txt", "ok"),
        ("/old.pdf", "ok"),
    ]
    assert rows(db, "SELECT text FROM pages ORDER BY id") == [
        ("first version",),
        ("finished meanwhile",),
    ]
    assert rows(db, "SELECT path FROM jobs") == [("/old.pdf",)]  # the next run redoes it
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_a_failed_range_leaves_a_gap_and_an_error_drops_the_stream(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)])
    w.start()
    w.send(part("/gap.pdf", 1, 2))
    w.send(part("/gap.pdf", 5, 6))  # 3-4 failed: 5-6 waits for its turn, then the doc
    failed = [(3, 4, "worker crashed (signal 11)")]
    w.send(doc("/gap.pdf", [], page_count=6, status="partial", failed_ranges=failed))
    w.send(part("/bad.pdf", 1, 2))
    w.send(doc("/bad.pdf", [], status="error", error="broken"))
    w.finish("ok", {})
    assert rows(db, "SELECT page FROM pages ORDER BY id") == [(1,), (2,), (5,), (6,)]
    assert rows(db, "SELECT path, status FROM documents ORDER BY path") == [
        ("/bad.pdf", "error"),
        ("/gap.pdf", "partial"),
    ]
    assert rows(db, "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH 'page'") == [(4,)]


def test_replacing_a_document_swaps_all_its_pages(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    for text in ("old words", "new words"):
        w = WriterHandle(str(db), [str(tmp_path)])
        w.start()
        w.send(doc("/a.txt", [(1, text)], kind="txt"))
        w.finish("ok", {})
    assert rows(db, "SELECT text FROM pages") == [("new words",)]
    assert rows(db, "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH 'old'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM documents") == [(1,)]


def test_pages_written_and_deleted_in_one_transaction_stay_in_step_with_fts(
    tmp_path: Path,
) -> None:
    """Pages are indexed once per transaction, not per document: a page
    written and then replaced or deleted before the commit is indexed first
    (the delete trigger takes it out of pages_fts, which must hold it)."""
    from indexer.messages import Delete

    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)], batch_rows=10**6, batch_seconds=60)
    w.start()
    w.send(doc("/a.txt", [(1, "first walrus")], kind="txt"))
    w.send(doc("/b.txt", [(1, "a lonely puffin")], kind="txt"))
    w.send(doc("/a.txt", [(1, "second narwhal")], kind="txt"))  # replaced, same transaction
    w.send(Delete(["/b.txt"]))
    w.send(doc("/c.pdf", [(1, "third beluga"), (2, "fourth orca")], page_count=3))
    w.send(doc("/c.pdf", [(2, "fifth seal")], mode="ranges", retried=[(2, 3)]))
    w.finish("ok", {})
    match = "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ?"
    for word, n in [("walrus", 0), ("puffin", 0), ("narwhal", 1), ("beluga", 1), ("orca", 0)]:
        assert rows(db, match, word) == [(n,)], word
    assert rows(db, match, "seal") == [(1,)]
    assert rows(db, "INSERT INTO pages_fts (pages_fts, rank) VALUES ('integrity-check', 1)") == []


def test_batches_commit_by_row_count(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)], batch_rows=10, batch_seconds=60)
    w.start()
    for i in range(20):
        w.send(doc(f"/d{i}.txt", [(1, f"text {i}")], kind="txt"))
    stats = w.finish("ok", {})
    assert stats["commits"] >= 4  # 20 docs x 2 rows / 10 rows per batch, plus run rows


def test_batches_commit_by_time_while_the_run_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)], batch_rows=10**6, batch_seconds=0.3)
    w.start()
    w.send(doc("/a.txt", [(1, "visible soon")], kind="txt"))
    deadline = time.monotonic() + 10
    while not rows(db, "SELECT count(*) FROM documents")[0][0]:
        assert time.monotonic() < deadline, "a batch was not committed by time"
        time.sleep(0.05)
    w.finish("ok", {})


def test_kill_9_mid_document_leaves_no_half_document(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)], batch_seconds=0.1)
    w.start()
    w.send(doc("/done.txt", [(1, "complete")], kind="txt"))
    w.send(part("/half.pdf", 1, 1))
    time.sleep(1.0)  # /done.txt was committed before /half.pdf began to stream
    os.kill(w.process.pid, signal.SIGKILL)
    w.process.join(5)
    assert rows(db, "SELECT path FROM documents") == [("/done.txt",)]
    assert rows(db, "SELECT text FROM pages") == [("complete",)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    with pytest.raises(Exception, match="writer process died"):
        w.send(doc("/late.txt", [(1, "late")], kind="txt"))
        w.check()


@pytest.mark.parametrize("mid_message", [False, True])
def test_writer_commits_and_exits_when_its_parent_dies(mid_message: bool, tmp_path: Path) -> None:
    """Also when the parent dies half-way through sending a message: the writer
    must not wait for the rest of it forever."""
    db = tmp_path / "i.db"
    script = textwrap.dedent(f"""
        import os, struct, sys
        sys.path.insert(0, {str(REPO)!r})
        from indexer.messages import Document
        from indexer.writer import WriterHandle
        w = WriterHandle({str(db)!r}, ["/"], batch_seconds=3600)
        w.start()
        print(w.process.pid, flush=True)
        w.send(Document(path="/orphan.txt", kind="txt", size=1, mtime_ns=1, sha256="h",
                        status=None, page_count=1, pages=[(1, "kept")]))
        import time; time.sleep(0.5)
        if {mid_message!r}:  # the length of a 100 kB message, and 7 bytes of it
            os.write(w.inbox._writer.fileno(), struct.pack("!i", 100_000) + b"partial")
        os._exit(0)   # the parent dies without finishing
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    writer_pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 15
    while psutil.pid_exists(writer_pid) and psutil.Process(writer_pid).status() != "zombie":
        assert time.monotonic() < deadline, "the orphaned writer did not exit"
        time.sleep(0.1)
    assert rows(db, "SELECT text FROM pages") == [("kept",)]


def test_unwritable_location_is_a_clear_fatal_error(tmp_path: Path) -> None:
    w = WriterHandle(str(tmp_path / "missing-dir" / "i.db"), [str(tmp_path)])
    with pytest.raises(DatabaseError, match="does not exist"):
        w.start()


def test_dead_runs_and_their_jobs_are_reset_at_start(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    w = WriterHandle(str(db), [str(tmp_path)], batch_seconds=0.05)
    w.start()
    w.send(StorePlan([str(tmp_path)], [PlannedJob(str(tmp_path / "a.pdf"), "new", "pdf", 1, 1)]))
    w.send(Started([str(tmp_path / "a.pdf")]))
    time.sleep(0.5)
    os.kill(w.process.pid, signal.SIGKILL)
    w.process.join(5)
    assert rows(db, "SELECT state FROM jobs") == [("in_progress",)]
    w2 = WriterHandle(str(db), [str(tmp_path)])
    w2.start()
    w2.finish("ok", {})
    assert rows(db, "SELECT state, attempts FROM jobs") == [("pending", 1)]
    assert rows(db, "SELECT status FROM runs ORDER BY id") == [("died",), ("ok",)]


def test_an_unexpected_writer_failure_is_reported_not_hidden(tmp_path: Path) -> None:
    w = WriterHandle(str(tmp_path / "i.db"), [str(tmp_path)])
    w.start()
    w.inbox.put(("no-such-message",))
    w.process.join(10)
    with pytest.raises(DatabaseError, match="writer failed"):
        w.check()


def test_the_queue_is_bounded_so_a_slow_writer_holds_the_main_process(tmp_path: Path) -> None:
    import threading

    w = WriterHandle(str(tmp_path / "i.db"), [str(tmp_path)], queue_size=2)
    w.start()
    os.kill(w.process.pid, signal.SIGSTOP)  # the writer "falls behind"
    try:
        sent = []

        def producer() -> None:
            for i in range(5):
                w.send(doc(f"/d{i}.txt", [(1, "x" * 1000)], kind="txt"))
                sent.append(i)

        t = threading.Thread(target=producer, daemon=True)
        t.start()
        time.sleep(1.5)
        assert len(sent) <= 3  # two queued, maybe one in the feeder's hands: then it blocks
    finally:
        os.kill(w.process.pid, signal.SIGCONT)
    t.join(30)
    assert sent == [0, 1, 2, 3, 4]
    assert w.finish("ok", {})["documents"] == 5
