"""indexer/resources.py: starting size and the governor, under real pressure."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from indexer.resources import CpuSample, GiB, Governor, MiB, size_pool
from tests.conftest import FIXTURES, run_cli

HOG = 1536 * MiB


def start_hog(size: int) -> subprocess.Popen[str]:
    """Another process that really takes ``size`` bytes of memory (touched)."""
    hog = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; b = bytearray(int(sys.argv[1]));"
            # every page touched, and each one different: pages alike (a
            # byte in a page of zeros) were merged by the host (KSM), and the
            # hog took a third of what it asked for
            "[b.__setitem__(slice(i, i + 8), i.to_bytes(8, 'little'))"
            " for i in range(0, len(b) - 8, 4096)];"
            "print('ready', flush=True); sys.stdin.read()",
            str(size),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert hog.stdout is not None and hog.stdout.readline().strip() == "ready"
    return hog


def test_governor_holds_back_under_real_memory_pressure_and_recovers() -> None:
    available = psutil.virtual_memory().available
    if available < 3 * HOG:
        pytest.fail(f"this test needs {3 * HOG / GiB:.1f} GiB available")
    # as big as the machine allows (up to 4 GiB): "available" drifts by a few
    # hundred MiB while other processes come and go
    size = max(HOG, min(4 * GiB, available // 5))
    hog = start_hog(size)
    # the reserve sits between "available now" and "available with the hog",
    # as measured: with a large page cache the kernel frees some of it for the
    # hog, and "available" fell by 640 MiB for the hog's 1,536
    with_hog = psutil.virtual_memory().available
    if available - with_hog < size // 4:
        pytest.fail(f"available memory fell by {(available - with_hog) / MiB:.0f} MiB only")
    reserve = with_hog + (available - with_hog) // 2
    decisions: list[str] = []
    # cpus=64: other processes' CPU use (the previous tests') never caps this pool,
    # so what is tested is the memory rule alone, on real memory readings
    gov = Governor(
        workers=2,
        reserve=reserve,
        estimate=64 * MiB,
        on_decision=decisions.append,
        running=lambda: 2,
        cpus=64,
    )
    try:
        assert gov.sample() == 1
        assert gov.sample() == 1  # never below one: the run always finishes
    finally:
        hog.stdin.close()  # type: ignore[union-attr]
        hog.wait(30)
    deadline = time.monotonic() + 10
    while gov.sample() != 2:
        assert time.monotonic() < deadline, decisions
        time.sleep(0.2)
    assert gov.stats.held_back == 1 and gov.stats.released == 1 and gov.stats.min_allowed == 1
    assert decisions[0].startswith("governor: 2 -> 1 tasks in flight (holding back: ")
    assert "MiB available <" in decisions[0] and "reserve" in decisions[0]
    assert decisions[1].startswith("governor: 1 -> 2 tasks in flight (room again")


def test_governor_thread_samples_and_stops() -> None:
    gov = Governor(workers=3, reserve=0, interval=0.05).start()
    time.sleep(0.4)
    stats = gov.stop()
    assert stats.samples >= 3 and gov.allowed() >= 1


def test_sizing_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    s = size_pool(None, reserve=0, estimate=1)
    assert 1 <= s.workers <= s.cpus and not s.forced
    assert s.workers == min(s.cpus, s.by_load, s.by_memory)
    assert "workers = min(" in s.explain()
    assert size_pool(5).workers == 5 and size_pool(5).forced
    # memory: a reserve bigger than what is available leaves room for one worker
    tight = size_pool(None, reserve=psutil.virtual_memory().available + GiB)
    assert tight.workers == 1 and tight.by_memory == 1


def test_cpu_sample_counts_other_processes_not_ours() -> None:
    # a spinner that is not ours: double-forked, so init adopts it
    out = subprocess.run(
        ["sh", "-c", f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    stranger = psutil.Process(int(out.stdout))
    try:
        assert stranger.pid not in {c.pid for c in psutil.Process().children(recursive=True)}
        sample = CpuSample()
        time.sleep(0.6)
        assert sample.busy_cores() >= 0.6
    finally:
        stranger.kill()
    # a spinner of our own (like the writer or a worker) is not "other load"
    ours = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        sample = CpuSample()
        time.sleep(0.6)
        assert sample.busy_cores() < 0.5
    finally:
        ours.kill()
        ours.wait()


def test_a_real_lowered_memory_limit_shrinks_the_pool(tmp_path: Path) -> None:
    """--memory-reserve above what is available: one worker, and the governor
    holds back (the run still completes)."""
    reserve = int(psutil.virtual_memory().available + 2 * GiB)
    proc = run_cli(
        "index",
        FIXTURES / "good",
        "--db",
        tmp_path / "i.db",
        "--verbose",
        "--json",
        "--memory-reserve",
        str(reserve),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["workers"] == 1 and summary["indexed"] == 8
    assert "1 fitting in" in summary["sizing"]
