"""How many workers to start, and how many tasks to let run at each moment.

Why this module exists: "one worker per core" is wrong on a machine that is
busy with other work, short of memory, or limited by a cgroup. The starting
size is computed once (``size_pool``); during the run a governor thread samples
the machine every second and the pool asks it how many tasks may be in flight.

Starting size (documented in the README)::

    cpus    = loky.cpu_count()          # os.cpu_count, CPU affinity, cgroup quota
    busy    = min(load average over 1 minute, cores busy right now)
    idle    = cpus - floor(busy), at least 1
    memory  = (available memory - reserve) // per-worker estimate, at least 1
    workers = min(cpus, idle, memory)   # or --workers / INDEXER_WORKERS

The governor, every ``interval`` seconds:

* memory: available memory below the reserve → allow one task fewer than are
  running (never fewer than one, so the run always finishes); back above
  reserve + one worker's estimate → allow one more;
* CPU: cores kept busy by *other* processes (system CPU use minus ours) take
  their share: allowed ≤ cpus - round(others);
* it records each worker's resident memory (the peak is in the summary).

Every change of the allowance is a logged, counted decision.

"Cores busy right now" is system CPU use sampled from the start of the command
to the sizing of the pool, at least 50 ms (``CpuSample``), and only consulted
when the load average is 1 or more. The load average alone lags by a minute:
right after a bulk run it still counts that run's own workers, and a nightly
re-run started then would needlessly get fewer workers.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

GiB = 1024**3
MiB = 1024**2
DEFAULT_WORKER_ESTIMATE = 400 * MiB  # a pymupdf worker on a large PDF, with headroom


def default_reserve(total: int | None = None) -> int:
    """Memory kept free for the system: 10 % of RAM, at least 512 MiB, at most 4 GiB."""
    total = total if total is not None else psutil.virtual_memory().total
    return int(min(4 * GiB, max(512 * MiB, total // 10)))


def default_worker_memory(total: int | None = None, cpus: int | None = None) -> int:
    """Per-worker memory cap: a fair share of RAM, between 1 and 4 GiB."""
    from loky import cpu_count

    total = total if total is not None else psutil.virtual_memory().total
    cpus = cpus or cpu_count()
    return int(min(4 * GiB, max(1 * GiB, total // (2 * cpus))))


@dataclass(frozen=True)
class Sizing:
    workers: int
    cpus: int
    load: float
    available: int
    reserve: int
    estimate: int
    by_load: int
    by_memory: int
    forced: bool

    def explain(self) -> str:
        if self.forced:
            return f"{self.workers} workers (set by --workers)"
        return (
            f"{self.workers} workers = min({self.cpus} cpus, {self.by_load} idle with "
            f"{self.load:.2f} cores busy, {self.by_memory} fitting in "
            f"{self.available / GiB:.1f} GiB "
            f"available - {self.reserve / GiB:.1f} GiB reserve at "
            f"{self.estimate / MiB:.0f} MiB each)"
        )


def _system_busy_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _our_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its children (writer, workers)."""
    total = 0.0
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


class CpuSample:
    """Cores kept busy by *other* processes between creation and ``busy_cores()``."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.system = _system_busy_seconds()
        self.ours = _our_cpu_seconds()

    def busy_cores(self, min_seconds: float = 0.05) -> float:
        wait = min_seconds - (time.monotonic() - self.started)
        if wait > 0:
            time.sleep(wait)
        elapsed = time.monotonic() - self.started
        system = _system_busy_seconds() - self.system
        ours = _our_cpu_seconds() - self.ours
        return max(0.0, (system - ours) / elapsed)


def size_pool(
    requested: int | None = None,
    reserve: int | None = None,
    estimate: int = DEFAULT_WORKER_ESTIMATE,
    sample: CpuSample | None = None,
) -> Sizing:
    """The starting worker count (see the module header for the formula)."""
    from loky import cpu_count

    cpus = max(1, cpu_count())
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on Linux/macOS
        load = 0.0
    if requested is None and load >= 1:  # below 1 the load average costs no worker
        load = min(load, (sample or CpuSample()).busy_cores())
    vm = psutil.virtual_memory()
    reserve = default_reserve(vm.total) if reserve is None else reserve
    by_load = max(1, cpus - math.floor(load))
    by_memory = max(1, int((vm.available - reserve) // max(1, estimate)))
    if requested is not None:
        workers, forced = max(1, requested), True
    else:
        workers, forced = max(1, min(cpus, by_load, by_memory)), False
    return Sizing(workers, cpus, load, vm.available, reserve, estimate, by_load, by_memory, forced)


@dataclass
class GovernorStats:
    decisions: int = 0
    held_back: int = 0  # decisions that lowered the allowance
    released: int = 0  # decisions that raised it
    min_allowed: int = 0
    peak_worker_rss: int = 0
    samples: int = 0

    def summary(self) -> GovernorSummary:
        return GovernorSummary(
            self.decisions,
            self.held_back,
            self.released,
            self.min_allowed,
            round(self.peak_worker_rss / MiB),
        )


@dataclass(frozen=True)
class GovernorSummary:
    """What a run's summary tells of the governor."""

    decisions: int
    held_back: int
    released: int
    min_allowed: int
    peak_worker_rss_mib: int


class Governor:
    """Samples the machine on a thread; ``allowed()`` is read by the pool."""

    def __init__(
        self,
        workers: int,
        reserve: int,
        estimate: int = DEFAULT_WORKER_ESTIMATE,
        interval: float = 1.0,
        on_decision: Callable[[str], None] | None = None,
        running: Callable[[], int] | None = None,
        cpus: int | None = None,
    ) -> None:
        self.workers = workers
        self.cpus = cpus or psutil.cpu_count() or 1
        self.reserve = reserve
        self.estimate = estimate
        self.interval = interval
        self.on_decision = on_decision
        self.running = running or (lambda: 0)
        self._allowed = workers
        self._others_busy = 0.0
        self.stats = GovernorStats(min_allowed=workers)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._me = psutil.Process()
        self._cpu_cache: dict[int, psutil.Process] = {}
        self._cpu_seen: dict[int, tuple[float, float]] = {}  # pid -> (CPU seconds, when)
        psutil.cpu_percent(None)  # prime the system-wide counter for the first sample

    def allowed(self) -> int:
        return self._allowed

    def start(self) -> Governor:
        self._thread = threading.Thread(target=self._loop, name="indexer-governor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> GovernorStats:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return self.stats

    def __enter__(self) -> Governor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # a sampling hiccup must never stop the run
                continue

    def _our_processes(self) -> list[psutil.Process]:
        """The run's processes (writer, workers, what they run), the same
        ``Process`` objects from one sample to the next (gone ones dropped)."""
        children = self._me.children(recursive=True)
        self._cpu_cache = {c.pid: self._cpu_cache.get(c.pid, c) for c in children}
        return list(self._cpu_cache.values())

    def _cores_used(
        self, proc: psutil.Process, now: float, alive: dict[int, tuple[float, float]]
    ) -> float:
        """Cores one of our processes kept busy since the last sample, its
        children that ended included (a worker's ``tesseract`` runs a second
        or so: a process first seen counts its CPU since it started, where
        ``cpu_percent`` would count it as another program's)."""
        t = proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        alive[proc.pid] = (total, now)
        seen = self._cpu_seen.get(proc.pid)
        if seen is not None:
            return max(0.0, total - seen[0]) / max(1e-3, now - seen[1])
        age = max(1e-3, time.time() - proc.create_time())
        return min(float(self.cpus), (t.user + t.system) / age)

    def sample(self) -> int:
        """Take one sample and adjust the allowance; returns it."""
        self.stats.samples += 1
        available = psutil.virtual_memory().available
        cpus = self.cpus
        system_busy = psutil.cpu_percent(None) / 100.0 * (psutil.cpu_count() or 1)
        ours = 0.0
        now = time.monotonic()
        alive: dict[int, tuple[float, float]] = {}
        for proc in self._our_processes():
            try:
                ours += self._cores_used(proc, now, alive)
                rss = proc.memory_info().rss
                self.stats.peak_worker_rss = max(self.stats.peak_worker_rss, rss)
            except psutil.Error:
                continue
        self._cpu_seen = alive
        try:
            ours += self._me.cpu_percent(None) / 100.0
        except psutil.Error:
            pass
        # smooth the other processes' load so one busy second does not flap the pool
        others = max(0.0, system_busy - ours)
        self._others_busy = 0.5 * self._others_busy + 0.5 * others
        by_cpu = max(1, min(self.workers, cpus - round(self._others_busy)))

        current = self._allowed
        running = max(1, self.running())
        if available < self.reserve:
            target = max(1, min(current, running) - 1)
            why = (
                f"holding back: {available / MiB:.0f} MiB available < "
                f"{self.reserve / MiB:.0f} MiB reserve"
            )
        elif available > self.reserve + self.estimate and current < by_cpu:
            target = current + 1
            why = f"room again: {available / MiB:.0f} MiB available"
        else:
            target = current
            why = ""
        if target > by_cpu:
            target = by_cpu
            why = f"other processes keep {self._others_busy:.1f} cores busy"
        if target != current:
            self._decide(current, target, why)
        return self._allowed

    def _decide(self, current: int, target: int, why: str) -> None:
        self._allowed = target
        self.stats.decisions += 1
        if target < current:
            self.stats.held_back += 1
        else:
            self.stats.released += 1
        self.stats.min_allowed = min(self.stats.min_allowed, target)
        line = f"governor: {current} -> {target} tasks in flight ({why})"
        if self.on_decision is not None:
            self.on_decision(line)
