"""``indexer index`` as a library call: scan → plan → pool → writer → store.

Why this module exists: it wires the stages together and owns the lifecycles
of what a run starts (the writer process, the pool, the governor, the hashing
thread) and its signals. ``index()`` is what the CLI calls; it is usable from
Python and returns a ``RunSummary``. What runs when, and what each result
leads to, is decided in ``schedule.py``; this module only moves outcomes from
the pool through the ``DocumentTracker`` to the writer.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from indexer import repair, store
from indexer.config import Config
from indexer.errors import DatabaseError, ExitStatus, UsageError
from indexer.extract.ocr import OcrSpec
from indexer.extract.ocr import problem as ocr_problem
from indexer.forget import missing_root
from indexer.launch import prestart
from indexer.lock import RunLock
from indexer.machine import check_address_space, check_descriptors, own_usage
from indexer.messages import (
    Delete,
    Document,
    Move,
    PlannedJob,
    RebuildFullText,
    RunStatus,
    ScanErrors,
    StorePlan,
    Touch,
)
from indexer.names import text_path
from indexer.plan import Checks, Plan, make_plan, suspect_reason
from indexer.pool import Pool, PoolStats
from indexer.progress import Reporter
from indexer.resources import (
    CpuSample,
    Governor,
    GovernorSummary,
    Sizing,
    default_worker_memory,
    size_pool,
)
from indexer.scan import MissingRoot, ScanResult, normalize_roots, scan, sha256_file
from indexer.schedule import DocumentTracker, Step, build_tasks
from indexer.work import Task
from indexer.writer import WriterHandle

# Messages the writer's queue holds at most: when the writer falls behind, the
# main process blocks on it and submits nothing more, so the workers wait.
WRITER_QUEUE = 32


@dataclass
class PlannedPaths:
    """What a dry run lists with --verbose (``progress.planned_lines``)."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # "old -> new"
    deleted: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # listed with --verbose
    excluded: list[str] = field(default_factory=list)  # documents purged by an exclusion


@dataclass
class RunSummary:
    """What a run did (``progress.summary_line`` renders it, ``--json`` prints
    ``to_dict()``, the runs table stores it)."""

    dry_run: bool = False
    new: int = 0
    changed: int = 0
    retried: int = 0
    moved: int = 0
    touched: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped_errors: int = 0  # failed before, unchanged, not tried again: still failing
    unsupported: int = 0  # files of no supported type, skipped
    excluded: int = 0  # of deleted: documents purged because an exclusion covers them
    resumed: int = 0
    suspects: int = 0  # not tried again: in progress when several runs died
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
    root_devices: dict[str, int] = field(default_factory=dict)  # see plan.Plan.devices
    pool: PoolStats | None = None  # None: nothing was extracted
    governor: GovernorSummary | None = None
    # the runs table's metrics: workers' time on items, CPU seconds and peak
    # memory by role (main, workers, writer), error records by kind
    busy_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    planned: PlannedPaths = field(default_factory=PlannedPaths)

    @property
    def exit_status(self) -> ExitStatus:
        if self.interrupted:
            return ExitStatus.INTERRUPTED
        if self.failed or self.partial or self.skipped_errors:
            return ExitStatus.SOME_FAILED  # a file under the roots is not (all) indexed
        return ExitStatus.OK

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON data (``--json``, the runs table); not the
        planned paths, which a big first run counts by the hundred thousand."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "planned"}
        d["pool"] = asdict(self.pool) if self.pool is not None else {}
        d["governor"] = asdict(self.governor) if self.governor is not None else {}
        minutes = self.seconds / 60 if self.seconds > 0 else 0.0
        d["pages_per_min"] = round(self.pages / minutes) if minutes else 0
        d["docs_per_min"] = (
            round((self.indexed + self.partial + self.failed) / minutes) if minutes else 0
        )
        wall = self.workers * self.seconds
        d["worker_efficiency"] = round(self.busy_seconds / wall, 3) if wall > 0 else 0.0
        return d


def index(
    paths: list[str],
    config: Config,
    *,
    dry_run: bool = False,
    wait: bool = False,
    reporter: Reporter | None = None,
    cpu: CpuSample | None = None,
    checks: Checks | None = None,
    tokenizer: str | None = None,
    locked: bool = False,
) -> RunSummary:
    """Index ``paths`` into ``config.db``; see the module header. ``cpu``: a
    sample of the machine's CPU use started earlier (the CLI starts one first
    thing), so sizing the pool need not wait for one. ``checks``: how hard
    the planner looks (``plan.Checks``; ``repair`` also rebuilds the
    full-text index), with ``config.retry_errors`` as well. ``tokenizer``: a
    ``store.TOKENIZERS`` name for a new index (an existing one must have it).
    ``locked``: the caller holds the run lock already (``watch``)."""
    started = time.monotonic()
    reporter = reporter or Reporter.silent_reporter()
    db = Path(config.db).absolute()
    try:
        roots = normalize_roots(paths)
    except MissingRoot as e:
        raise missing_root(db, e.path) from None
    checks = checks or Checks()
    checks = replace(checks, retry_errors=checks.retry_errors or config.retry_errors)
    ocr = ocr_spec(config, reporter)
    if ocr is not None:
        checks = replace(checks, ocr_languages=ocr.languages)

    if dry_run:
        conn = store.connect(db) if db.exists() else None
        try:
            scanned = scan(
                roots,
                config.hidden,
                follow_symlinks=config.follow_symlinks,
                exclude=config.exclude,
            )
            plan = make_plan(scanned, conn, checks)
        finally:
            if conn is not None:
                conn.close()
        summary = _plan_summary(plan, dry_run=True)
        summary.seconds = time.monotonic() - started
        return summary

    if not db.parent.is_dir():
        raise DatabaseError(f"cannot create the index {db}: directory {db.parent} does not exist")
    if db.is_file() and not os.access(db, os.W_OK):
        # said before the planner opens it: a read-only connection to it would
        # leave a -wal and a -shm beside it for nothing
        raise DatabaseError(f"cannot write the index {db}: the file or its directory is read-only")
    if tokenizer is not None and tokenizer not in store.TOKENIZERS:
        raise UsageError(
            f"no tokenizer {tokenizer!r}", hint="one of: " + ", ".join(store.TOKENIZERS)
        )
    if tokenizer is not None and db.is_file():
        conn = store.connect(db)
        try:
            store.check_tokenizer(conn, db, tokenizer)
        finally:
            conn.close()
    check_address_space()
    lock = None if locked else RunLock(db).acquire(wait=wait)
    try:
        with _StopOnSignals() as stop:
            run = _Run(roots, db, config, reporter, started, stop, cpu, checks, tokenizer, ocr)
            return run.run()
    finally:
        if lock is not None:
            lock.release()


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM was received; raised only at safe points of the run."""


def ocr_spec(config: Config, reporter: Reporter) -> OcrSpec | None:
    """How a run recognises scans; None without ``--ocr``, or where
    Tesseract or a language is missing (said once: the files with text are
    indexed all the same)."""
    if config.ocr == "never":
        return None
    spec = OcrSpec(config.ocr, config.ocr_lang, config.ocr_dpi, config.ocr_timeout)
    why = ocr_problem(spec)
    if why is not None:
        reporter.warning(*why)
        return None
    return spec


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
    excluded = set(plan.excluded)
    return RunSummary(
        dry_run=dry_run,
        new=c["new"],
        changed=c["changed"],
        retried=c["retry"],
        moved=c["moved"],
        touched=c["touched"],
        deleted=c["deleted"],
        unchanged=c["unchanged"],
        skipped_errors=c["skipped_errors"],
        unsupported=c["unsupported"],
        excluded=c["excluded"],
        resumed=c["resumed"],
        suspects=c["suspects"],
        root_devices={text_path(r): d for r, d in plan.devices.items()},
        planned=PlannedPaths(
            new=[text_path(j.entry.path) for j in plan.jobs if j.action == "new"],
            changed=[text_path(j.entry.path) for j in plan.jobs if j.action == "changed"],
            retry=[text_path(j.entry.path) for j in plan.jobs if j.action == "retry"],
            moved=[f"{old} -> {text_path(e.path)}" for old, e in plan.moved],
            deleted=[p for p in plan.deleted if p not in excluded],
            excluded=list(plan.excluded),
            unsupported=[text_path(p) for p in plan.unsupported],
        ),
    )


class _Run:
    def __init__(
        self,
        roots: list[str],
        db: Path,
        config: Config,
        reporter: Reporter,
        started: float,
        stop: _StopOnSignals,
        cpu: CpuSample | None,
        checks: Checks,
        tokenizer: str | None = None,
        ocr: OcrSpec | None = None,
    ) -> None:
        self.stop = stop
        self.ocr = ocr
        self.cpu = cpu
        self.roots = roots
        self.db = db
        self.config = config
        self.reporter = reporter
        self.started = started
        self.summary = RunSummary()
        self.writer = WriterHandle(
            str(db), roots, config.batch_rows, config.batch_seconds, WRITER_QUEUE, tokenizer
        )
        self.writer.on_slow_open = reporter.note
        self.pool: Pool | None = None
        self.governor: Governor | None = None
        self.tracker: DocumentTracker | None = None
        self._hash_threads: ThreadPoolExecutor | None = None
        self.checks = checks  # see index()

    def _start_hash(self, path: str, stat: tuple[int, int]) -> Callable[[], str | None]:
        """The tracker's ``start_hash``: hash a file on a thread (hashlib
        releases the GIL) while the run goes on."""
        if self._hash_threads is None:
            self._hash_threads = ThreadPoolExecutor(1, thread_name_prefix="indexer-hash")
        return self._hash_threads.submit(sha256_file, path, stat).result

    # -- the run ------------------------------------------------------------------
    def run(self) -> RunSummary:
        cfg = self.config
        cpu = self.cpu or CpuSample()  # what the machine does while we start, scan and plan
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
            scanned = scan(
                self.roots,
                cfg.hidden,
                self.stop.check,
                follow_symlinks=cfg.follow_symlinks,
                exclude=cfg.exclude,
            )
            self.stop.check()
            plan = self._plan(scanned, existed)
            self.stop.check()
            self.summary = _plan_summary(plan, dry_run=False)
            if plan.jobs:
                sizing = size_pool(cfg.workers, cfg.memory_reserve, sample=cpu)
                # before the writer opens the index: a run refused here leaves
                # nothing to undo (a writer killed after its open left a -wal)
                check_descriptors(sizing.workers)
            self.writer.spawn()
            if sizing is not None:
                self._make_pool(sizing)
                self.summary.workers = sizing.workers
                self.summary.sizing = sizing.explain()
            # queued: the writer applies the plan once it has opened the index
            self._apply_plan(plan)
            if sizing is not None:
                self._extract(plan, sizing)
            self.writer.wait_ready()  # (returns at once when _extract has waited)
            for note in self.writer.notes:
                self.reporter.note(note)
        except (KeyboardInterrupt, _Interrupted):
            self.summary.interrupted = True
        except BaseException:
            self._stop_workers()
            self.writer.kill()
            raise
        self._stop_governor()
        self._count()
        status: RunStatus = (
            "interrupted"
            if self.summary.interrupted
            else "ok"
            if self.summary.exit_status == ExitStatus.OK
            else "some_failed"
        )
        try:
            # the writer commits its last batch while the workers stop
            self.writer.ask_finish(status, self.summary.to_dict())
            self._stop_workers()
            stats = self.writer.wait_finished()
            self.summary.cpu["writer"] = stats["cpu_ms"] / 1000
            self.summary.peak_rss_mib["writer"] = stats["peak_rss_mib"]
        except KeyboardInterrupt:
            self._stop_workers()
            self.writer.kill()
            self.summary.interrupted = True
        self.summary.seconds = time.monotonic() - self.started
        return self.summary

    def _count(self) -> None:
        """The tracker's and the pool's figures, into the summary."""
        s = self.summary
        if self.tracker is not None:
            t = self.tracker.tally
            s.indexed, s.empty, s.partial = t.indexed, t.empty, t.partial
            s.failed += t.failed
            s.pages, s.chunked = t.pages, t.chunked
            s.busy_seconds = round(t.busy_seconds, 3)
            s.cpu["workers"] = round(t.worker_cpu, 3)
            for kind, n in t.errors.items():
                s.errors[kind] = s.errors.get(kind, 0) + n
        cpu, s.peak_rss_mib["main"] = own_usage()
        s.cpu["main"] = round(cpu, 3)
        if s.governor is not None:
            s.peak_rss_mib["workers"] = s.governor.peak_worker_rss_mib
        if self.pool is not None:
            s.tasks = self.pool.stats.submitted
            s.pool = self.pool.stats
        s.seconds = time.monotonic() - self.started

    def _stop_governor(self) -> None:
        """Stop the progress display and the governor (its figures go into the summary)."""
        self.reporter.stop()
        if self.governor is not None:
            self.summary.governor = self.governor.stop().summary()
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
        if not existed:
            return make_plan(scanned, None, self.checks, self.stop.check, self.config.timeout)
        try:
            return self._plan_from(scanned)
        except (DatabaseError, sqlite3.Error):
            # the writer upgrades or repairs the schema, or says what is wrong
            self.writer.wait_ready()
            return self._plan_from(scanned)

    def _plan_from(self, scanned: ScanResult) -> Plan:
        conn = store.connect(self.db, planning=True)
        try:
            if not self.writer.run_id and not repair.schema_is_whole(conn):
                raise DatabaseError("the index needs repairing first")  # by the writer
            return make_plan(scanned, conn, self.checks, self.stop.check, self.config.timeout)
        except sqlite3.Error as e:
            raise store.explain_error(self.db, e, "read") from None
        finally:
            conn.close()

    def _apply_plan(self, plan: Plan) -> None:
        rep, send = self.reporter, self.writer.send
        jobs = plan.jobs + [job for job, _ in plan.suspects]
        send(
            StorePlan(
                self.roots,
                [
                    PlannedJob(j.entry.path, j.action, j.entry.kind, j.entry.size, j.entry.mtime_ns)
                    for j in jobs
                ],
            )
        )
        dir_roots = [r for r in self.roots if Path(r).is_dir()]
        send(ScanErrors(dir_roots, plan.scan_errors))
        for path, reason in plan.scan_errors:
            rep.error(path, reason)
        self.summary.failed += len(plan.scan_errors)
        for old, entry in plan.moved:
            rep.info(f"moved: {old} -> {text_path(entry.path)}")
            send(Move(old, entry.path, entry.size, entry.mtime_ns))
        for entry in plan.touched:
            send(Touch(entry.path, entry.size, entry.mtime_ns))
        if plan.deleted:
            excluded = set(plan.excluded)
            for path in plan.deleted:
                rep.info(f"{'excluded' if path in excluded else 'deleted'}: {path}")
            send(Delete(plan.deleted))
        if plan.resumed:
            rep.info(f"resuming {plan.resumed} job(s) an interrupted run left unfinished")
        if plan.verified:
            rep.info(f"verify: {plan.verified} file(s) with an unchanged stat were hashed")
        if self.checks.repair:
            send(RebuildFullText())
            rep.note("repair: the full-text index is rebuilt from the pages")
        for job, deaths in plan.suspects:
            e, reason = job.entry, suspect_reason(deaths)
            send(Document(e.path, e.kind, e.size, e.mtime_ns, job.sha256, "error", error=reason))
            rep.error(e.path, reason)
        self.summary.failed += len(plan.suspects)
        if plan.suspects:
            self.summary.errors["suspected of ending the run"] = len(plan.suspects)

    # -- extraction ----------------------------------------------------------------
    def _make_pool(self, sizing: Sizing) -> Sizing:
        """Create the pool and start its workers (they warm up meanwhile)."""
        cfg = self.config
        self.reporter.info(f"pool: {sizing.explain()}")
        self.pool = Pool(
            sizing.workers,
            epub_limit=cfg.epub_concurrency,
            timeout=cfg.timeout,
            ocr_timeout=cfg.ocr_timeout,
            worker_memory=cfg.worker_memory or default_worker_memory(),
            log=self.reporter.info,
        )
        self.pool.start()
        return sizing

    def _extract(self, plan: Plan, sizing: Sizing) -> None:
        rep, pool = self.reporter, self.pool
        assert pool is not None
        self.governor = Governor(
            sizing.workers,
            sizing.reserve,
            on_decision=rep.info,
            running=lambda: len(pool.in_flight),
        ).start()
        pool.allowed = self.governor.allowed
        pool.on_submit = self._started
        pool.check = self.stop.check
        tasks = build_tasks(plan.jobs, sizing.workers, self.config.small_file_kb, self.ocr)
        self.tracker = DocumentTracker(plan.jobs, tasks, sizing.workers, self._start_hash, self.ocr)
        for task in tasks:
            pool.add(task)
        # The first tasks start before the writer is waited for: it may still
        # be opening (or creating) the index, and their results queue for it.
        pool.fill()
        self.writer.wait_ready()
        rep.start(len(plan.jobs), sum(j.entry.size for j in plan.jobs))
        for outcome in pool.outcomes():
            self._apply(self.tracker.on_outcome(outcome))
            self.writer.check()

    def _started(self, task: Task) -> None:
        assert self.tracker is not None
        self.reporter.working(task.items[0].path)
        msg = self.tracker.started(task)
        if msg is not None:
            self.writer.send(msg)

    def _apply(self, step: Step) -> None:
        """Carry out what an outcome led to (see ``schedule.Step``)."""
        assert self.pool is not None
        rep = self.reporter
        for note in step.notes:
            rep.info(note)
        for task in step.tasks:
            self.pool.add(task)
        for msg in step.messages:
            self.writer.send(msg)
        for doc in step.closed:
            if doc.status == "error":
                rep.error(doc.path, doc.reason or "")
            elif doc.status == "partial":
                rep.error(doc.path, f"partly indexed: {doc.reason}")
        rep.advance(files=len(step.closed), pages=step.pages, work=step.work)
