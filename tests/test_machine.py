"""indexer/machine.py: the machine's limits and what killed runs left behind
(the limits through real runs are in test_environment.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from indexer import machine


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_semaphores_of_runs_that_are_gone_are_removed(tmp_path: Path) -> None:
    dead, me = _dead_pid(), os.getpid()
    names = {
        f"sem.loky-{dead}-abcd1234": False,  # its run is gone: removed
        f"sem.mp-indexer-{dead}-efgh5678": False,
        f"sem.loky-{me}-ijkl9012": True,  # this process's own
        "sem.mp-qrst7890": True,  # nobody's we know: kept
        "sem.loky-notapid-x": True,
        f"sem.loky-{os.getppid()}-old": False,  # a live pid, but started after it was made
        f"sem.loky-{os.getppid()}-new": True,  # a live pid that made it
    }
    for name in names:
        (tmp_path / name).write_bytes(b"")
    os.utime(tmp_path / f"sem.loky-{os.getppid()}-old", (0, 0))  # made in 1970
    assert machine.remove_dead_semaphores(str(tmp_path), again=True) == 3
    assert {p.name for p in tmp_path.iterdir()} == {n for n, kept in names.items() if kept}


def test_multiprocessing_semaphores_carry_the_runs_pid() -> None:
    """Every semaphore a run makes can be told to be its own: multiprocessing's
    by the prefix a run gives them, loky's (which replaces multiprocessing's
    once it is imported) by its own."""
    from multiprocessing import get_context

    machine.mark_semaphores()
    lock = get_context("forkserver").Lock()
    name = lock._semlock.name  # type: ignore[attr-defined]
    assert re.match(rf"/(mp-indexer|loky)-{os.getpid()}-", name), name
    assert machine._OURS.match("sem." + name[1:])
