"""``indexer index`` as a library call: scan → plan → pool → writer → store.

Why this module exists: it only wires the stages together and keeps the
per-document bookkeeping that none of them owns: which page ranges of a
chunked PDF are still out, what failed, and when a document is complete and
can be published. ``index()`` is what the CLI calls; it is usable from Python.

Scheduling decisions made here (see the README, "How the pool works"):

* PDFs are first submitted with a page ``limit`` (the probe); when the result
  shows a longer document, the remaining pages are split into shrinking ranges
  (``chunk_ranges``) and queued as urgent tasks, so a massive PDF
  is spread over all workers instead of finishing alone at the end;
* tasks run largest first (by file size);
* files smaller than ``small_file_kb`` (other than EPUBs) are grouped, up to
  ``GROUP_FILES`` files or ``GROUP_BYTES`` per task, to keep inter-process
  overhead small.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexer import store
from indexer.config import Config
from indexer.errors import DatabaseError, ExitStatus
from indexer.launch import prestart
from indexer.lock import RunLock
from indexer.plan import Job, Plan, make_plan, sha256_file
from indexer.pool import Item, ItemResult, Outcome, Pool, Task
from indexer.progress import Reporter
from indexer.resources import (
    CpuSample,
    Governor,
    GovernorStats,
    Sizing,
    default_worker_memory,
    size_pool,
)
from indexer.scan import ScanResult, normalize_roots, scan
from indexer.writer import DocMsg, WriterHandle

GROUP_FILES = 32
GROUP_BYTES = 4 * 1024 * 1024
PAGE_EQUIVALENT_BYTES = 50_000  # EPUB/text bytes counted as one page for deadlines
MIN_CHUNK, TAIL_CHUNK, MAX_CHUNK = 50, 100, 1000
BIG_PDF_BYTES = 1024 * 1024
# Messages the writer's queue holds at most: when the writer falls behind, the
# main process blocks on it and submits nothing more, so the workers wait.
WRITER_QUEUE = 32


def probe_pages(workers: int) -> int:
    """Pages extracted by a PDF's first task, which also learns the page count;
    the rest of a longer document is split into ranges. Small, so the other
    workers are not idle long while it runs."""
    return 4 * MAX_CHUNK if workers <= 1 else MIN_CHUNK


def chunk_ranges(first: int, last: int, workers: int) -> list[tuple[int, int]]:
    """Page ranges for the rest (``first..last``) of a long PDF.

    With several workers the ranges shrink as the document goes (guided
    scheduling): each is what is left divided by twice the worker count, at
    most MAX_CHUNK and at least TAIL_CHUNK pages. The workers start on big
    ranges, and at the end they finish within a small range of each other,
    whatever made one of them slower. One worker gets equal ranges, at least two."""
    remaining = last - first + 1
    if workers <= 1:
        rounds = max(2, math.ceil(remaining / MAX_CHUNK))
        return _split(first, last, max(MIN_CHUNK, math.ceil(remaining / rounds)))
    ranges = []
    a = first
    while a <= last:
        size = math.ceil((last - a + 1) / (2 * workers))
        b = min(last, a + max(TAIL_CHUNK, min(MAX_CHUNK, size)) - 1)
        ranges.append((a, b))
        a = b + 1
    return ranges


@dataclass
class RunSummary:
    dry_run: bool = False
    new: int = 0
    changed: int = 0
    retried: int = 0
    moved: int = 0
    touched: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped_errors: int = 0
    resumed: int = 0
    indexed: int = 0  # documents published ok or empty
    empty: int = 0
    partial: int = 0
    failed: int = 0  # documents that became errors, plus unreadable directories
    pages: int = 0
    chunked: int = 0  # PDFs split into page ranges
    tasks: int = 0
    seconds: float = 0.0
    workers: int = 0
    sizing: str = ""
    interrupted: bool = False
    pool: dict[str, int] = field(default_factory=dict)
    governor: dict[str, Any] = field(default_factory=dict)
    planned_paths: dict[str, list[str]] = field(default_factory=dict)

    @property
    def exit_status(self) -> ExitStatus:
        if self.interrupted:
            return ExitStatus.INTERRUPTED
        if self.failed or self.partial:
            return ExitStatus.SOME_FAILED
        return ExitStatus.OK

    def line(self) -> str:
        if self.dry_run:
            return (
                f"dry run: {self.new} new, {self.changed} changed, {self.moved} moved, "
                f"{self.deleted} deleted, {self.unchanged + self.touched} unchanged, "
                f"{self.retried} to retry, {self.skipped_errors} failed before (skipped)"
            )
        if self.interrupted:
            todo = self.new + self.changed + self.retried
            done = self.indexed + self.failed + self.partial
            return (
                f"interrupted: {done} of {todo} files done, the next run does the rest; "
                f"{self.pages:,} pages in {self.seconds:.1f} s"
            )
        events = []
        if self.workers:
            events.append(f"{self.workers} worker{'s' if self.workers > 1 else ''}")
        if self.pool.get("crashes"):
            events.append(f"{self.pool['crashes']} worker crash(es)")
        if self.pool.get("timeouts"):
            events.append(f"{self.pool['timeouts']} timeout(s)")
        if self.governor.get("held_back"):
            events.append(f"governor held back {self.governor['held_back']}x")
        if self.unchanged or self.touched:
            events.append(f"{self.unchanged + self.touched:,} unchanged")
        return (
            f"{self.new} new, {self.changed} changed, {self.moved} moved, "
            f"{self.deleted} deleted, {self.failed} failed"
            + (f", {self.partial} partial" if self.partial else "")
            + (f", {self.retried} retried" if self.retried else "")
            + f"; {self.pages:,} pages in {self.seconds:.1f} s"
            + (f" ({', '.join(events)})" if events else "")
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("planned_paths", None)
        return d


@dataclass
class _Doc:
    job: Job
    sha256: str | None
    outstanding: int = 0
    page_count: int | None = None
    pages: list[tuple[int, str]] = field(default_factory=list)  # held until complete
    chunked: bool = False
    failed: list[tuple[int, int, str]] = field(default_factory=list)
    error: str | None = None
    page_rows: int = 0
    hashing: Future[str | None] | None = None  # a chunked PDF's hash, computed here


def index(
    paths: list[str],
    config: Config,
    *,
    dry_run: bool = False,
    wait: bool = False,
    reporter: Reporter | None = None,
    cpu: CpuSample | None = None,
) -> RunSummary:
    """Index ``paths`` into ``config.db``; see the module header. ``cpu``: a
    sample of the machine's CPU use started earlier (the CLI starts one first
    thing), so sizing the pool need not wait for one."""
    started = time.monotonic()
    reporter = reporter or Reporter.silent_reporter()
    roots = normalize_roots(paths)
    db = Path(config.db).absolute()

    if dry_run:
        conn = store.connect(db) if db.exists() else None
        try:
            plan = make_plan(scan(roots, config.hidden), conn, config.retry_errors)
        finally:
            if conn is not None:
                conn.close()
        summary = _plan_summary(plan, dry_run=True)
        summary.seconds = time.monotonic() - started
        return summary

    if not db.parent.is_dir():
        raise DatabaseError(f"cannot create the index {db}: directory {db.parent} does not exist")
    lock = RunLock(db).acquire(wait=wait)
    try:
        with _StopOnSignals() as stop:
            return _Run(roots, db, config, reporter, started, stop, cpu).run()
    finally:
        lock.release()


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM was received; raised only at safe points of the run."""


class _StopOnSignals:
    """SIGINT and SIGTERM set a flag that the run checks at safe points (each
    turn of the pool loop, each directory of the scan), so no lock inside a
    queue or the executor is ever abandoned half-way. A second signal gives up
    at once. Outside the main thread (library use) signals are left alone."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def check(self) -> None:
        if self.event.is_set():
            raise _Interrupted

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _plan_summary(plan: Plan, dry_run: bool) -> RunSummary:
    c = plan.counts()
    s = RunSummary(
        dry_run=dry_run,
        new=c["new"],
        changed=c["changed"],
        retried=c["retry"],
        moved=c["moved"],
        touched=c["touched"],
        deleted=c["deleted"],
        unchanged=c["unchanged"],
        skipped_errors=c["skipped_errors"],
        resumed=c["resumed"],
    )
    t = store.text_path  # as the index will hold them
    s.planned_paths = {
        "new": [t(j.entry.path) for j in plan.jobs if j.action == "new"],
        "changed": [t(j.entry.path) for j in plan.jobs if j.action == "changed"],
        "retry": [t(j.entry.path) for j in plan.jobs if j.action == "retry"],
        "moved": [f"{old} -> {t(e.path)}" for old, e in plan.moved],
        "deleted": list(plan.deleted),
    }
    return s


class _Run:
    def __init__(
        self,
        roots: list[str],
        db: Path,
        config: Config,
        reporter: Reporter,
        started: float,
        stop: _StopOnSignals | None = None,
        cpu: CpuSample | None = None,
    ) -> None:
        self.stop = stop or _StopOnSignals()
        self.cpu = cpu
        self.roots = roots
        self.db = db
        self.config = config
        self.reporter = reporter
        self.started = started
        self.docs: dict[str, _Doc] = {}
        self.summary = RunSummary()
        self.writer: WriterHandle | None = None
        self.pool: Pool | None = None
        self.governor: Governor | None = None
        self._hash_threads: ThreadPoolExecutor | None = None

    def _hasher(self) -> ThreadPoolExecutor:
        if self._hash_threads is None:
            self._hash_threads = ThreadPoolExecutor(1, thread_name_prefix="indexer-hash")
        return self._hash_threads

    # -- the run ------------------------------------------------------------------
    def run(self) -> RunSummary:
        cfg = self.config
        cpu = self.cpu or CpuSample()  # what the machine does while we start, scan and plan
        self.writer = WriterHandle(
            str(self.db), self.roots, cfg.batch_rows, cfg.batch_seconds, WRITER_QUEUE
        )
        status = "failed"
        sizing = None
        try:
            # The fork server that the writer and the workers are forked from
            # imports the extractors while the scan and the plan run: the
            # ``indexer`` command starts it first thing for an ``index`` run
            # (launch.start), a library call here for a new index
            # (launch.prestart does not wait). The writer is forked once the
            # plan is made; it is waited for once the first tasks run.
            existed = self.db.exists()
            if not existed:
                prestart()
            scanned = scan(self.roots, cfg.hidden, should_stop=self.stop.check)
            self.stop.check()
            plan = self._plan(scanned, existed)
            self.stop.check()
            self.summary = _plan_summary(plan, dry_run=False)
            self.writer.spawn()
            if plan.jobs:
                sizing = self._make_pool(size_pool(cfg.workers, cfg.memory_reserve, sample=cpu))
            if sizing is not None:
                self.summary.workers = sizing.workers
                self.summary.sizing = sizing.explain()
            # queued: the writer applies the plan once it has opened the index
            self._apply_plan(plan)
            if plan.jobs and sizing is not None:
                self._extract(plan, sizing.workers, sizing.reserve)
            self.writer.wait_ready()  # (returns at once when _extract has waited)
            status = "ok" if self.summary.exit_status == ExitStatus.OK else "some_failed"
        except (KeyboardInterrupt, _Interrupted):
            self.summary.interrupted = True
            status = "interrupted"
        except BaseException:
            self._stop_workers()
            self.writer.kill()
            raise
        self._stop_governor()
        self.summary.seconds = time.monotonic() - self.started
        try:
            # the writer commits its last batch while the workers stop
            self.writer.ask_finish(status, self.summary.to_dict())
            self._stop_workers()
            self.writer.wait_finished()
        except KeyboardInterrupt:
            self._stop_workers()
            self.writer.kill()
            self.summary.interrupted = True
        self.summary.seconds = time.monotonic() - self.started
        return self.summary

    def _stop_governor(self) -> None:
        """Stop the progress display and the governor (its figures go into the summary)."""
        self.reporter.stop()
        if self.governor is not None:
            self._governor_stats(self.governor.stop())
            self.governor = None

    def _stop_workers(self) -> None:
        self._stop_governor()
        if self.pool is not None:
            self.pool.close()
        if self._hash_threads is not None:
            self._hash_threads.shutdown(cancel_futures=True)

    def _plan(self, scanned: ScanResult, existed: bool) -> Plan:
        """The plan, read from the index while the writer starts (a new index
        has nothing to compare with; an old schema is upgraded first)."""
        assert self.writer is not None
        if not existed:
            return make_plan(scanned, None, self.config.retry_errors)
        try:
            conn = store.connect(self.db)
        except DatabaseError:
            self.writer.wait_ready()  # it upgrades the schema, or says what is wrong
            conn = store.connect(self.db)
        try:
            return make_plan(scanned, conn, self.config.retry_errors)
        finally:
            conn.close()

    def _governor_stats(self, g: GovernorStats) -> None:
        self.summary.governor = {
            "decisions": g.decisions,
            "held_back": g.held_back,
            "released": g.released,
            "min_allowed": g.min_allowed,
            "peak_worker_rss_mib": round(g.peak_worker_rss / 2**20),
        }

    def _send(self, msg: tuple[Any, ...]) -> None:
        assert self.writer is not None
        self.writer.send(msg)

    def _apply_plan(self, plan: Plan) -> None:
        rep = self.reporter
        self._send(
            (
                "plan",
                self.roots,
                [
                    (j.entry.path, j.action, j.entry.kind, j.entry.size, j.entry.mtime_ns)
                    for j in plan.jobs
                ],
            )
        )
        dir_roots = [r for r in self.roots if Path(r).is_dir()]
        self._send(("scan_errors", dir_roots, plan.scan_errors))
        for path, reason in plan.scan_errors:
            rep.error(path, reason)
        self.summary.failed += len(plan.scan_errors)
        for old, entry in plan.moved:
            rep.info(f"moved: {old} -> {entry.path}")
            self._send(("move", old, entry.path, entry.size, entry.mtime_ns))
        for entry in plan.touched:
            self._send(("touch", entry.path, entry.size, entry.mtime_ns))
        if plan.deleted:
            for path in plan.deleted:
                rep.info(f"deleted: {path}")
            self._send(("delete", plan.deleted))
        if plan.resumed:
            rep.info(f"resuming {plan.resumed} job(s) an interrupted run left unfinished")

    # -- extraction ----------------------------------------------------------------
    def _make_pool(self, sizing: Sizing) -> Sizing:
        """Create the pool and start its workers (they warm up meanwhile)."""
        cfg = self.config
        self.reporter.info(f"pool: {sizing.explain()}")
        self.pool = Pool(
            sizing.workers,
            epub_limit=cfg.epub_concurrency,
            timeout=cfg.timeout,
            worker_memory=cfg.worker_memory or default_worker_memory(),
            log=self.reporter.info,
        )
        self.pool.start()
        return sizing

    def _extract(self, plan: Plan, workers: int, reserve: int) -> None:
        rep = self.reporter
        pool = self.pool
        assert pool is not None
        self.governor = Governor(
            workers, reserve, on_decision=rep.info, running=lambda: len(pool.in_flight)
        ).start()
        pool.allowed = self.governor.allowed
        pool.on_submit = self._started
        pool.check = self.stop.check
        self.probe = probe_pages(workers)
        self.workers = workers
        for task in self._tasks(plan.jobs):
            pool.add(task)
        # The first tasks start before the writer is waited for: it may still
        # be opening (or creating) the index, and their results queue for it.
        pool.fill()
        self.writer.wait_ready()  # type: ignore[union-attr]
        rep.start(len(plan.jobs))
        for outcome in pool.outcomes():
            self._outcome(outcome)
            self.writer.check()  # type: ignore[union-attr]
        self.summary.tasks = pool.stats.submitted
        self.summary.pool = asdict(pool.stats)

    def _started(self, task: Task) -> None:
        paths = [i.path for i in task.items if i.first == 1 or self.docs[i.path].job.ranges]
        if paths:
            self._send(("started", paths))

    def _tasks(self, jobs: list[Job]) -> list[Task]:
        small = self.config.small_file_kb * 1024
        tasks: list[Task] = []
        group: list[Item] = []
        group_bytes = 0
        for job in sorted(jobs, key=lambda j: -j.entry.size):
            e = job.entry
            self.docs[e.path] = _Doc(job, job.sha256)
            want_hash = job.sha256 is None
            if job.ranges:
                doc = self.docs[e.path]
                doc.chunked = True
                doc.page_count = job.page_count
                for first, last in job.ranges:  # as recorded: they are chunk-sized already
                    for a, b in _split(first, last, MAX_CHUNK):
                        tasks.append(self._range_task(e.path, a, b, urgent=False))
                        doc.outstanding += 1
                continue
            self.docs[e.path].outstanding = 1
            # A large PDF is probably long: its probe only learns the page
            # count, so the other workers get ranges almost at once. It
            # extracts no page: the count alone takes 1 ms, a first page
            # 25-50 ms for 5,000 pages (MuPDF loads the whole page tree then),
            # which the first range can pay while the others run.
            probe = 0 if self.workers > 1 and e.size >= BIG_PDF_BYTES else self.probe
            limit = probe if e.kind == "pdf" else None
            item = Item(e.path, e.kind, limit=limit, want_hash=want_hash)
            units = probe if e.kind == "pdf" else max(1, e.size // PAGE_EQUIVALENT_BYTES)
            if e.kind == "epub" or e.size >= small:
                tasks.append(Task((item,), cost=e.size, units=units))
                continue
            group.append(item)
            group_bytes += e.size
            if len(group) >= GROUP_FILES or group_bytes >= GROUP_BYTES:
                tasks.append(self._group_task(group, group_bytes))
                group, group_bytes = [], 0
        if group:
            tasks.append(self._group_task(group, group_bytes))
        return tasks

    def _group_task(self, items: list[Item], size: int) -> Task:
        units = (
            sum(self.probe if i.kind == "pdf" else 1 for i in items) + size // PAGE_EQUIVALENT_BYTES
        )
        return Task(tuple(items), cost=size, units=units)

    def _range_task(self, path: str, first: int, last: int, urgent: bool = True) -> Task:
        doc = self.docs[path]
        return Task(
            (Item(path, "pdf", first, last),),
            cost=doc.job.entry.size * (last - first + 1) / max(1, doc.page_count or 1),
            units=last - first + 1,
            urgent=urgent,
        )

    def _outcome(self, outcome: Outcome) -> None:
        if outcome.failure is not None:
            for item in outcome.task.items:
                self._item_failed(item, outcome.failure)
        else:
            for result in outcome.results or []:
                self._item_done(result)

    def _whole(self, item: Item) -> bool:
        """Is ``item`` a document's first (or only) task, not a later range?"""
        return item.first == 1 and item.last is None

    def _item_failed(self, item: Item, reason: str) -> None:
        doc = self.docs[item.path]
        if self._whole(item):
            doc.error = reason
        else:
            doc.failed.append((item.first, item.last or item.first, reason))
        self._resolved(doc)

    def _item_done(self, r: ItemResult) -> None:
        doc = self.docs[r.item.path]
        if r.sha256:
            doc.sha256 = r.sha256
        if r.error is not None:
            self._item_failed(r.item, r.error)
            return
        x = r.extracted
        assert x is not None
        doc.page_count = x.page_count
        doc.failed.extend(x.failed)
        doc.page_rows += len(x.pages)
        if self._whole(r.item) and x.last < x.page_count:
            # a long PDF: split the rest across the workers, ahead of other work
            doc.chunked = True
            self.summary.chunked += 1
            ranges = chunk_ranges(x.last + 1, x.page_count, self.workers)
            sizes = sorted({b - a + 1 for a, b in ranges})
            self.reporter.info(
                f"chunked: {r.item.path} ({x.page_count} pages) in {len(ranges)} ranges "
                f"of {sizes[0]} to {sizes[-1]} pages"
            )
            for a, b in ranges:
                self.pool.add(self._range_task(r.item.path, a, b))  # type: ignore[union-attr]
                doc.outstanding += 1
            if doc.sha256 is None and r.item.want_hash:
                # the probe left it to us (see pool.run_items): hash while the ranges run
                doc.hashing = self._hasher().submit(sha256_file, r.item.path)
        if doc.chunked:
            e = doc.job.entry  # the writer streams a whole document's ranges, see writer.py
            new = None if doc.job.ranges else (e.kind, e.size, e.mtime_ns)
            self._send(("part", r.item.path, x.first, x.last, x.pages, new))
        else:
            doc.pages = x.pages
        self._resolved(doc)

    def _resolved(self, doc: _Doc) -> None:
        doc.outstanding -= 1
        if doc.outstanding > 0:
            return
        e, job = doc.job.entry, doc.job
        if doc.hashing is not None:
            doc.sha256 = doc.hashing.result()
        if doc.error is not None:
            status, error, pages, rows = "error", doc.error, [], 0
        elif doc.failed:
            doc.failed.sort()
            status = "partial"
            error = "; ".join(f"pages {a}-{b}: {why}" for a, b, why in doc.failed)[:500]
            pages, rows = doc.pages, doc.page_rows
        else:
            status, error, pages, rows = None, None, doc.pages, doc.page_rows
        self._send(
            (
                "doc",
                DocMsg(
                    path=e.path,
                    kind=e.kind,
                    size=e.size,
                    mtime_ns=e.mtime_ns,
                    sha256=doc.sha256,
                    status=status,  # type: ignore[arg-type]
                    page_count=doc.page_count if status != "error" else None,
                    pages=pages,
                    failed_ranges=doc.failed,
                    error=error,
                    mode="ranges" if job.ranges else "replace",
                    retried=list(job.ranges),
                ),
            )
        )
        s = self.summary
        if status == "error":
            s.failed += 1
            self.reporter.error(e.path, error or "")
        elif status == "partial":
            s.partial += 1
            self.reporter.error(e.path, f"partly indexed: {error}")
        else:
            s.indexed += 1
            s.empty += rows == 0 and not job.ranges
        s.pages += rows
        self.reporter.advance(files=1, pages=rows)
        doc.pages = []


def _split(first: int, last: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(last, a + size - 1)) for a in range(first, last + 1, size)]
