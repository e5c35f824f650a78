"""What the machine allows a run, what runs killed on it left behind, and what
each process of a run used.

Why this module exists: a run starts a fork server, a writer and workers, and
the machine may not let it (a low ``ulimit -n`` or ``ulimit -v``) or may hold
what an earlier run killed with SIGKILL could not remove (temporary folders,
named semaphores in ``/dev/shm``). Each limit is checked before anything
starts, so it is said in one line rather than in a child's traceback; each
leftover carries its run's mark, so the next run removes it and nothing of a
live run. Only the standard library is imported here (``launch.start`` calls
it before anything heavy).
"""

from __future__ import annotations

import os
import re

from indexer.errors import StartError

# Descriptors a run needs: about 28 with 1 or 2 workers, 36 with 8 (measured
# with ``ulimit -n``), and one more per worker.
BASE_DESCRIPTORS, DESCRIPTORS_PER_WORKER = 32, 2
_WANTED_DESCRIPTORS = 4096


def more_descriptors() -> int:
    """Raise the soft limit of open files towards the hard one (up to 4,096),
    as any process may; return the soft limit now (0: unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = _WANTED_DESCRIPTORS if hard == resource.RLIM_INFINITY else min(hard, _WANTED_DESCRIPTORS)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):  # pragma: no cover
            pass
    return 0 if soft == resource.RLIM_INFINITY else soft


def check_descriptors(workers: int) -> None:
    """A limit of open files too low for ``workers`` workers: one line now,
    instead of a traceback from the fork server half-way through a start."""
    limit = more_descriptors()
    needed = BASE_DESCRIPTORS + DESCRIPTORS_PER_WORKER * workers
    if 0 < limit < needed:
        raise StartError(
            f"cannot start {workers} worker process(es): the limit of open files is {limit} "
            f"(ulimit -n), a run needs about {needed}",
            hint="raise it (ulimit -n 1024), or use fewer --workers",
        )


# The address space one process of a run needs (``ulimit -v``): a worker with
# pymupdf loaded maps about 91 MiB before it reads anything, and each thread
# reserves its stack; under 137 MiB the writer could not start its queue's
# thread (measured: 117 MiB failed, 137 MiB ran the fixtures).
MIN_ADDRESS_SPACE = 160 * 2**20


def fit_address_space() -> None:
    """Under an address-space limit, spend less of it on reservations: glibc
    gives each thread that allocates its own malloc arena of 64 MiB of address
    space, and each thread stack reserves 8 MiB; with a few threads (the
    governor, the queues' feeders, loky's manager) a 250 MiB limit left the
    main process unable to start a thread. One arena (``MALLOC_ARENA_MAX``,
    also for the fork server and all it forks, which read it when they start)
    and 1 MiB stacks (our threads do little) leave it for the documents. Does
    nothing without a limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    if resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY:
        return
    import threading

    os.environ.setdefault("MALLOC_ARENA_MAX", "1")
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX, for this process
    except (OSError, AttributeError):  # not glibc
        pass
    try:
        threading.stack_size(1 << 20)
    except (ValueError, RuntimeError):  # pragma: no cover
        pass


def check_address_space() -> None:
    """An address-space limit too low for any process of a run: one line now,
    instead of the writer's and the workers' tracebacks."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY and soft < MIN_ADDRESS_SPACE:
        raise StartError(
            f"cannot start the writer and worker processes: the address-space limit is "
            f"{soft >> 20} MiB (ulimit -v), a run needs at least {MIN_ADDRESS_SPACE >> 20} MiB",
            hint=f"raise it (ulimit -v {4 * MIN_ADDRESS_SPACE >> 10}, or unlimited)",
        )


# The locks that say this process's temporary folders are in use (own_temp_dir).
_held: list[int] = []


def own_temp_dir(prefix: str) -> str:
    """A new temporary folder named for this process (``PREFIX<pid>-XXXX``),
    with a ``.lock`` in it that this process holds (``flock``) as long as it
    lives. A run killed with SIGKILL cannot remove its folders; the next run
    removes those whose lock it can take: their run is gone, whatever pid
    namespace it ran in (a pid alone could belong to a live run in another
    container that shares /tmp)."""
    import fcntl
    import shutil
    import tempfile

    base = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(base) if n.startswith(prefix)]
    except OSError:
        names = []
    for name in names:
        folder = os.path.join(base, name)
        try:
            fd = os.open(os.path.join(folder, ".lock"), os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # held: in use
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base)
    fd = os.open(os.path.join(folder, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held.append(fd)
    return folder


def use_own_multiprocessing_dir() -> None:
    """multiprocessing keeps the fork server's socket in a ``pymp-XXXX`` folder
    that a killed run leaves behind, nameless; give it one of ours instead,
    ``ixmp-<pid>-XXXX`` (``own_temp_dir``), removed at exit like its own."""
    try:
        import shutil
        import tempfile
        from multiprocessing import process, util

        config = process.current_process()._config  # type: ignore[attr-defined]
        # short: the socket in it must fit an AF_UNIX path (108 bytes)
        socket = os.path.join(tempfile.gettempdir(), f"ixmp-{os.getpid()}-12345678", "x" * 18)
        if config.get("tempdir") is None and len(socket) < 100:
            tempdir = own_temp_dir("ixmp-")
            util.Finalize(None, shutil.rmtree, args=(tempdir, True), exitpriority=-100)
            config["tempdir"] = tempdir
    except (AttributeError, ImportError):  # pragma: no cover - another Python
        pass


# Named semaphores (``/dev/shm/sem.NAME``) carry the pid of the process that
# made them: loky names its own ``loky-<pid>-XXXX``; multiprocessing names its
# ``mp-XXXX`` without one, so a run names those ``mp-indexer-<pid>-XXXX``
# (``mark_semaphores``). A run killed with its process group (kill -9, the OOM
# killer) takes its resource tracker with it, and about 14 of them stayed.
SHM = "/dev/shm"
_OURS = re.compile(r"sem\.(?:loky|mp-indexer)-(\d+)-")


def mark_semaphores() -> None:
    """Name this process's multiprocessing semaphores for it."""
    try:
        from multiprocessing import process

        config = process.current_process()._config  # type: ignore[attr-defined]
        config["semprefix"] = f"/mp-indexer-{os.getpid()}"
    except (AttributeError, ImportError):  # pragma: no cover - another Python
        pass


_swept = False


def remove_dead_semaphores(shm: str = SHM, again: bool = False) -> int:
    """Remove the named semaphores of runs that are gone: their pid is not a
    live process, or is one started after the semaphore was made (a pid used
    again). Once per process unless ``again``. Returns how many went."""
    global _swept
    if _swept and not again:
        return 0
    _swept = True
    try:
        names = os.listdir(shm)
    except OSError:
        return 0
    removed = 0
    for name in names:
        m = _OURS.match(name)
        if m is None or int(m[1]) == os.getpid():
            continue
        path = os.path.join(shm, name)
        try:
            made = os.stat(path).st_mtime
            if _alive_since(int(m[1]), made):
                continue
            os.unlink(path)
            removed += 1
        except OSError:
            continue
    return removed


def _alive_since(pid: int, when: float) -> bool:
    """Is ``pid`` a live process that started no later than ``when``?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        pass
    try:
        started = os.stat(f"/proc/{pid}").st_mtime
    except OSError:
        return True  # no /proc: alive is all we know
    return started <= when + 1.0


def own_usage() -> tuple[float, int]:
    """This process's CPU seconds and peak memory (MiB) so far: each process
    of a run reports its own (the runs table's CPU and memory by role)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0.0, 0
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime, int(u.ru_maxrss // 1024)  # (KiB on Linux)
