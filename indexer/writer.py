"""The single writer: one process owns the read-write SQLite connection.

Why this module exists: SQLite allows one writer at a time, and FTS5 inserts
are the slowest step on the write side, so exactly one process writes,
in batched transactions, while the workers extract. Nothing slow (no parsing,
no hashing) happens inside its transactions. This module holds the
transactions, the streamed document's savepoint, the process loop and the main
process's handle; the statements are in ``store.py``, the messages in
``messages.py``::

    main process ──(bounded queue: StorePlan, ScanErrors, Move, Touch, Delete,──▶ writer
                    Started, PageRange, Document, Finish)
    main process ◀──(outbox: Ready, Fatal, Done)──────────────────────────────── writer

Guarantees:

* A document is published in one transaction: its old pages are deleted and its
  new pages inserted together, so a search sees the old text or the new text,
  never both or neither.
* Page ranges of a chunked PDF (``PageRange`` messages) are written as they arrive,
  in page order (a range that arrives early waits for the ones before it),
  inside a savepoint of the open transaction, so the FTS5 work overlaps the
  extraction instead of coming after it. Nothing is committed while such a
  document is open: the commit that follows its ``Document`` message publishes it
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
* Paths are stored in their text form (``names.text_path``: a file name that is
  not UTF-8 cannot be stored as it is); every message is converted at the door
  (``in_text_form``).
* The writer ignores SIGINT and SIGTERM: on Ctrl-C the parent stops
  submitting and sends ``Finish``; the writer commits what has arrived.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from indexer import repair, store, store_write
from indexer.errors import DatabaseError, IndexerError, WriterDiedError
from indexer.extract.base import Meta, Recognised
from indexer.launch import cannot_start, prestart, when_gone, worker_context
from indexer.machine import own_usage
from indexer.messages import (
    Delete,
    Document,
    Done,
    Fatal,
    Finish,
    FromWriter,
    Move,
    NewFile,
    PageRange,
    Ready,
    RebuildFullText,
    RunStatus,
    ScanErrors,
    Started,
    StorePlan,
    Touch,
    ToWriter,
)
from indexer.names import container_of

# seconds the writer may take to open the index before main says it waits
SLOW_OPEN = 2.0


@dataclass
class _Stream:
    """The chunked document whose ranges are being written (see the header)."""

    path: str
    doc_id: int
    next_page: int = 1  # ranges from here on are written as soon as they arrive
    early: list[PageRange] = field(default_factory=list)  # arrived before their turn
    rows: int = 0
    images: set[int] = field(default_factory=set)  # of the ranges written
    labels: dict[int, str] = field(default_factory=dict)  # (for the pages without text)
    recognised: dict[int, Recognised] = field(default_factory=dict)  # pages OCR read


class _Writer:
    def __init__(self, conn: sqlite3.Connection, batch_rows: int, batch_seconds: float) -> None:
        self.conn = conn
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.in_tx = False
        self.tx_rows = 0
        self.tx_started = 0.0
        self.parts: dict[str, list[PageRange]] = defaultdict(list)  # held, not streamed
        self.stream: _Stream | None = None
        self.waiting: list[ToWriter] = []  # messages that arrived while streaming
        self.run_id = 0
        self.stats = {"documents": 0, "pages": 0, "commits": 0, "copies": 0}
        # pages with ids above this are written but not yet in pages_fts: they
        # are indexed in one statement before the transaction commits, and
        # before any page is deleted (the delete trigger takes a page out of
        # pages_fts, which must hold it then). None: nothing waits.
        self.unindexed_after: int | None = None
        # the same for new documents rows and documents_fts
        self.docs_unindexed_after: int | None = None

    # -- transactions --------------------------------------------------------
    def begin(self) -> None:
        if not self.in_tx:
            self.conn.execute("BEGIN IMMEDIATE")
            self.in_tx = True
            self.tx_rows = 0
            self.tx_started = time.monotonic()

    def commit(self) -> None:
        if self.in_tx:
            self.index_pending()
            self.conn.execute("COMMIT")
            self.in_tx = False
            self.stats["commits"] += 1

    def index_pending(self) -> None:
        """Index the pages and documents written since the last time (see
        ``unindexed_after``)."""
        if self.unindexed_after is not None:
            store_write.index_pages_after(self.conn, self.unindexed_after)
            self.unindexed_after = None
        if self.docs_unindexed_after is not None:
            store_write.index_documents_after(self.conn, self.docs_unindexed_after)
            self.docs_unindexed_after = None

    def _new_document(self) -> None:
        """A documents row is about to be inserted: it waits for index_pending."""
        if self.docs_unindexed_after is None:
            self.docs_unindexed_after = store_write.largest_document_id(self.conn)

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
        self.begin()
        self.run_id = store_write.start_run(self.conn, roots, pid)
        self.commit()
        return self.run_id

    def finish(self, msg: Finish) -> None:
        """Record the run (with the writer's own CPU and memory, which only it
        knows) and commit."""
        cpu, rss = own_usage()
        self.stats["cpu_ms"], self.stats["peak_rss_mib"] = round(cpu * 1000), rss
        summary = dict(msg.summary)
        summary["cpu"] = {**summary.get("cpu", {}), "writer": round(cpu, 3)}
        summary["peak_rss_mib"] = {**summary.get("peak_rss_mib", {}), "writer": rss}
        self.begin()
        store_write.finish_run(self.conn, self.run_id, msg.status, summary)
        self.commit()

    # -- messages ----------------------------------------------------------------
    def handle(self, msg: ToWriter) -> None:
        """Apply one message (already in text form) to the open transaction."""
        if isinstance(msg, PageRange):
            self.on_range(msg)
            return
        if self.stream is not None and not (
            isinstance(msg, Document) and msg.path == self.stream.path
        ):
            self.waiting.append(msg)
            return
        self.begin()
        c = self.conn
        match msg:
            case Document():
                self.on_document(msg)
            case StorePlan(roots, jobs):
                self.tx_rows += store_write.save_jobs(c, roots, jobs, self.run_id)
            case Started(paths):
                store_write.mark_started(c, paths, self.run_id)
            case Move(old, new, size, mtime_ns):
                self.index_pending()  # (it may delete an error record)
                self.tx_rows += store_write.move_document(c, old, new, size, mtime_ns)
            case Touch(path, size, mtime_ns):
                self.tx_rows += store_write.touch_document(c, path, size, mtime_ns)
            case Delete(paths):
                self.index_pending()
                self.tx_rows += store_write.delete_documents(c, paths)
            case ScanErrors(roots, errors):
                store_write.replace_scan_errors(c, roots, errors)
            case RebuildFullText():
                self.index_pending()
                store.rebuild_full_text(c)
            case Finish():
                raise TypeError("Finish is handled by the writer's loop")

    def on_range(self, part: PageRange) -> None:
        """A page range of a chunked PDF: streamed when its document is
        extracted whole (``part.new``), else held until its ``Document``."""
        if self.stream is None and part.new is not None:
            self._open_stream(part.path, part.new)
        st = self.stream
        if st is None or st.path != part.path:
            self.parts[part.path].append(part)
            return
        st.early.append(part)
        st.early.sort(key=lambda p: p.first)
        while st.early and st.early[0].first <= st.next_page:
            ready = st.early.pop(0)
            st.rows += self._write_pages(st.doc_id, ready.pages, ready.labels)
            st.images.update(ready.images)
            st.labels.update(ready.labels)
            st.recognised.update(ready.recognised)
            st.next_page = ready.last + 1

    def _open_stream(self, path: str, new: NewFile) -> None:
        self.commit()  # what came before is not held back by this document
        self.begin()
        self.conn.execute("SAVEPOINT stream")
        doc_id = store_write.document_id(self.conn, path)
        if doc_id is None:  # a placeholder row, completed by the Document message
            self._new_document()
            doc_id = store_write.insert_placeholder(
                self.conn, path, new.kind, new.size, new.mtime_ns
            )
        else:
            self.index_pending()
            self.tx_rows += store_write.delete_pages(self.conn, doc_id)
        # with the ranges that were held while another document streamed
        self.stream = _Stream(path, doc_id, early=self.parts.pop(path, []))

    def _write_pages(
        self,
        doc_id: int,
        pages: list[tuple[int, str]],
        labels: dict[int, str],
        lines: dict[int, int] | None = None,
    ) -> int:
        if not pages:
            return 0
        if self.unindexed_after is None:
            self.unindexed_after = store_write.largest_page_id(self.conn)
        written = store_write.write_pages(self.conn, doc_id, pages, labels, lines)
        self.tx_rows += written
        return written

    def on_document(self, d: Document) -> None:
        st = self.stream
        if st is not None and d.status == "error":  # nothing of it is kept
            self._drop_stream()
            st = None
        parts = self.parts.pop(d.path, [])
        if st is not None:
            parts.extend(st.early)  # after a failed range: the rest, in page order
        pages = [p for part in sorted(parts, key=lambda p: p.first) for p in part.pages]
        pages.extend(d.pages)
        labels = {n: label for part in parts for n, label in part.labels.items()}
        labels.update(d.labels)
        images = {n for part in parts for n in part.images} | set(d.images)
        recognised = {n: r for part in parts for n, r in part.recognised.items()}
        recognised.update(d.recognised)
        if st is not None:
            images |= st.images
            labels = {**st.labels, **labels}
            recognised = {**st.recognised, **recognised}
        pages.sort()
        if d.kind == "pdf" and d.mode == "replace" and container_of(d.path) is None:
            # a PDF's attachments as they were: those it still has follow it
            # (only PDFs have them: no lookup for another document)
            attached = store_write.attached_paths(self.conn, d.path)
            if attached:
                self.index_pending()
                self.tx_rows += store_write.delete_documents(self.conn, attached)
        doc_id = store_write.document_id(self.conn, d.path)
        status: str | None = d.status
        if status is None:
            kept = (
                doc_id is not None
                and (d.mode == "ranges" or st is not None)
                and store_write.has_pages(self.conn, doc_id)
            )
            status = "ok" if pages or kept else "empty"
        row = store.DocRow(
            doc_id or 0,
            d.path,
            d.kind,
            d.size,
            d.mtime_ns,
            d.sha256,
            status,
            d.page_count,
            d.error,
            d.failed_ranges,
        )
        meta = d.meta or Meta()
        keep_meta = d.mode == "ranges" and d.meta is None  # a retry that did not read page 1
        if meta.title is None and status != "error":
            # a title falls back to the file's name, which is then searchable too
            meta = replace(meta, title=os.path.splitext(os.path.basename(d.path))[0])
        copy = None  # identical bytes already indexed: this document shares their pages
        if status == "ok" and d.sha256 is not None and d.mode != "ranges":
            copy = store_write.copy_of(self.conn, d.sha256, doc_id)
        if copy is not None:
            pages = []
            if st is not None and st.rows:  # (streamed: written in this transaction)
                self.index_pending()
                self.tx_rows += store_write.delete_pages(self.conn, st.doc_id)
                st.rows = 0
            self.stats["copies"] += 1
        if doc_id is None:
            self._new_document()
            doc_id = store_write.insert_document(self.conn, row, meta, copy)
        else:
            if st is not None:
                pass  # its old pages went when it started streaming
            elif d.mode == "ranges":
                self.index_pending()
                self.tx_rows += store_write.delete_pages(self.conn, doc_id, d.retried)
            else:
                self.index_pending()
                self.tx_rows += store_write.delete_pages(self.conn, doc_id)
            self.index_pending()  # (documents_au takes the stored metadata out)
            store_write.update_document(self.conn, row, None if keep_meta else meta, copy)
        written = self._write_pages(doc_id, pages, labels, d.lines)
        if status != "error" and copy is None and d.page_count:
            # the ledger: why each page without text cannot be found
            whole = d.mode != "ranges"
            texts = {n for n, _ in pages} if whole and st is None else None
            spans = [(1, d.page_count)] if whole else d.retried
            gaps = store_write.write_gaps(
                self.conn, doc_id, spans, texts, d.failed_ranges, images, labels
            )
            self.tx_rows += gaps
            self.tx_rows += store_write.write_recognised(self.conn, doc_id, recognised)
        written += st.rows if st is not None else 0
        store_write.delete_job(self.conn, d.path)
        self.tx_rows += 1
        self.stats["documents"] += 1
        self.stats["pages"] += written
        if st is not None:
            self.conn.execute("RELEASE stream")
            self.stream = None
        self._replay()  # what waited while it streamed (usually nothing)


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
    tokenizer: str | None = None,
) -> None:
    """The writer's loop. ``main_pid``: the process that started it (recorded
    in the runs table); when it has died, the writer commits and returns."""
    # Ctrl-C and SIGTERM reach the whole process group; the parent turns them
    # into a Finish message, so the writer must outlive them to commit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    main_gone = _watch_main(main_pid)
    try:
        conn = store.open_for_writing(db_path, tokenizer)
        notes = repair.repair_schema(conn)
        w = _Writer(conn, batch_rows, batch_seconds)
        outbox.put(Ready(w.start_run(roots, main_pid), notes))
    except IndexerError as e:
        outbox.put(Fatal(e.message, e.hint))
        return
    except sqlite3.Error as e:
        outbox.put(_fatal_reply(db_path, e))
        return
    try:
        while True:
            try:
                if main_gone.is_set():
                    raise _MainGone
                _waiting.set()
                try:
                    msg: ToWriter = inbox.get(timeout=0.25)
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
            if isinstance(msg, Finish):
                w.settle()
                w.commit()
                w.finish(msg)
                outbox.put(Done(w.stats))
                return
            w.handle(msg.in_text_form())
            if w.due():
                w.commit()
    except sqlite3.Error as e:
        try:
            if w.in_tx:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        outbox.put(_fatal_reply(db_path, e))
    except Exception as e:  # a bug: say so, the committed batches are safe
        outbox.put(Fatal(f"the writer failed: {type(e).__name__}: {e}"))
    finally:
        conn.close()


def _fatal_reply(db_path: str, e: sqlite3.Error) -> Fatal:
    error = store.explain_error(Path(db_path), e, "write the index")
    return Fatal(error.message, error.hint)


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
        tokenizer: str | None = None,  # for a new index (store.TOKENIZERS)
    ) -> None:
        # Forked from the workers' fork server (launch.worker_context), which
        # has imported everything the writer needs: no Python start-up and
        # imports of its own, and no resource tracker of loky's.
        ctx = worker_context()
        self.inbox = ctx.Queue(maxsize=queue_size)
        self.outbox = ctx.Queue()
        self.process = ctx.Process(
            target=writer_main,
            args=(
                self.outbox,
                db_path,
                self.inbox,
                roots,
                batch_rows,
                batch_seconds,
                os.getpid(),
                tokenizer,
            ),
            name="indexer-writer",
            daemon=True,
        )
        self.db_path = db_path
        self.run_id = 0
        self.notes: list[str] = []  # what the writer repaired (Ready)
        # told once when the writer takes more than SLOW_OPEN seconds to open
        # the index (another program holding a write transaction on it)
        self.on_slow_open: Callable[[str], None] = lambda _line: None

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
            try:
                self.process.start()
            except OSError as e:
                raise cannot_start(e) from None

    def wait_ready(self, timeout: float = 120.0) -> int:
        """Wait until the writer has opened the index (starting it if need be)."""
        if self.run_id:
            return self.run_id
        self.spawn()
        match self._reply(timeout, slow=SLOW_OPEN):
            case Ready(run_id, notes):
                self.run_id, self.notes = run_id, notes
            case Fatal(message, hint):
                self.process.join(5)
                raise self._fatal(message, hint)
            case reply:
                raise WriterDiedError(f"the writer answered {reply!r} before it was ready")
        return self.run_id

    def _reply(self, timeout: float, slow: float | None = None) -> FromWriter:
        started = time.monotonic()
        deadline = started + timeout
        while True:
            try:
                reply: FromWriter = self.outbox.get(timeout=0.2)
                return reply
            except queue.Empty:
                if not self.process.is_alive():
                    raise self._died() from None
                if slow is not None and time.monotonic() > started + slow:
                    slow = None
                    self.on_slow_open(
                        f"waiting for the index {self.db_path}: another program may be writing "
                        f"to it (for up to {store.BUSY_TIMEOUT_MS // 1000} s)"
                    )
                if time.monotonic() > deadline:
                    raise WriterDiedError("the writer process did not answer in time") from None

    def _fatal(self, message: str, hint: str | None = None) -> DatabaseError:
        """The writer gave up: it reads no more messages, so the ones still
        queued must not hold up the interpreter's exit (multiprocessing joins
        the queue's feeder thread, blocked on a full pipe: the command hung
        forever after a disk-full error)."""
        self.inbox.cancel_join_thread()
        return DatabaseError(message, hint=hint)

    def _died(self) -> IndexerError:
        # Nobody reads the queue any more: do not let interpreter exit wait for
        # its feeder thread, blocked on a full pipe (it would hang forever).
        self.inbox.cancel_join_thread()
        try:
            reply = self.outbox.get_nowait()
            if isinstance(reply, Fatal):
                return self._fatal(reply.message, reply.hint)
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
            reply = self.outbox.get_nowait()
        except queue.Empty:
            return
        if isinstance(reply, Fatal):
            raise self._fatal(reply.message, reply.hint)
        if isinstance(reply, Ready):
            self.run_id, self.notes = reply.run_id, reply.notes

    def send(self, msg: ToWriter) -> None:
        """Put a message on the bounded queue; blocks while the writer is behind."""
        while True:
            try:
                self.inbox.put(msg, timeout=0.5)
                return
            except queue.Full:
                self.check()

    def finish(self, status: RunStatus, summary: dict[str, Any]) -> dict[str, int]:
        """Ask the writer to commit and stop, and wait until it has (the writer's
        statistics)."""
        self.ask_finish(status, summary)
        return self.wait_finished()

    def ask_finish(self, status: RunStatus, summary: dict[str, Any]) -> None:
        """The first half of ``finish``: the writer commits what it still has
        while the caller does something else (stops the workers)."""
        self.send(Finish(status, summary))

    def wait_finished(self) -> dict[str, int]:
        while True:
            reply = self._reply(timeout=24 * 3600)
            if not isinstance(reply, Ready):  # (a check() may not have seen it)
                break
        self.process.join(30)
        if isinstance(reply, Fatal):
            raise self._fatal(reply.message, reply.hint)
        return reply.stats

    def kill(self) -> None:
        self.inbox.cancel_join_thread()  # see _died
        if self.process.pid is None:  # never started
            return
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
