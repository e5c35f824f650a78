"""What a run tells the person (or cron) watching it, all on stderr.

Why this module exists: results go to stdout, everything else to stderr, and
one object decides what is shown: ``path: reason`` lines for files that failed
(always, so cron mails only when something went wrong), a progress bar when
stderr is a terminal, ``--verbose`` detail, and the one-line summary (not with
``--quiet``). Error lines go through the progress console so they do not tear
the bar. Library callers get a silent reporter by default. How a run's summary
reads (``summary_line``, ``details_line``, ``planned_lines``) is here too.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from indexer.names import text_of, text_path

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from indexer.run import RunSummary


# Characters that must not reach a terminal raw from a document's text or a
# file name: C0 and C1 controls and DEL (ESC starts the sequences that retitle
# a window, clear the screen or forge a link; CR and LF forge lines), the line
# and paragraph separators, and the bidirectional overrides that reorder what
# is shown.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe for a terminal, one line: each character of
    ``_UNPRINTABLE`` as a ``\\xNN`` or ``\\uNNNN`` escape (JSON output stays
    exact; only what is printed for people goes through here)."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


class Reporter:
    """rich is imported only for a terminal (colours, the bar): a run from cron
    or a script writes plain lines and starts about 50 ms sooner."""

    def __init__(
        self,
        quiet: bool = False,
        verbose: bool = False,
        progress: bool | None = None,
        stream: TextIO | None = None,
        silent: bool = False,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.verbose = verbose and not quiet
        self.silent = silent
        self.interactive = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        self.show_progress = (
            (not quiet and not silent and self.interactive) if progress is None else progress
        )
        self._console: Console | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.progress_every = 0.0  # seconds between progress lines off a terminal (0: none)
        self.started = 0.0
        self.files = self.total_files = 0
        self.done, self.total_bytes = 0, 1
        self.current = ""
        self.pages = 0
        self.errors = 0
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None
        self._lock = threading.Lock()  # (the ticker prints from its own thread)

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)
        return self._console

    @classmethod
    def silent_reporter(cls) -> Reporter:
        return cls(quiet=True, progress=False, silent=True)

    def _print(self, text: str, style: str | None = None) -> None:
        if self.silent:
            return
        # no undecodable byte and no terminal control sequence from a file
        # name or a reason
        text = printable(text_of(text))
        if self._progress is None and not self.interactive:
            with self._lock:
                self.stream.write(text + "\n")
                self.stream.flush()
            return
        from rich.text import Text

        console = self._progress.console if self._progress is not None else self.console
        console.print(Text(text, style=style or ""), markup=False, highlight=False)

    def error(self, path: str, reason: str) -> None:
        """A file that could not be indexed: printed even with --quiet."""
        self.errors += 1
        self._print(f"{text_path(path)}: {reason}", "red" if self.interactive else None)

    def warning(self, message: str, hint: str | None = None) -> None:
        """Something the whole run lacks (printed even with --quiet, once)."""
        self._print(f"warning: {message}", "yellow" if self.interactive else None)
        if hint:
            self._print(f"hint: {hint}")

    def info(self, message: str) -> None:
        """Detail for --verbose."""
        if self.verbose:
            self._print(message, "dim" if self.interactive else None)

    def note(self, message: str) -> None:
        """Shown unless --quiet."""
        if not self.quiet:
            self._print(message)

    # -- progress -----------------------------------------------------------------
    def start(self, total_files: int, total_bytes: int = 0, description: str = "indexing") -> None:
        """Progress is counted in bytes of the files to read (a big PDF's
        share grows as its page ranges come back), so the percentage and the
        time left do not leap when a large file comes first. A terminal gets
        a bar; otherwise a line every ``progress_every`` seconds, if set."""
        self.total_files, self.total_bytes = total_files, max(1, total_bytes)
        self.started = time.monotonic()
        self.files = self.pages = self.done = 0  # (a watcher's next pass)
        self._stopped.clear()
        if total_files and self.progress_every > 0 and not self.quiet and not self.silent:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()
        if not self.show_progress or total_files == 0:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f} %"),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[left]}"),
            TextColumn("[dim]{task.fields[current]}"),
            console=self.console,
            transient=True,
            refresh_per_second=4,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            description, total=self.total_bytes, counts="", left="", current=""
        )
        self._refresh()

    def working(self, path: str) -> None:
        """A task on ``path`` started (the file shown beside the bar)."""
        self.current = path
        self._refresh()

    def advance(self, files: int = 0, pages: int = 0, work: int = 0) -> None:
        self.files += files
        self.pages += pages
        self.done += work
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is None or self._task is None:
            return
        snap = self.snapshot()
        name = os.path.basename(self.current)
        self._progress.update(
            self._task,
            completed=self.done,
            counts=f"{snap.files:,}/{snap.total_files:,} files  {snap.pages:,} pages  "
            f"{snap.rate:,.0f} pages/s" + (f"  {snap.errors:,} failed" if snap.errors else ""),
            left=left_text(snap.left),
            current=printable(text_of(name if len(name) <= 40 else name[:39] + "…")),
        )

    def snapshot(self) -> Snapshot:
        elapsed = time.monotonic() - self.started if self.started else 0.0
        return Snapshot(
            elapsed,
            self.files,
            self.total_files,
            self.done,
            self.total_bytes,
            self.pages,
            self.errors,
        )

    def _tick(self) -> None:
        while not self._stopped.wait(self.progress_every):
            self._print(progress_line(self.snapshot()))

    def stop(self) -> None:
        self._stopped.set()
        self.errors = 0
        if self._ticker is not None:
            self._ticker.join(timeout=1)
            self._ticker = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@dataclass(frozen=True)
class Snapshot:
    """How far a run is (``Reporter.snapshot``), for the bar and the log line."""

    elapsed: float
    files: int
    total_files: int
    done: int  # bytes of work
    total_bytes: int
    pages: int
    errors: int

    @property
    def rate(self) -> float:
        return self.pages / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def left(self) -> float | None:
        """Seconds left, from the run's average so far (not a recent window,
        which one slow or fast file swings): None until 2 % or 10 s is done."""
        if self.done <= 0 or (self.done < self.total_bytes / 50 and self.elapsed < 10):
            return None
        return self.elapsed * (self.total_bytes - self.done) / self.done


def left_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"about {seconds} s left"
    if seconds < 3600:
        return f"about {seconds // 60} min left"
    return f"about {seconds // 3600} h {seconds % 3600 // 60:02d} min left"


def progress_line(s: Snapshot) -> str:
    """The line a run logs every ``--progress-every`` seconds off a terminal."""
    left = left_text(s.left)
    return (
        f"progress: {100 * s.done / s.total_bytes:.0f} % of {_bytes(s.total_bytes)}, "
        f"{s.files:,} of {s.total_files:,} files, {s.pages:,} pages "
        f"({s.rate:,.0f}/s), {s.errors:,} failed, {s.elapsed:.0f} s" + (f", {left}" if left else "")
    )


def _bytes(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# --- the run summary, in words ------------------------------------------------------


def summary_line(s: RunSummary) -> str:
    """The one line every run ends with (see the README, Commands)."""
    if s.dry_run:
        return (
            f"dry run: {s.new} new, {s.changed} changed, {s.moved} moved, "
            f"{s.deleted} deleted{_of_them_excluded(s)}, {s.unchanged + s.touched} unchanged, "
            f"{s.retried} to retry, {s.skipped_errors} failed before (skipped)"
            + (f", {s.suspects} suspected of ending earlier runs" if s.suspects else "")
            + (f", {s.unsupported:,} of unsupported types" if s.unsupported else "")
        )
    if s.interrupted:
        todo = s.new + s.changed + s.retried
        done = s.indexed + s.failed + s.partial
        return (
            f"interrupted: {done} of {todo} files done, the next run does the rest; "
            f"{s.pages:,} pages in {s.seconds:.1f} s"
        )
    events = []
    if s.workers:
        events.append(f"{s.workers} worker{'s' if s.workers > 1 else ''}")
    if s.pool is not None and s.pool.crashes:
        events.append(f"{s.pool.crashes} worker crash(es)")
    if s.pool is not None and s.pool.timeouts:
        events.append(f"{s.pool.timeouts} timeout(s)")
    if s.governor is not None and s.governor.held_back:
        events.append(f"governor held back {s.governor.held_back}x")
    return (
        f"{s.new} new, {s.changed} changed, {s.moved} moved, "
        f"{s.deleted} deleted{_of_them_excluded(s)}, {s.failed} failed"
        + (f", {s.partial} partial" if s.partial else "")
        + (f", {s.retried} retried" if s.retried else "")
        + f"; {s.pages:,} pages in {s.seconds:.1f} s"
        + (f" ({', '.join(events)})" if events else "")
        + "".join(f"; {part}" for part in _left_alone(s))
    )


def _of_them_excluded(s: RunSummary) -> str:
    return f" ({s.excluded:,} excluded)" if s.excluded else ""


def _left_alone(s: RunSummary) -> list[str]:
    """What a run did not read, said in its summary: files that did not
    change, files that failed before and still fail (they are not tried
    again, and make the exit status 1), files of no supported type."""
    parts = []
    if s.unchanged or s.touched:
        parts.append(f"{s.unchanged + s.touched:,} unchanged")
    if s.skipped_errors:
        parts.append(f"{s.skipped_errors:,} still failing (--retry-errors to retry)")
    if s.unsupported:
        many = "s" if s.unsupported > 1 else ""
        parts.append(f"{s.unsupported:,} file{many} of unsupported types skipped")
    return parts


def details_line(s: RunSummary) -> str:
    """What --verbose adds at the end of a run: the pool and the governor."""
    p, g = s.pool, s.governor
    return (
        f"pool: {s.sizing}; {p.submitted if p else 0} tasks, "
        f"{s.chunked} PDFs chunked, "
        f"{p.crashes if p else 0} crashes, {p.timeouts if p else 0} timeouts, "
        f"{p.rebuilds if p else 0} rebuilds; governor: {g.decisions if g else 0} decisions "
        f"({g.held_back if g else 0} held back), peak worker memory "
        f"{g.peak_worker_rss_mib if g else 0} MiB"
    )


def planned_lines(s: RunSummary) -> Iterator[str]:
    """A dry run's paths, for --verbose: ``action: path``, in the form the
    index stores them (``names.text_path``, see ``run._plan_summary``)."""
    p = s.planned
    for action, paths in (
        ("new", p.new),
        ("changed", p.changed),
        ("retry", p.retry),
        ("moved", p.moved),
        ("deleted", p.deleted),
        ("excluded", p.excluded),
        ("unsupported", p.unsupported),
    ):
        for path in paths:
            yield f"{action}: {printable(path)}"


def unsupported_lines(s: RunSummary) -> Iterator[str]:
    """The files of no supported type a run skipped (--verbose)."""
    for path in s.planned.unsupported:
        yield f"unsupported: {printable(path)}"
