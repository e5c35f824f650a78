"""The single writer: one process owns the read-write SQLite connection.

Why this module exists: SQLite allows one writer at a time, and FTS5 inserts
are the slowest step on the write side, so exactly one process writes,
in batched transactions, while the workers extract. Nothing slow (no parsing,
no hashing) happens inside its transactions.

    main process ──(bounded queue: plan, started, part, doc, move, touch, delete, finish)──▶ writer
    main process ◀──(outbox: ready, fatal, done)───────────────────────────────────────────── writer

Guarantees:

* A document is published in one transaction: its old pages are deleted and its
  new pages inserted together, so a search sees the old text or the new text,
  never both or neither.
* Page ranges of a chunked PDF (``part`` messages) are written as they arrive,
  in page order (a range that arrives early waits for the ones before it),
  inside a savepoint of the open transaction, so the FTS5 work overlaps the
  extraction instead of coming after it. Nothing is committed while such a
  document is open: the commit that follows its ``doc`` message publishes it
  whole. Other messages that arrive meanwhile wait, so that if the run stops
  first (Ctrl-C, the parent dies) the savepoint alone is rolled back, they are
  applied and committed, and the document's job stays for the next run. One
  document streams at a time; the ranges of another are held until it closes.
* Commits happen every ``batch_rows`` written rows or ``batch_seconds``, and at
  the end. A transaction only ever holds whole documents, so a kill -9 or a
  power cut (WAL + synchronous=NORMAL) loses at most the last batch, and the
  jobs table still lists that work for the next run.
* If the main process dies, the writer commits the whole documents it holds and
  exits, even when the main process died half-way through sending a message
  (``_watch_main``).
* Paths are stored in their text form (``store.text_path``: a file name that is
  not UTF-8 cannot be stored as it is); every message is converted at the door.
* The writer ignores SIGINT and SIGTERM: on Ctrl-C the parent stops
  submitting and sends ``finish``; the writer commits what has arrived.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from indexer import store
from indexer.errors import DatabaseError, IndexerError, WriterDiedError
from indexer.launch import prestart, when_gone, worker_context


@dataclass
class DocMsg:
    """Closes a document: its metadata, outcome, and (for small documents) its pages."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str | None  # partial, error; None: the writer decides ok or empty
    page_count: int | None = None
    pages: list[tuple[int, str]] = field(default_factory=list)
    failed_ranges: list[tuple[int, int, str]] = field(default_factory=list)
    error: str | None = None
    # 'replace': the pages replace all the document's pages (new or changed file).
    # 'ranges': a retry of ``retried`` page ranges of a partial document.
    mode: str = "replace"
    retried: list[tuple[int, int]] = field(default_factory=list)


# A page range of a chunked PDF: first and last page, and the pages with text.
Part = tuple[int, int, list[tuple[int, str]]]


@dataclass
class _Stream:
    """The chunked document whose ranges are being written (see the header)."""

    path: str
    doc_id: int
    next_page: int = 1  # ranges from here on are written as soon as they arrive
    early: list[Part] = field(default_factory=list)  # arrived before their turn
    rows: int = 0


class _Writer:
    def __init__(self, conn: sqlite3.Connection, batch_rows: int, batch_seconds: float) -> None:
        self.conn = conn
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.in_tx = False
        self.tx_rows = 0
        self.tx_started = 0.0
        self.parts: dict[str, list[Part]] = defaultdict(list)  # held, not streamed
        self.stream: _Stream | None = None
        self.waiting: list[tuple[Any, ...]] = []  # messages that arrived while streaming
        self.run_id = 0
        self.stats = {"documents": 0, "pages": 0, "commits": 0}

    # -- transactions --------------------------------------------------------
    def begin(self) -> None:
        if not self.in_tx:
            self.conn.execute("BEGIN IMMEDIATE")
            self.in_tx = True
            self.tx_rows = 0
            self.tx_started = time.monotonic()

    def commit(self) -> None:
        if self.in_tx:
            self.conn.execute("COMMIT")
            self.in_tx = False
            self.stats["commits"] += 1

    def due(self) -> bool:
        return (
            self.in_tx
            and self.stream is None
            and (
                self.tx_rows >= self.batch_rows
                or time.monotonic() - self.tx_started >= self.batch_seconds
            )
        )

    def settle(self) -> None:
        """Before the last commit (finish, or the parent died): a document still
        streaming is rolled back to its savepoint, then what waited is applied."""
        self._drop_stream()
        self._replay()

    def _drop_stream(self) -> None:
        if self.stream is not None:
            self.conn.execute("ROLLBACK TO stream")
            self.conn.execute("RELEASE stream")
            self.parts.pop(self.stream.path, None)
            self.stream = None

    def _replay(self) -> None:
        waiting, self.waiting = self.waiting, []
        for msg in waiting:
            self.handle(msg)

    # -- start-up and the run row ----------------------------------------------
    def start_run(self, roots: list[str], pid: int) -> int:
        now = store.utcnow()
        self.begin()
        # The caller holds the lock, so a run still marked 'running' is dead, and
        # jobs it left in progress go back to pending (counted as an attempt).
        self.conn.execute(
            "UPDATE runs SET status = 'died', finished_at = ? WHERE status = 'running'", (now,)
        )
        self.conn.execute(
            "UPDATE jobs SET state = 'pending', attempts = attempts + 1 WHERE state = 'in_progress'"
        )
        cur = self.conn.execute(
            "INSERT INTO runs (pid, started_at, status, roots) VALUES (?, ?, 'running', ?)",
            (pid, now, json.dumps([store.text_path(r) for r in roots])),
        )
        self.run_id = int(cur.lastrowid or 0)
        self.commit()
        return self.run_id

    # -- messages ----------------------------------------------------------------
    def handle(self, msg: tuple[Any, ...]) -> None:
        msg = _in_text_form(msg)
        kind = msg[0]
        if kind == "part":
            self.on_part(*msg[1:])
            return
        if self.stream is not None and not (kind == "doc" and msg[1].path == self.stream.path):
            self.waiting.append(msg)
            return
        self.begin()
        getattr(self, "on_" + kind)(*msg[1:])

    def on_part(
        self,
        path: str,
        first: int,
        last: int,
        pages: list[tuple[int, str]],
        new: tuple[str, int, int] | None,
    ) -> None:
        """A page range of a chunked PDF. ``new`` (kind, size, mtime_ns) when the
        document is extracted whole (new or changed file), so it can stream;
        None for a retry of some ranges, which is held until its ``doc``."""
        part = (first, last, pages)
        if self.stream is None and new is not None:
            self._open_stream(path, new)
        st = self.stream
        if st is None or st.path != path:
            self.parts[path].append(part)
            return
        st.early.append(part)
        st.early.sort(key=lambda p: p[0])
        while st.early and st.early[0][0] <= st.next_page:
            first, last, pages = st.early.pop(0)
            st.rows += self._write_pages(st.doc_id, pages)
            st.next_page = last + 1

    def _open_stream(self, path: str, new: tuple[str, int, int]) -> None:
        self.commit()  # what came before is not held back by this document
        self.begin()
        self.conn.execute("SAVEPOINT stream")
        row = self.conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
        if row is None:  # a placeholder row, completed by the doc message
            kind, size, mtime_ns = new
            cur = self.conn.execute(
                "INSERT INTO documents (path, kind, size, mtime_ns, status, indexed_at) "
                "VALUES (?, ?, ?, ?, 'partial', ?)",
                (path, kind, size, mtime_ns, store.utcnow()),
            )
            doc_id = int(cur.lastrowid or 0)
        else:
            doc_id = int(row[0])
            cur = self.conn.execute("DELETE FROM pages WHERE doc_id = ?", (doc_id,))
            self.tx_rows += cur.rowcount
        # with the ranges that were held while another document streamed
        self.stream = _Stream(path, doc_id, early=self.parts.pop(path, []))

    def _write_pages(self, doc_id: int, pages: list[tuple[int, str]]) -> int:
        """Insert pages and index them (see schema.sql: no per-row insert trigger).
        New rows get ids above the current largest, which selects them for FTS5."""
        if not pages:
            return 0
        top = self.conn.execute("SELECT coalesce(max(id), 0) FROM pages").fetchone()[0]
        self.conn.executemany(
            "INSERT INTO pages (doc_id, page, text) VALUES (?, ?, ?)",
            [(doc_id, n, text) for n, text in pages],
        )
        self.conn.execute(
            "INSERT INTO pages_fts (rowid, text) SELECT id, text FROM pages WHERE id > ?", (top,)
        )
        self.tx_rows += len(pages)
        return len(pages)

    def on_plan(self, roots: list[str], jobs: list[tuple[str, str, str, int, int]]) -> None:
        """Store the plan: jobs under ``roots`` not in it are dropped, the others upserted."""
        planned = {j[0] for j in jobs}
        for root in roots:
            cond, args = store.under_root(root)
            stale = [
                r[0]
                for r in self.conn.execute(f"SELECT path FROM jobs WHERE {cond}", args)
                if r[0] not in planned
            ]
            self.conn.executemany("DELETE FROM jobs WHERE path = ?", [(p,) for p in stale])
        now = store.utcnow()
        self.conn.executemany(
            "INSERT INTO jobs (path, action, kind, size, mtime_ns, state, run_id, queued_at) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET action = excluded.action, kind = excluded.kind, "
            "size = excluded.size, mtime_ns = excluded.mtime_ns, state = 'pending', "
            "run_id = excluded.run_id",
            [(*j, self.run_id, now) for j in jobs],
        )
        self.tx_rows += len(jobs)

    def on_started(self, paths: list[str]) -> None:
        self.conn.executemany(
            "UPDATE jobs SET state = 'in_progress', run_id = ? WHERE path = ?",
            [(self.run_id, p) for p in paths],
        )

    def on_doc(self, d: DocMsg) -> None:
        st = self.stream
        if st is not None and d.status == "error":  # nothing of it is kept
            self._drop_stream()
            st = None
        parts = self.parts.pop(d.path, [])
        if st is not None:
            parts.extend(st.early)  # after a failed range: the rest, in page order
        pages = [p for _, _, part in sorted(parts, key=lambda p: p[0]) for p in part]
        pages.extend(d.pages)
        pages.sort()
        row = self.conn.execute("SELECT id FROM documents WHERE path = ?", (d.path,)).fetchone()
        status = d.status
        if status is None:
            kept = (
                row is not None
                and (d.mode == "ranges" or st is not None)
                and self.conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM pages WHERE doc_id = ?)", (row[0],)
                ).fetchone()[0]
            )
            status = "ok" if pages or kept else "empty"
        values = (
            d.kind,
            d.size,
            d.mtime_ns,
            d.sha256,
            status,
            d.page_count,
            d.error,
            json.dumps(d.failed_ranges) if d.failed_ranges else None,
            store.utcnow(),
        )
        if row is None:
            doc_id = int(
                self.conn.execute(
                    "INSERT INTO documents (kind, size, mtime_ns, sha256, status, pages, error, "
                    "failed_ranges, indexed_at, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, d.path),
                ).lastrowid
                or 0
            )
        else:
            doc_id = int(row[0])
            if st is not None:
                pass  # its old pages went when it started streaming
            elif d.mode == "ranges":
                for first, last in d.retried:
                    cur = self.conn.execute(
                        "DELETE FROM pages WHERE doc_id = ? AND page BETWEEN ? AND ?",
                        (doc_id, first, last),
                    )
                    self.tx_rows += cur.rowcount
            else:
                cur = self.conn.execute("DELETE FROM pages WHERE doc_id = ?", (doc_id,))
                self.tx_rows += cur.rowcount
            self.conn.execute(
                "UPDATE documents SET kind = ?, size = ?, mtime_ns = ?, sha256 = ?, status = ?, "
                "pages = ?, error = ?, failed_ranges = ?, indexed_at = ? WHERE path = ?",
                (*values, d.path),
            )
        written = self._write_pages(doc_id, pages) + (st.rows if st is not None else 0)
        self.conn.execute("DELETE FROM jobs WHERE path = ?", (d.path,))
        self.tx_rows += 1
        self.stats["documents"] += 1
        self.stats["pages"] += written
        if st is not None:
            self.conn.execute("RELEASE stream")
            self.stream = None
        self._replay()  # what waited while it streamed (usually nothing)

    def on_move(self, old: str, new: str, size: int, mtime_ns: int) -> None:
        self.conn.execute("DELETE FROM documents WHERE path = ? AND status = 'error'", (new,))
        self.conn.execute(
            "UPDATE documents SET path = ?, size = ?, mtime_ns = ? WHERE path = ?",
            (new, size, mtime_ns, old),
        )
        self.conn.executemany("DELETE FROM jobs WHERE path = ?", [(old,), (new,)])
        self.tx_rows += 1

    def on_touch(self, path: str, size: int, mtime_ns: int) -> None:
        """Same content, new stat: remember the stat, keep the text."""
        self.conn.execute(
            "UPDATE documents SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path)
        )
        self.conn.execute("DELETE FROM jobs WHERE path = ?", (path,))
        self.tx_rows += 1

    def on_delete(self, paths: list[str]) -> None:
        for path in paths:
            row = self.conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
            if row is not None:
                cur = self.conn.execute("DELETE FROM pages WHERE doc_id = ?", (row[0],))
                self.conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
                self.tx_rows += cur.rowcount + 1
            self.conn.execute("DELETE FROM jobs WHERE path = ?", (path,))

    def on_scan_errors(self, roots: list[str], errors: list[tuple[str, str]]) -> None:
        """Replace the directory errors recorded under ``roots`` with this scan's."""
        for root in roots:
            cond, args = store.under_root(root)
            self.conn.execute(f"DELETE FROM scan_errors WHERE {cond}", args)
        now = store.utcnow()
        self.conn.executemany(
            "INSERT OR REPLACE INTO scan_errors (path, reason, recorded_at) VALUES (?, ?, ?)",
            [(p, r, now) for p, r in errors],
        )

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        self.begin()
        # A clean stop (finished or Ctrl-C): unfinished jobs simply wait for the next run.
        self.conn.execute("UPDATE jobs SET state = 'pending' WHERE state = 'in_progress'")
        self.conn.execute(
            "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE id = ?",
            (status, store.utcnow(), json.dumps(summary), self.run_id),
        )
        self.commit()


def _in_text_form(msg: tuple[Any, ...]) -> tuple[Any, ...]:
    """``msg`` with its paths (and reasons, which may quote a path) in the form the
    index stores them: a file name that is not UTF-8 cannot be stored as it is
    (see ``store.text_path``). The values are unchanged unless a name is not UTF-8."""
    t = store.text_path
    kind = msg[0]
    if kind in ("part", "touch"):
        return (kind, t(msg[1]), *msg[2:])
    if kind == "doc":
        d: DocMsg = msg[1]
        return (
            kind,
            replace(
                d,
                path=t(d.path),
                error=None if d.error is None else t(d.error),
                failed_ranges=[(a, b, t(why)) for a, b, why in d.failed_ranges],
            ),
        )
    if kind == "plan":
        return (kind, msg[1], [(t(j[0]), *j[1:]) for j in msg[2]])
    if kind in ("started", "delete"):
        return (kind, [t(p) for p in msg[1]])
    if kind == "move":
        return (kind, t(msg[1]), t(msg[2]), *msg[3:])
    if kind == "scan_errors":
        return (kind, msg[1], [(t(p), t(why)) for p, why in msg[2]])
    return msg


def writer_main(outbox: Any, *args: Any) -> None:
    """Entry point of the writer process: ``_serve(outbox, *args)``. Once the
    index is closed and the replies on ``outbox`` are flushed, the process ends
    without the interpreter's teardown, which the main process would wait for at
    the end of every run (about 20 ms here). An exception still ends it the
    usual way, with its traceback."""
    _serve(outbox, *args)
    outbox.close()
    outbox.join_thread()
    os._exit(0)


def _serve(
    outbox: Any,
    db_path: str,
    inbox: Any,
    roots: list[str],
    batch_rows: int,
    batch_seconds: float,
    main_pid: int,
) -> None:
    """The writer's loop. ``main_pid``: the process that started it (recorded
    in the runs table); when it has died, the writer commits and returns."""
    # Ctrl-C and SIGTERM reach the whole process group; the parent turns them
    # into a "finish" message, so the writer must outlive them to commit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    main_gone = _watch_main(main_pid)
    try:
        conn = store.open_for_writing(db_path)
        w = _Writer(conn, batch_rows, batch_seconds)
        outbox.put(("ready", w.start_run(roots, main_pid)))
    except IndexerError as e:
        outbox.put(("fatal", e.message))
        return
    except sqlite3.Error as e:
        outbox.put(("fatal", f"cannot write the index {db_path}: {e}"))
        return
    try:
        while True:
            try:
                if main_gone.is_set():
                    raise _MainGone
                _waiting.set()
                try:
                    msg = inbox.get(timeout=0.25)
                finally:
                    _waiting.clear()
            except queue.Empty:
                if w.due():
                    w.commit()
                continue
            except _MainGone:
                w.settle()
                w.commit()  # whole documents only; the jobs table holds the rest
                return
            if msg[0] == "finish":
                w.settle()
                w.commit()
                w.finish(*msg[1:])
                outbox.put(("done", w.stats))
                return
            w.handle(msg)
            if w.due():
                w.commit()
    except sqlite3.Error as e:
        try:
            if w.in_tx:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        outbox.put(("fatal", store.explain_error(Path(db_path), e, "write the index").message))
    except Exception as e:  # a bug: say so, the committed batches are safe
        outbox.put(("fatal", f"the writer failed: {type(e).__name__}: {e}"))
    finally:
        conn.close()


class _MainGone(Exception):
    """The main process has died (see ``_watch_main``)."""


# Set while the writer's main thread waits for a message, the one place where
# it may be interrupted (_watch_main).
_waiting = threading.Event()


def _interrupt_wait(signum: int, frame: object) -> None:
    if _waiting.is_set():
        raise _MainGone


def _watch_main(main_pid: int) -> threading.Event:
    """An event set when the main process has died (checked every 0.5 s). The
    writer's wait for a message is then also interrupted (SIGUSR1, whose
    handler raises ``_MainGone`` only during that wait): a main process killed
    while sending a message leaves half of it in the queue's pipe, and the wait
    for the rest would never end, the index never committed and the process
    never gone."""
    gone = threading.Event()
    signal.signal(signal.SIGUSR1, _interrupt_wait)

    def interrupt() -> None:
        gone.set()
        os.kill(os.getpid(), signal.SIGUSR1)

    when_gone(main_pid, interrupt, every=0.5)
    return gone


class WriterHandle:
    """The main process's side: start the writer, send it messages, finish it."""

    def __init__(
        self,
        db_path: str,
        roots: list[str],
        batch_rows: int = 5000,
        batch_seconds: float = 2.0,
        queue_size: int = 64,
    ) -> None:
        # Forked from the workers' fork server (launch.worker_context), which
        # has imported everything the writer needs: no Python start-up and
        # imports of its own, and no resource tracker of loky's.
        ctx = worker_context()
        self.inbox = ctx.Queue(maxsize=queue_size)
        self.outbox = ctx.Queue()
        self.process = ctx.Process(
            target=writer_main,
            args=(self.outbox, db_path, self.inbox, roots, batch_rows, batch_seconds, os.getpid()),
            name="indexer-writer",
            daemon=True,
        )
        self.run_id = 0

    def start(self, timeout: float = 120.0) -> int:
        """Start the writer and wait until it has opened (or created) the index."""
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the writer process without waiting for it to open the index
        (see ``wait_ready``). It is forked by the fork server, so this waits
        for the server to be up, which it starts if need be."""
        if self.process.pid is None:
            prestart()  # (how the fork server must start: see there)
            self.process.start()

    def wait_ready(self, timeout: float = 120.0) -> int:
        """Wait until the writer has opened the index (starting it if need be)."""
        if self.run_id:
            return self.run_id
        self.spawn()
        kind, value = self._reply(timeout)
        if kind == "fatal":
            self.process.join(5)
            raise DatabaseError(value)
        self.run_id = int(value)
        return self.run_id

    def _reply(self, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.outbox.get(timeout=0.2)  # type: ignore[no-any-return]
            except queue.Empty:
                if not self.process.is_alive():
                    raise self._died() from None
                if time.monotonic() > deadline:
                    raise WriterDiedError("the writer process did not answer in time") from None

    def _died(self) -> IndexerError:
        # Nobody reads the queue any more: do not let interpreter exit wait for
        # its feeder thread, blocked on a full pipe (it would hang forever).
        self.inbox.cancel_join_thread()
        try:
            kind, value = self.outbox.get_nowait()
            if kind == "fatal":
                return DatabaseError(value)
        except queue.Empty:
            pass
        code = self.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        return WriterDiedError(
            f"the writer process died ({how}); what it committed is safe",
            hint="run the same command again to finish the job",
        )

    def check(self) -> None:
        """Raise if the writer reported a fatal error or died."""
        if not self.process.is_alive():
            raise self._died()
        try:
            kind, value = self.outbox.get_nowait()
        except queue.Empty:
            return
        if kind == "fatal":
            raise DatabaseError(value)
        if kind == "ready":
            self.run_id = int(value)

    def send(self, msg: tuple[Any, ...]) -> None:
        """Put a message on the bounded queue; blocks while the writer is behind."""
        while True:
            try:
                self.inbox.put(msg, timeout=0.5)
                return
            except queue.Full:
                self.check()

    def finish(self, status: str, summary: dict[str, Any]) -> dict[str, int]:
        """Ask the writer to commit and stop, and wait until it has (the writer's
        statistics)."""
        self.ask_finish(status, summary)
        return self.wait_finished()

    def ask_finish(self, status: str, summary: dict[str, Any]) -> None:
        """The first half of ``finish``: the writer commits what it still has
        while the caller does something else (stops the workers)."""
        self.send(("finish", status, summary))

    def wait_finished(self) -> dict[str, int]:
        kind, value = self._reply(timeout=24 * 3600)
        self.process.join(30)
        if kind == "fatal":
            raise DatabaseError(value)
        return value  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.inbox.cancel_join_thread()  # see _died
        if self.process.pid is None:  # never started
            return
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
