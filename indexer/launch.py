"""What the ``indexer`` command does first, before anything heavy is imported.

Why this module exists: two things must happen before the CLI (typer) and the
library are imported, and must stay cheap for every command:

* a standard stream the command was started without (``>&-``) gets
  ``/dev/null``, before any child process inherits the gap, and the Python
  interpreters it starts never import from the current directory;
* the machine's limits are fitted before any child inherits them
  (``machine.py``: open files, address space), and the semaphores that runs
  killed earlier left behind are removed;
* an ``index`` run starts the fork server its workers are forked from
  (``prestart``), so that the server's import of the extractors (pymupdf,
  about 0.15 s) runs beside the CLI's own imports, the scan and the plan
  instead of after them.

The fork server's start method is defined here too (``worker_context``), for
the pool (``pool.py``) to use. Only the standard library (and the exception
family, which imports nothing) is imported here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from indexer.errors import IndexerError, StartError
from indexer.machine import (
    fit_address_space,
    mark_semaphores,
    more_descriptors,
    remove_dead_semaphores,
    use_own_multiprocessing_dir,
)

# Imported by the fork server once, before it forks anything (see preload.py).
PRELOAD = ["indexer.preload"]

_context: Any = None


def open_closed_std_streams() -> None:
    """Give a closed fd 0, 1 or 2 ``/dev/null``. Python sets a closed
    standard stream's ``sys`` object to None, which crashes libraries that
    flush it (loky does, before starting each worker), and child processes
    would find fds 0-2 taken by whatever the parent opened next."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # os.open's are not: the workers need it too
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def worker_context() -> Any:
    """The start method for workers: multiprocessing's fork server, which
    imports ``PRELOAD`` once and forks each worker from itself; it is
    single-threaded, so forking it is safe, and it lives until the command
    ends. A child re-runs the main script first (multiprocessing's rule), which
    for the ``indexer`` command is a two-line file importing the light
    ``indexer.main``. Where there is no fork server (Windows), loky's start
    method."""
    global _context
    if _context is None:
        import multiprocessing as mp

        if "forkserver" in mp.get_all_start_methods():
            _context = mp.get_context("forkserver")
            _context.set_forkserver_preload(PRELOAD)
        else:  # pragma: no cover - Windows
            from loky.backend.context import get_context

            _context = get_context("loky")
    return _context


def prestart() -> None:
    """Start the fork server now, without waiting for it: it imports the
    extractors while the caller does other work (the first worker start would
    otherwise wait for that import). Does nothing when it is running.

    The server is started with SIGTERM ignored, and so are the workers and the
    writer it forks: a SIGTERM to the whole process group (systemd stopping a
    job, ``timeout``, ``kill -- -PGID``) is the main process's to handle, which
    stops the workers itself and has the writer commit. Killed by it, the
    server would take the writer's exit status with it (it reports its
    children's), and the writer would look dead while it commits. The first
    call also removes the semaphores of runs that died (``machine.py``)."""
    mark_semaphores()
    remove_dead_semaphores()
    if worker_context().get_start_method() != "forkserver":
        return
    import signal
    import threading
    from multiprocessing import forkserver

    try:
        use_own_multiprocessing_dir()
        if threading.current_thread() is not threading.main_thread():
            forkserver.ensure_running()  # signal handlers can only be set in the main thread
            return
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGTERM, previous)
    except OSError as e:
        raise cannot_start(e) from None


def cannot_start(e: OSError) -> IndexerError:
    """The one line for a machine that does not let the run start its processes."""
    import errno

    if e.errno == errno.EMFILE or e.errno == errno.ENFILE:
        return StartError(
            "cannot start the worker processes: too many open files",
            hint="raise the limit of open files (ulimit -n 1024)",
        )
    if e.errno == errno.ENOMEM or e.errno == errno.EAGAIN:
        return StartError(
            f"cannot start the worker processes: {os.strerror(e.errno).lower()}",
            hint="raise the memory or process limits (ulimit -v, ulimit -u), or use --workers 1",
        )
    if isinstance(e, FileNotFoundError) and "temporary directory" in str(e):
        return StartError(
            "cannot start the worker processes: no writable temporary folder",
            hint="set TMPDIR to a folder you can write to",
        )
    return StartError(f"cannot start the worker processes: {(e.strerror or str(e)).lower()}")


def when_gone(pid: int, then: Callable[[], None], every: float) -> None:
    """Call ``then`` from a daemon thread once process ``pid`` (the main process)
    has died, checking every ``every`` seconds. For the processes forked from
    the fork server (the workers and the writer): their parent is the fork
    server, so a change of parent says nothing. A pid can be reused: its start
    time is compared too."""
    import threading
    import time

    import psutil

    try:
        process = psutil.Process(pid)
        started = process.create_time()
    except psutil.Error:
        process = None

    def alive() -> bool:
        try:
            return (
                process is not None
                and process.create_time() == started
                and process.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False

    def watch() -> None:
        while alive():
            time.sleep(every)
        then()

    threading.Thread(target=watch, name="indexer-watch-main", daemon=True).start()


def may_extract(argv: list[str]) -> bool:
    """Is this command line an ``index`` run (or ``watch``) that may extract? A guess from
    the words alone (the options are parsed later, by the CLI): only an
    ``index`` command that is not ``--dry-run`` or ``--help``. A wrong guess
    costs time, never correctness: a run that extracts starts the fork server
    anyway when it makes its pool, and one that turns out to have nothing to
    extract leaves the server unused until the command exits."""
    return (
        bool(argv)
        and argv[0] in ("index", "watch")
        and not {"--dry-run", "--help", "-h"} & set(argv)
    )


def printable_streams() -> None:
    """stdout and stderr write what their encoding cannot hold as escapes: under
    a locale that is not UTF-8 (``LC_ALL=C`` with UTF-8 mode off) a document's
    name or text would otherwise end the command with a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and stream.encoding.lower().replace("-", "") != "utf8":
                stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):  # replaced by a test's capture, or closed
            pass


def start(argv: list[str]) -> None:
    """The first thing the ``indexer`` command does."""
    open_closed_std_streams()
    printable_streams()
    more_descriptors()
    fit_address_space()
    mark_semaphores()
    # The interpreters the command starts (the fork server, multiprocessing's
    # resource tracker) run ``python -c``, which puts the current directory first
    # on their module path: a folder being indexed that holds an ``indexer``
    # package or a ``psutil.py`` would be imported in place of the real ones.
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    if may_extract(argv):
        try:
            prestart()
        except IndexerError:
            pass  # said in one line when the run needs the server (the CLI is not up yet)
