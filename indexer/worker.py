"""What runs in a worker process: one task's extraction, and the worker's set-up.

Why this module exists: the pool's workers are forked from a fork server that
has imported this module (``preload.py``); the main side of the pool
(``pool.py``: queues, deadlines, crashes) is not needed there. A task's
function (``run_task``) turns every failure into data, hands big results over
by file, and beats while it reads: after each page or chapter (the extractors
call ``extract.base.page_read``) its worker touches the task's beat file, at
most every ``BEAT_SECONDS``, so the main process can tell a task that still
reads pages from one whose worker hangs or was stopped (``pool.Pool``'s
deadlines follow progress).

The fault hook (``INDEXER_FAULTS=1``) is for tests only: it makes a worker
crash, exit, hang, stop or exhaust memory on a file whose name says so. It is
off unless that variable is set.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pickle
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, replace

from indexer.errors import ExtractError
from indexer.extract import Extracted, base, extract
from indexer.extract.base import one_line, os_reason
from indexer.launch import when_gone
from indexer.scan import file_stat, sha256_file
from indexer.work import CHANGED, OUT_OF_MEMORY, Item, ItemResult, hash_in_worker

FAULTS_ENV = "INDEXER_FAULTS"
BEAT_SECONDS = 0.2

_memory_cap = 0
_results_dir: str | None = None
_beat_path: str | None = None  # the current task's beat file (run_task)
_beat_at = 0.0
# A task's pickled results larger than this travel by file (see run_task): the
# message loky writes (this, its framing and the work id) stays within PIPE_BUF
# (4,096 bytes on Linux), which a pipe write delivers whole or not at all.
INLINE_RESULT_BYTES = 3584


def init_worker(
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

    base.on_page_read(_beat)

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


def ping() -> int:
    return os.getpid()


def _beat() -> None:
    """The task moves: touch its beat file (at most every BEAT_SECONDS; one
    ``utime``). A failure to touch it is no failure of the task."""
    global _beat_at
    now = time.monotonic()
    if _beat_path is None or now - _beat_at < BEAT_SECONDS:
        return
    _beat_at = now
    try:
        os.utime(_beat_path)
    except OSError:
        pass


def _inject_fault(item: Item, after_extraction: bool = False) -> None:
    """Test-only: misbehave on files whose name asks for it (off unless
    INDEXER_FAULTS=1). The dash-separated words after ``fault-`` in the file
    name say what to do: ``segv``, ``exit``, ``kill``, ``hang``, ``stop``,
    ``memory``, ``raise``, ``slow`` (half a second), or ``rewrite`` (append a
    line to the file once it is extracted, before it is hashed: a file
    written to while it is read); ``range``
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
    elif "stop" in words:  # SIGSTOP: stopped, as a debugger or `kill -STOP` does
        os.kill(os.getpid(), signal.SIGSTOP)
    elif "memory" in words:
        hog = []
        while True:  # until the worker's memory cap stops it
            hog.append(bytearray(64 * 1024 * 1024))
    elif "raise" in words:
        raise RuntimeError("injected fault")
    elif "slow" in words:  # a file that takes a while (work left to interrupt)
        time.sleep(0.5)
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


def run_task(items: tuple[Item, ...], beat: str | None = None) -> list[ItemResult] | Spilled:
    """The function the pool runs: ``run_items``, whose results, when they are
    over INLINE_RESULT_BYTES pickled, are handed over in a file, so that only a
    file name goes through loky's result pipe. A worker killed (SIGKILL, the OOM
    killer) while writing a big result there would leave half a message in the
    pipe, and loky's reader then waits for the rest forever: the run hangs. A
    small message is written whole or not at all (see INLINE_RESULT_BYTES). A
    file left by a killed worker is removed with the folder when the pool closes.
    ``beat``: the task's beat file, made now and touched as pages are read
    (``_beat``), removed at the end."""
    global _beat_path, _beat_at
    if beat is not None:
        try:
            open(beat, "wb").close()
            _beat_path, _beat_at = beat, time.monotonic()
        except OSError:
            pass
    try:
        out = run_items(items)
    finally:
        if _beat_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(_beat_path)
            _beat_path = None
    if _results_dir is None:
        return out
    try:
        data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:  # the text was read, but its pickled copy does not fit
        why = _out_of_memory()
        return [
            r if r.extracted is None else replace(r, extracted=None, error=why, sha256=None)
            for r in out
        ]
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
        started, cpu = time.perf_counter(), time.process_time()
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
                extracted = extract(
                    item.kind, item.path, item.first, item.last, item.limit, ocr=item.ocr
                )
                _inject_fault(item, after_extraction=True)
        except ExtractError as e:
            error = str(e)
        except MemoryError:
            error = _out_of_memory()
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
        cpu = time.process_time() - cpu
        out.append(ItemResult(item, extracted, error, digest, seconds, changed=changed, cpu=cpu))
        extracted = None
        _beat()
    return out


def _out_of_memory() -> str:
    """The reason for a MemoryError, with the room the worker really had."""
    return OUT_OF_MEMORY + (f" (worker limit {_size(_memory_cap)})" if _memory_cap else "")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _not_readable(path: str) -> str:
    """Why ``path`` (which ``file_stat`` refused) cannot be read."""
    try:
        os.stat(path)
    except OSError as e:
        return os_reason(e)
    return "not a regular file (a FIFO, socket or device)"
