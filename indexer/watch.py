"""``indexer watch PATH...``: keep an index current as files change, without cron.

Why this module exists: cron re-reads the folders every night; a watcher
reacts within seconds. It holds the run lock for as long as it watches (no
other run writes meanwhile) and runs the same incremental pass as ``indexer
index`` (plan -> pool -> writer): once at the start, then whenever the file
system has reported changes (inotify and its peers, through ``watchdog``)
and has then been quiet for ``quiet`` seconds, so a file being written is
read once it is complete and a burst of changes is one pass. Each pass
compares the whole of the roots with the index, so a move is a move, and
events the kernel dropped (a full inotify queue, which watchdog only logs:
``_Overflow``) are caught up by the pass that follows; one runs every
``rescan`` seconds anyway. The pure part, when a pass
is due, is ``Debouncer``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.config import Config
from indexer.errors import UsageError
from indexer.lock import RunLock
from indexer.progress import Reporter
from indexer.run import RunSummary
from indexer.run import index as run_index
from indexer.scan import normalize_roots


@dataclass
class Debouncer:
    """When the changes seen so far are due for a pass: ``quiet`` seconds
    after the last one, or ``longest`` seconds after the first (a file that
    never stops changing is still read now and then)."""

    quiet: float
    longest: float
    first: float | None = None
    last: float | None = None

    def changed(self, now: float) -> None:
        self.first = now if self.first is None else self.first
        self.last = now

    def due(self, now: float) -> bool:
        if self.first is None or self.last is None:
            return False
        return now - self.last >= self.quiet or now - self.first >= self.longest

    def wait(self, now: float) -> float | None:
        """Seconds until due (None: nothing seen)."""
        if self.first is None or self.last is None:
            return None
        return max(0.0, min(self.last + self.quiet, self.first + self.longest) - now)

    def reset(self) -> None:
        self.first = self.last = None


class _Overflow(logging.Handler):
    """watchdog says that the kernel dropped events (a full inotify queue)
    only in a log record: such a record makes a pass due, which compares
    every file with the index, like any pass. Its other records are not
    shown (logging would print its warnings on stderr)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.on_change = on_change

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_change()


def _observer(roots: list[str], on_change: Callable[[], None]) -> Any:
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:
        raise UsageError(
            "indexer watch needs the watchdog package",
            hint="pip install 'indexer[watch]'",
        ) from None

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            if getattr(event, "event_type", "") not in ("opened", "closed_no_write"):
                on_change()

    logging.getLogger("watchdog").addHandler(_Overflow(on_change))
    observer = Observer()
    for root in roots:
        observer.schedule(Handler(), root, recursive=True)
    return observer


def watch(
    paths: list[str],
    config: Config,
    reporter: Reporter,
    *,
    quiet: float = 2.0,
    rescan: float = 600.0,
    longest: float = 60.0,
    on_pass: Callable[[RunSummary], None] | None = None,
    stop: threading.Event | None = None,
) -> RunSummary | None:
    """Watch ``paths`` until ``stop`` is set or Ctrl-C; ``on_pass`` gets each
    pass's summary. Returns the last pass's summary when a pass was
    interrupted (None otherwise)."""
    roots = normalize_roots(paths)
    db = Path(config.db).absolute()
    stop = stop or threading.Event()
    changes = Debouncer(quiet, longest)
    seen = threading.Condition()

    def on_change() -> None:
        with seen:
            changes.changed(time.monotonic())
            seen.notify()

    lock = RunLock(db).acquire()
    observer = None
    try:
        # watching starts before the first pass: what changes during it is seen
        observer = _observer(roots, on_change)
        observer.start()
        while not stop.is_set():
            summary = run_index(roots, config, reporter=reporter, locked=True)
            last_pass = time.monotonic()
            if on_pass is not None:
                on_pass(summary)
            if summary.interrupted:
                return summary
            with seen:
                while not stop.is_set():
                    now = time.monotonic()
                    if changes.due(now) or now - last_pass >= rescan:
                        changes.reset()
                        break
                    wait = changes.wait(now)
                    left = rescan - (now - last_pass)
                    seen.wait(timeout=min(0.5, left if wait is None else min(wait, left)))
        return None
    finally:
        for handler in logging.getLogger("watchdog").handlers[:]:
            if isinstance(handler, _Overflow):
                logging.getLogger("watchdog").removeHandler(handler)
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        lock.release()
