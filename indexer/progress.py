"""What a run tells the person (or cron) watching it, all on stderr.

Why this module exists: results go to stdout, everything else to stderr, and
one object decides what is shown: ``path: reason`` lines for files that failed
(always, so cron mails only when something went wrong), a progress bar when
stderr is a terminal, ``--verbose`` detail, and the one-line summary (not with
``--quiet``). Error lines go through the progress console so they do not tear
the bar. Library callers get a silent reporter by default.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from indexer.store import text_path

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


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
        self.pages = 0
        self.errors = 0

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
        text = text_path(text)  # a file name that is not UTF-8, as the index shows it
        if self._progress is None and not self.interactive:
            self.stream.write(text + "\n")
            self.stream.flush()
            return
        from rich.text import Text

        console = self._progress.console if self._progress is not None else self.console
        console.print(Text(text, style=style or ""), markup=False, highlight=False)

    def error(self, path: str, reason: str) -> None:
        """A file that could not be indexed: printed even with --quiet."""
        self.errors += 1
        self._print(f"{path}: {reason}", "red" if self.interactive else None)

    def info(self, message: str) -> None:
        """Detail for --verbose."""
        if self.verbose:
            self._print(message, "dim" if self.interactive else None)

    def note(self, message: str) -> None:
        """Shown unless --quiet."""
        if not self.quiet:
            self._print(message)

    # -- the progress bar ------------------------------------------------------
    def start(self, total_files: int, description: str = "indexing") -> None:
        if not self.show_progress or total_files == 0:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files  {task.fields[pages]:,} pages"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total_files, pages=0)

    def advance(self, files: int = 0, pages: int = 0) -> None:
        self.pages += pages
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=files, pages=self.pages)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
