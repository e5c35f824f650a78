"""The executor: extraction tasks on a loky process pool that is expected to break.

Why this module exists: loky gives us a robust process pool, but a dead worker
breaks the whole executor and fails *every* pending future, and there is no
per-task timeout. This module adds what a long unattended run needs::

      run.py ── add(Task) ──▶ queues ──────────── fill() ───────────▶ loky executor
        ▲                      urgent ranges first,   ≤ governor.allowed()   worker: run_task()
        │                      then largest first;    ≤ epub_limit EPUBs       (pure extractors,
        │                      suspects run alone                              no database)
        └──── Outcome (results | failure) ◀── _collect() / _expire() ◀── futures

* Deadlines follow progress: a task whose worker reads no page for
  ``timeout`` seconds hangs (a loop in a library, a worker stopped with
  SIGSTOP, a stalled network mount), whatever its size; and no task may take
  more than ``timeout × max(1, units/100)`` seconds in all (units are pages, or
  page equivalents for EPUB and text). Workers beat after each page into the
  task's beat file (``worker.run_task``), read only when a task looks late.
  Only as many tasks as there are workers are in flight, so a task starts when
  it is submitted. A task past its deadline is recorded as "timed out: no page
  read for N s" or "timed out after N s"; its executor is killed and rebuilt,
  and the other tasks that were in flight are resubmitted.
* Crashes: when a worker dies (segfault, ``os._exit``, OOM killer), every task
  in flight becomes a suspect. Suspects are rerun one at a time, alone; one
  that crashes again alone is recorded as "worker crashed (signal N)". Results
  over 3.5 KiB come back by file (``worker.run_task``), so a worker killed while
  returning one cannot leave loky waiting forever on half a message.
* Memory: each worker runs under an address-space limit (``worker_memory``),
  so a runaway document fails its task with "out of memory", not the machine.
* Throttle: at most ``epub_limit`` EPUB tasks in flight, enforced here where
  tasks are chosen, so it cannot deadlock.
* Start-up: workers are forked from a fork server that has imported the
  extractors once (``launch.worker_context``), instead of each starting Python and
  importing pymupdf itself (about 0.2 s of CPU per worker: on 2 cores taken
  from the extraction, on 16 about 3 s per start or rebuild). Where there is
  no fork server (Windows), loky's own start method. Workers exit when the
  main process dies (``worker._exit_with``).
* Grouping and ordering are decided in ``schedule.py``: tasks carry a cost
  (largest first) and an ``urgent`` flag for the remaining page ranges of a
  document already started; the pool only keeps to that order.

What runs in the workers is ``worker.py``, with its test-only fault hook.
"""

from __future__ import annotations

import heapq
import math
import os
import re
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from indexer.extract.base import one_line
from indexer.launch import cannot_start, prestart, worker_context
from indexer.machine import check_descriptors, own_temp_dir
from indexer.work import OUT_OF_MEMORY, ItemResult, Outcome, Task
from indexer.worker import BEAT_SECONDS, Spilled, init_worker, ping, run_task

if TYPE_CHECKING:  # loky itself is imported when the pool starts (start-up time)
    from loky import ProcessPoolExecutor

TIMEOUT_UNIT_PAGES = 100
# the shortest silence called a hang: several beats (--timeout may be smaller)
MIN_SILENCE = 5 * BEAT_SECONDS


@dataclass
class PoolStats:
    """What the pool did, for the run's summary."""

    submitted: int = 0
    crashes: int = 0
    timeouts: int = 0
    rebuilds: int = 0
    isolated: int = 0  # suspect tasks rerun alone after a crash
    max_in_flight: int = 0
    max_epub_in_flight: int = 0


@dataclass
class Flight:
    """A task in flight."""

    task: Task
    submitted: float  # time.monotonic()
    budget: float  # seconds it may take in all
    beat: str | None  # its beat file (None: no temporary folder, the budget only)
    moved: float = 0.0  # when it was last seen to read a page (monotonic)


def _crash_description(e: BaseException) -> str:
    """'signal 11' or 'exit status 3' from loky's TerminatedWorkerError text."""
    m = re.search(r"exit codes of the workers are \{([^}]*)\}", str(e))
    codes = re.findall(r"\((-?\d+)\)", m.group(1)) if m else []
    if not codes:
        return "worker process died"
    code = int(codes[0])
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        extra = ", killed: out of memory?" if -code == signal.SIGKILL else ""
        return f"signal {-code}, {name}{extra}"
    return f"exit status {code}"


class Pool:
    def __init__(
        self,
        workers: int,
        *,
        epub_limit: int = 2,
        timeout: float = 60.0,
        ocr_timeout: float = 120.0,
        worker_memory: int = 0,
        allowed: Callable[[], int] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.workers = max(1, workers)
        self.epub_limit = max(1, epub_limit)
        self.timeout = timeout
        self.ocr_timeout = ocr_timeout
        self.worker_memory = worker_memory
        self.allowed = allowed or (lambda: self.workers)
        self.log = log or (lambda _msg: None)
        self.on_submit: Callable[[Task], None] | None = None
        # called at the top of every turn of the loop; may raise to stop the run
        self.check: Callable[[], None] = lambda: None
        self.stats = PoolStats()
        self._epubs: list[tuple[tuple[int, float, int], Task]] = []
        self._others: list[tuple[tuple[int, float, int], Task]] = []
        self._suspects: deque[Task] = deque()
        self.in_flight: dict[Future[list[ItemResult] | Spilled], Flight] = {}
        self._executor: ProcessPoolExecutor | None = None
        self._warming: list[Future[int]] = []
        self._warm_at: float | None = None
        self._results_dir: str | None = None  # big results and beat files (worker.py)

    # -- the executor ----------------------------------------------------------------
    def _ensure_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            from loky import ProcessPoolExecutor

            check_descriptors(self.workers)
            prestart()  # (how the fork server must start: see there)
            if self._results_dir is None:
                try:
                    self._results_dir = own_temp_dir("indexer-results-")
                except OSError:  # no writable temporary folder: results by pipe only
                    pass
            try:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    initializer=init_worker,
                    initargs=(self.worker_memory, os.getpid(), self._results_dir),
                    context=worker_context(),
                )
                # Warm-up pings: deadlines start counting once the pool has
                # answered (a worker is up and has imported the extractors; see
                # _deadline), so a slow start-up is not charged to the first
                # tasks. The pings do not sleep: they sit ahead of the first
                # tasks in the queue. (The first submission starts the workers.)
                self._warming = [self._executor.submit(ping) for _ in range(self.workers)]
            except OSError as e:
                raise cannot_start(e) from None
            self._warm_at = None
        return self._executor

    def _warm(self) -> float | None:
        """When the current executor finished warming up, or None if it has not."""
        if self._warm_at is None and all(f.done() for f in self._warming):
            self._warm_at = time.monotonic()
        return self._warm_at

    def _shutdown(self) -> bool:
        """Kill the workers and drop the executor; True if there was one."""
        if self._executor is None:
            return False
        try:
            self._executor.shutdown(wait=True, kill_workers=True)
        except Exception:
            pass
        self._executor = None
        self._warming, self._warm_at = [], None
        return True

    def _kill_executor(self) -> None:
        """Rebuild after a crash or a timeout: the next submission starts a new one."""
        if self._shutdown():
            self.stats.rebuilds += 1

    def start(self) -> None:
        """Spawn the workers now instead of at the first submission."""
        self._ensure_executor()

    def close(self) -> None:
        """Stop every worker (used at the end, on errors and on Ctrl-C). The
        futures in flight are dropped, not cancelled: loky's shutdown fails them
        itself, and one we had cancelled made its manager thread print a
        traceback (InvalidStateError) on the user's stderr."""
        self.in_flight.clear()
        self._shutdown()
        if self._results_dir is not None:
            shutil.rmtree(self._results_dir, ignore_errors=True)
            self._results_dir = None

    # -- queues ----------------------------------------------------------------------
    def add(self, task: Task) -> None:
        heap = self._epubs if task.is_epub else self._others
        heapq.heappush(heap, (task.key(), task))

    def pending(self) -> int:
        return len(self._epubs) + len(self._others) + len(self._suspects)

    def budget(self, task: Task) -> float:
        return (
            self.timeout * max(1.0, task.units / TIMEOUT_UNIT_PAGES)
            + task.ocr_pages * self.ocr_timeout
        )

    @property
    def silence(self) -> float:
        """Seconds without a page read that make a task a hang."""
        return max(self.timeout, MIN_SILENCE)

    def _epubs_in_flight(self) -> int:
        return sum(1 for f in self.in_flight.values() if f.task.is_epub)

    def _pop(self) -> Task | None:
        heaps = [self._others]
        if self._epubs_in_flight() < self.epub_limit:
            heaps.append(self._epubs)
        heaps = [h for h in heaps if h]
        if not heaps:
            return None
        best = min(heaps, key=lambda h: h[0][0])
        return heapq.heappop(best)[1]

    def _submit(self, task: Task) -> bool:
        """Submit ``task``; False when the executor turned out to be broken (a
        worker died and its future has not been collected yet)."""
        from loky.process_executor import BrokenProcessPool

        executor = self._ensure_executor()
        beat = None
        if self._results_dir is not None:
            beat = os.path.join(self._results_dir, f"beat-{self.stats.submitted}")
        try:
            fut = executor.submit(run_task, task.items, beat)
        except BrokenProcessPool:
            return False  # it never ran; the caller puts it back
        if self.on_submit is not None:
            self.on_submit(task)
        self.in_flight[fut] = Flight(task, time.monotonic(), self.budget(task), beat)
        self.stats.submitted += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, len(self.in_flight))
        self.stats.max_epub_in_flight = max(self.stats.max_epub_in_flight, self._epubs_in_flight())
        return True

    def fill(self) -> None:
        """Submit what the limits allow. Stops at a broken executor: the crash
        is then handled when the failed futures are collected."""
        if self._suspects:
            if not self.in_flight:
                suspect = self._suspects.popleft()
                if not self._submit(suspect):
                    self._suspects.appendleft(suspect)
                    self._kill_executor()
            return
        if any(f.task.alone for f in self.in_flight.values()):
            return
        limit = max(1, min(self.workers, self.allowed()))
        while len(self.in_flight) < limit:
            task = self._pop()
            if task is None:
                return
            if not self._submit(task):
                self.add(task)
                if not self.in_flight:  # nothing left to report the crash
                    self._kill_executor()
                return

    # -- the loop --------------------------------------------------------------------
    def outcomes(self) -> Iterator[Outcome]:
        """Run until every task added (also while iterating) has an outcome."""
        while self.pending() or self.in_flight:
            self.check()
            self.fill()
            if not self.in_flight:
                continue
            now = time.monotonic()
            next_deadline = min(self._deadline(f) for f in self.in_flight.values())
            pings = [f for f in self._warming if not f.done()]
            watched: list[Future[Any]] = [*self.in_flight, *pings]
            done, _ = wait(
                watched,
                timeout=max(0.01, min(0.5, next_deadline - now)),
                return_when=FIRST_COMPLETED,
            )
            for fut in done:
                if fut in self.in_flight:
                    yield from self._collect(fut)
            yield from self._expire()

    def _collect(self, fut: Future[list[ItemResult] | Spilled]) -> Iterator[Outcome]:
        from loky.process_executor import BrokenProcessPool

        task = self._land(fut).task
        try:
            results = fut.result()
        except BrokenProcessPool as e:  # TerminatedWorkerError is one
            yield from self._crashed(task, e)
            return
        except MemoryError:
            yield Outcome(task, failure=OUT_OF_MEMORY)
            return
        except Exception as e:
            yield Outcome(task, failure=f"worker error: {one_line(e)}")
            return
        if isinstance(results, Spilled):
            try:
                results = results.load()
            except MemoryError:  # the main process, under a low ulimit -v
                yield Outcome(task, failure=f"{OUT_OF_MEMORY} (the main process, reading its text)")
                return
            except Exception as e:  # the file went missing, or the disk failed
                yield Outcome(task, failure=f"worker error: {one_line(e)}")
                return
        yield Outcome(task, results=results)

    def _crashed(self, task: Task, e: BaseException) -> Iterator[Outcome]:
        how = _crash_description(e)
        victims = [task] + [f.task for f in self.in_flight.values()]
        self._land_all()
        self._kill_executor()
        self.stats.crashes += 1
        self.log(f"pool: a worker crashed ({how}); {len(victims)} task(s) were in flight")
        for victim in victims:
            if victim.alone:
                yield Outcome(victim, failure=f"worker crashed ({how})")
                continue
            for item in victim.items:
                self._suspects.append(victim.single(item, alone=True))
                self.stats.isolated += 1

    def _land(self, fut: Future[list[ItemResult] | Spilled]) -> Flight:
        """Take a task out of flight (its beat file goes: a killed worker
        cannot remove it)."""
        flight = self.in_flight.pop(fut)
        if flight.beat is not None:
            try:
                os.unlink(flight.beat)
            except OSError:
                pass
        return flight

    def _land_all(self) -> None:
        for fut in list(self.in_flight):
            self._land(fut)

    def _deadline(self, f: Flight) -> float:
        """When ``f`` is late: ``silence`` after its last page read, and
        ``budget`` after its start at the latest. Its time starts when it is
        submitted, or when the workers are up."""
        start = self._start(f)
        if start is None:
            return math.inf
        end = start + f.budget
        # (a page being recognised reads no other page for as long as OCR takes)
        silence = max(self.silence, self.ocr_timeout) if f.task.ocr_pages else self.silence
        return end if f.beat is None else min(end, max(start, f.moved) + silence)

    def _late(self, f: Flight, now: float) -> bool:
        """Past its deadline, once its beat file is read again (only when it
        looks late: no stat per task per turn)."""
        if now <= self._deadline(f):
            return False
        if f.beat is not None:
            try:
                age = time.time() - os.stat(f.beat).st_mtime
            except OSError:  # not made yet (the worker has not started it)
                age = math.inf
            f.moved = max(f.moved, now - max(0.0, age))
        return now > self._deadline(f)

    def _start(self, f: Flight) -> float | None:
        """When ``f``'s time started: at its submission, or once the workers
        were up (None: they are not yet)."""
        warm = self._warm()
        return None if warm is None else max(f.submitted, warm)

    def _why_late(self, f: Flight) -> str:
        """Which deadline it missed: the silence, where that comes before the
        budget (a task of many pages), else the budget."""
        start = self._start(f) or f.submitted
        if f.beat is not None and max(start, f.moved) + self.silence < start + f.budget:
            return f"timed out: no page read for {self.silence:.0f} s"
        return f"timed out after {f.budget:.0f} s"

    def _expire(self) -> Iterator[Outcome]:
        now = time.monotonic()
        late = {fut for fut, f in self.in_flight.items() if self._late(f, now)}
        if not late:
            return
        expired = [(f, self._why_late(f)) for fut, f in self.in_flight.items() if fut in late]
        others = [f.task for fut, f in self.in_flight.items() if fut not in late]
        self._land_all()
        self._kill_executor()
        self.stats.timeouts += len(expired)
        for flight, why in expired:
            task = flight.task
            self.log(f"pool: a task {why}; its worker was killed")
            if len(task.items) == 1:
                yield Outcome(task, failure=why)
            else:  # find the slow file: each one again on its own
                for item in task.items:
                    self.add(task.single(item, urgent=True))
        for task in others:
            task.urgent = True
            self.add(task)
