"""The exception family.

Why this module exists: every error that should reach a user as a one-line
message (not a traceback) is an ``IndexerError``. Library code raises them; only
the CLI edge catches them, prints ``error: message`` (plus a hint) and maps them
to an exit status. Like pip's ``exceptions.py`` it imports nothing from the rest
of the package, so any module can use it.

Per-file problems are *not* exceptions that travel: an extractor raises
``ExtractError`` inside a worker, the worker turns it into data (a reason string)
and the run goes on.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What the process tells cron (documented in the README)."""

    OK = 0  # every file indexed
    SOME_FAILED = 1  # the run finished, some files could not be indexed
    FATAL = 2  # fatal error or bad usage: nothing (more) was done
    INTERRUPTED = 130  # Ctrl-C / SIGTERM: what had arrived was committed


class IndexerError(Exception):
    """Base of every error shown to the user as one line (plus an optional hint)."""

    exit_status = ExitStatus.FATAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(IndexerError):
    """Bad arguments, a missing path, an invalid config value."""


class DatabaseError(IndexerError):
    """The index file cannot be opened, created, written or is not ours."""


class LockHeldError(IndexerError):
    """Another run holds the per-database lock."""


class QueryError(IndexerError):
    """A search query SQLite's FTS5 cannot parse."""


class StartError(IndexerError):
    """The machine does not let the run start its processes (no temporary
    folder, too many open files, too little memory)."""


class WriterDiedError(IndexerError):
    """The writer process stopped unexpectedly; committed work is safe."""


class ExtractError(Exception):
    """A document cannot be read. The message is the one-line reason stored in
    the index's error records; it never carries a traceback."""
