"""The executor: extraction tasks on a loky process pool that is expected to break.

Why this module exists: loky gives us a robust process pool, but a dead worker
breaks the whole executor and fails *every* pending future, and there is no
per-task timeout. This module adds what a long unattended run needs::

      run.py ── add(Task) ──▶ queues ──────────── fill() ───────────▶ loky executor
        ▲                      urgent ranges first,   ≤ governor.allowed()   worker: run_task()
        │                      then largest first;    ≤ epub_limit EPUBs       (pure extractors,
        │                      suspects run alone                              no database)
        └──── Outcome (results | failure) ◀── _collect() / _expire() ◀── futures

* Deadlines: each task gets ``timeout × max(1, units/100)`` seconds (units are
  pages, or page equivalents for EPUB and text). Only as many tasks as there
  are workers are in flight, so a task starts when it is submitted. A task
  past its deadline is recorded as "timed out after N s"; its executor is
  killed and rebuilt, and the other tasks that were in flight are resubmitted.
* Crashes: when a worker dies (segfault, ``os._exit``, OOM killer), every task
  in flight becomes a suspect. Suspects are rerun one at a time, alone; one
  that crashes again alone is recorded as "worker crashed (signal N)". Results
  over 3.5 KiB come back by file (``run_task``), so a worker killed while
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
  main process dies (``_exit_with``).
* Grouping and ordering are decided in ``schedule.py``: tasks carry a cost
  (largest first) and an ``urgent`` flag for the remaining page ranges of a
  document already started; the pool only keeps to that order.

The fault hook (``INDEXER_FAULTS=1``) is for tests only: it makes a worker
crash, exit, hang or exhaust memory on a file whose name says so. It is off
unless that variable is set.
"""

from __future__ import annotations

import faulthandler
import heapq
import math
import os
import pickle
import re
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from indexer.errors import ExtractError
from indexer.extract import Extracted, extract
from indexer.extract.base import one_line, os_reason
from indexer.launch import cannot_start, own_temp_dir, prestart, when_gone, worker_context
from indexer.scan import file_stat, sha256_file
from indexer.work import (
    CHANGED,
    OUT_OF_MEMORY,
    Item,
    ItemResult,
    Outcome,
    Task,
    hash_in_worker,
)

if TYPE_CHECKING:  # loky itself is imported when the pool starts (start-up time)
    from loky import ProcessPoolExecutor

FAULTS_ENV = "INDEXER_FAULTS"
TIMEOUT_UNIT_PAGES = 100


# --- worker side ----------------------------------------------------------------------


_memory_cap = 0
_results_dir: str | None = None
# A task's pickled results larger than this travel by file (see run_task): the
# message loky writes (this, its framing and the work id) stays within PIPE_BUF
# (4,096 bytes on Linux), which a pipe write delivers whole or not at all.
INLINE_RESULT_BYTES = 3584


def _init_worker(
    memory_cap: int, main_pid: int | None = None, results_dir: str | None = None
) -> None:
    """Runs once in each worker: import the extractors, ignore Ctrl-C and SIGTERM
    (they reach the whole process group; the parent handles them and stops
    the workers itself, with SIGKILL), cap the address space, and exit when the
    main process is gone. ``results_dir``: where big results go (``run_task``)."""
    global _memory_cap, _results_dir
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _results_dir = results_dir
    if main_pid is not None:
        _exit_with(main_pid)
    # A segfault in a native library is reported as "worker crashed (signal
    # 11)" in the error records; faulthandler's multi-line dump on the user's
    # stderr would only be noise.
    faulthandler.disable()
    from indexer.extract import pdf  # noqa: F401  (warm import: pymupdf, the slow one)

    _memory_cap = _cap_memory(memory_cap)


def _cap_memory(memory_cap: int) -> int:
    """Limit the worker's address space to what it uses now plus
    ``memory_cap``, and return the room it really has: a lower limit the
    worker inherited (``ulimit -v``) stays, and is the one an "out of memory"
    reason must name. 0: no limit is known (not Linux)."""
    try:
        import resource

        import psutil
    except ImportError:  # pragma: no cover - not Linux
        return memory_cap
    used = psutil.Process().memory_info().vms
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if memory_cap > 0:
        limit = used + memory_cap
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or limit < soft:
            try:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            except (ValueError, OSError):  # pragma: no cover
                pass
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return 0 if soft == resource.RLIM_INFINITY else max(0, soft - used)


def _exit_with(main_pid: int) -> None:
    """Exit when the main process dies. Killed alone (kill -9 of its pid, not of
    the process group), it would leave the workers running their task and then
    waiting for work forever, and with them the fork server. Checked every
    second; the temporary folder of big results goes too, which the main
    process can no longer remove."""

    def exit_now() -> None:
        if _results_dir is not None:
            shutil.rmtree(_results_dir, ignore_errors=True)
        os._exit(0)

    when_gone(main_pid, exit_now, every=1.0)


def _ping() -> int:
    return os.getpid()


def _inject_fault(item: Item, after_extraction: bool = False) -> None:
    """Test-only: misbehave on files whose name asks for it (off unless
    INDEXER_FAULTS=1). The dash-separated words after ``fault-`` in the file
    name say what to do: ``segv``, ``exit``, ``kill``, ``hang``, ``memory``,
    ``raise``, or ``rewrite`` (append a line to the file once it is extracted,
    before it is hashed: a file written to while it is read); ``range``
    limits it to page ranges after the first (chunked PDFs); ``once`` does it
    only the first time for each range. Example: ``big-fault-range-once-raise.pdf``."""
    if os.environ.get(FAULTS_ENV) != "1":
        return
    name = os.path.basename(item.path)
    if "fault-" not in name:
        return
    words = set(re.split(r"[-.]", name.split("fault-", 1)[1]))
    if after_extraction != ("rewrite" in words):
        return
    if "range" in words and item.first == 1:
        return
    if "once" in words:
        marker = f"{item.path}.{item.first}.tripped"
        if os.path.exists(marker):
            return
        open(marker, "w").close()
    if "segv" in words:
        os.kill(os.getpid(), signal.SIGSEGV)
    elif "exit" in words:
        os._exit(3)
    elif "kill" in words:
        os.kill(os.getpid(), signal.SIGKILL)
    elif "hang" in words:
        time.sleep(3600)
    elif "memory" in words:
        hog = []
        while True:  # until the worker's memory cap stops it
            hog.append(bytearray(64 * 1024 * 1024))
    elif "raise" in words:
        raise RuntimeError("injected fault")
    elif "rewrite" in words:
        with open(item.path, "a", encoding="utf-8") as f:
            f.write("\nrewritten while it was read\n")
        st = os.stat(item.path)  # a new mtime even within the clock's resolution
        os.utime(item.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@dataclass(frozen=True)
class Spilled:
    """A task's results, left in a file by the worker (see ``run_task``)."""

    path: str

    def load(self) -> list[ItemResult]:
        try:
            with open(self.path, "rb") as f:
                return pickle.load(f)  # type: ignore[no-any-return]
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def run_task(items: tuple[Item, ...]) -> list[ItemResult] | Spilled:
    """The function the pool runs: ``run_items``, whose results, when they are
    over INLINE_RESULT_BYTES pickled, are handed over in a file, so that only a
    file name goes through loky's result pipe. A worker killed (SIGKILL, the OOM
    killer) while writing a big result there would leave half a message in the
    pipe, and loky's reader then waits for the rest forever: the run hangs. A
    small message is written whole or not at all (see INLINE_RESULT_BYTES). A
    file left by a killed worker is removed with the folder when the pool closes."""
    out = run_items(items)
    if _results_dir is None:
        return out
    data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) <= INLINE_RESULT_BYTES:
        return out
    try:
        fd, path = tempfile.mkstemp(dir=_results_dir, suffix=".pickle")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError:  # no room: the pipe, as before
        return out
    return Spilled(path)


def run_items(items: tuple[Item, ...]) -> list[ItemResult]:
    """The task function: extract each item; every failure becomes data.

    What is kept was read from one unchanging file, the one the scan saw: its
    stat is taken before the extraction and after it (and after the hash), and
    a file that is not ``item.stat``, or changed meanwhile, gives no text and
    no hash but the reason ``CHANGED`` (a hash of new bytes beside text of old
    ones would be kept as unchanged forever). A path that is no longer a regular
    file (a FIFO, a device) is not opened."""
    out = []
    for item in items:
        started = time.perf_counter()
        extracted: Extracted | None = None
        error: str | None = None
        digest: str | None = None
        before = file_stat(item.path)
        changed = item.stat is not None and before != item.stat
        try:
            if before is None and not changed:
                raise ExtractError(_not_readable(item.path))
            if not changed:
                _inject_fault(item)
                extracted = extract(item.kind, item.path, item.first, item.last, item.limit)
                _inject_fault(item, after_extraction=True)
        except ExtractError as e:
            error = str(e)
        except MemoryError:
            error = OUT_OF_MEMORY + (f" (worker limit {_size(_memory_cap)})" if _memory_cap else "")
        except RecursionError:
            error = "document structure nested too deeply"
        except Exception as e:
            error = f"unexpected error: {one_line(e)}"
        if not changed and hash_in_worker(item, extracted):
            digest = sha256_file(item.path)
        if not changed and before is not None:
            changed = file_stat(item.path) != before
        if changed:
            extracted, error, digest = None, CHANGED, None
        seconds = time.perf_counter() - started
        out.append(ItemResult(item, extracted, error, digest, seconds, changed=changed))
        extracted = None
    return out


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _not_readable(path: str) -> str:
    """Why ``path`` (which ``file_stat`` refused) cannot be read."""
    try:
        os.stat(path)
    except OSError as e:
        return os_reason(e)
    return "not a regular file (a FIFO, socket or device)"


# --- main side ---------------------------------------------------------------------------


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
        worker_memory: int = 0,
        allowed: Callable[[], int] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.workers = max(1, workers)
        self.epub_limit = max(1, epub_limit)
        self.timeout = timeout
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
        # future -> (task, submitted at, budget in seconds)
        self.in_flight: dict[Future[list[ItemResult] | Spilled], tuple[Task, float, float]] = {}
        self._executor: ProcessPoolExecutor | None = None
        self._warming: list[Future[int]] = []
        self._warm_at: float | None = None
        self._results_dir: str | None = None  # see run_task

    # -- the executor ----------------------------------------------------------------
    def _ensure_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            from loky import ProcessPoolExecutor

            prestart()  # (how the fork server must start: see there)
            if self._results_dir is None:
                try:
                    self._results_dir = own_temp_dir("indexer-results-")
                except OSError:  # no writable temporary folder: results by pipe only
                    pass
            try:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    initializer=_init_worker,
                    initargs=(self.worker_memory, os.getpid(), self._results_dir),
                    context=worker_context(),
                )
            except OSError as e:
                raise cannot_start(e) from None
            # Warm-up pings: deadlines start counting once the pool has answered
            # (a worker is up and has imported the extractors; see _deadline),
            # so a slow start-up is not charged to the first tasks. The pings
            # do not sleep: they sit ahead of the first tasks in the queue.
            self._warming = [self._executor.submit(_ping) for _ in range(self.workers)]
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
        return self.timeout * max(1.0, task.units / TIMEOUT_UNIT_PAGES)

    def _epubs_in_flight(self) -> int:
        return sum(1 for t, _, _ in self.in_flight.values() if t.is_epub)

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
        try:
            fut = executor.submit(run_task, task.items)
        except BrokenProcessPool:
            return False  # it never ran; the caller puts it back
        if self.on_submit is not None:
            self.on_submit(task)
        self.in_flight[fut] = (task, time.monotonic(), self.budget(task))
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
        if any(t.alone for t, _, _ in self.in_flight.values()):
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
            next_deadline = min(self._deadline(s, b) for _, s, b in self.in_flight.values())
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

        task, _, _ = self.in_flight.pop(fut)
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
            except Exception as e:  # the file went missing, or the disk failed
                yield Outcome(task, failure=f"worker error: {one_line(e)}")
                return
        yield Outcome(task, results=results)

    def _crashed(self, task: Task, e: BaseException) -> Iterator[Outcome]:
        how = _crash_description(e)
        victims = [task] + [t for t, _, _ in self.in_flight.values()]
        self.in_flight.clear()
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

    def _deadline(self, submitted: float, budget: float) -> float:
        """A task's time starts when it is submitted, or when the workers are up."""
        warm = self._warm()
        return math.inf if warm is None else max(submitted, warm) + budget

    def _expire(self) -> Iterator[Outcome]:
        now = time.monotonic()
        late = {f for f, (_, s, b) in self.in_flight.items() if now > self._deadline(s, b)}
        if not late:
            return
        expired = [(f, v) for f, v in self.in_flight.items() if f in late]
        others = [v[0] for f, v in self.in_flight.items() if f not in late]
        self.in_flight.clear()
        self._kill_executor()
        self.stats.timeouts += len(expired)
        for _, (task, _, budget) in expired:
            self.log(f"pool: a task timed out after {budget:.0f} s; its worker was killed")
            if len(task.items) == 1:
                yield Outcome(task, failure=f"timed out after {budget:.0f} s")
            else:  # find the slow file: each one again on its own
                for item in task.items:
                    self.add(task.single(item, urgent=True))
        for task in others:
            task.urgent = True
            self.add(task)
