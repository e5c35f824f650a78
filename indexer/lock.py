"""One run at a time per index file.

Why this module exists: cron starts ``indexer index`` on a schedule whether or
not the last run has finished. The lock is an ``flock`` on ``<db>.lock`` beside
the index: the kernel releases it when the holder dies, however it dies, so a
lock left by a dead process is simply taken over. The file records the
holder's pid and start time for the message a second run prints. Readers
(``indexer search``) never take it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from datetime import datetime
from pathlib import Path

from indexer.errors import DatabaseError, LockHeldError


class RunLock:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = Path(str(db) + ".lock")
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            pid, started = self.path.read_text().split(maxsplit=1)
            return f"pid {pid}, started {started.strip()}"
        except (OSError, ValueError):
            return "pid unknown"

    def acquire(self, wait: bool = False) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                # the usual case: the default index.db in a read-only current folder
                what = (
                    f"its lock file {self.path} is not writable"
                    if os.access(self.db.parent, os.W_OK)
                    else f"its folder {self.db.parent} is "
                    + ("read-only" if e.errno == errno.EROFS else "not writable")
                )
                raise DatabaseError(
                    f"cannot write the index {self.db}: {what}",
                    hint="choose an index file in a folder you can write to: --db FILE",
                ) from None
            raise DatabaseError(f"cannot create the lock file {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                raise LockHeldError(
                    f"another run ({self.holder()}) holds the lock on {self.path.with_suffix('')}",
                    hint="use --wait to wait for it",
                ) from None
            fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C interrupts the wait
        started = datetime.now().astimezone().isoformat(timespec="seconds")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {started}\n".encode(), 0)
        except OSError as e:
            os.close(fd)
            db = self.path.with_suffix("")
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise DatabaseError(f"cannot write the index {db}: the disk is full") from None
            raise DatabaseError(f"cannot write the lock file {self.path}: {e.strerror}") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
