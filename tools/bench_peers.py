"""Benchmark: indexer against the script a user would write, Recoll, and the ceiling.

    python tools/bench_peers.py [--size 0.2] [--shape mixed|pdf|epub|tiny] [--repeat 3]
                                [--seed 1] [--dir /tmp/indexer-bench-peers] [--sweep 1,2]

Builds (once per size, shape and seed) the corpus of ``docgen.write_peer_corpus``
(real prose; size 1 is issue 13's library), then runs, round by round on the
same corpus, each contender from scratch:

* ``ceiling``: bare processes, one per core, on static shares balanced by
  pages: pymupdf ``get_text()`` for PDFs (big ones split), the EPUB and text
  extractors, text discarded; no pool, no queue, no SQLite;
* ``hand-rolled``: ``tools/handrolled.py``, the 30-line ``multiprocessing``
  script;
* ``recoll``: ``recollindex`` when it is installed (Debian ``recoll``), else
  skipped with a note;
* ``indexer``: ``indexer index`` with default settings, then its no-change
  re-run.

It prints one table: median wall seconds, pages per second, % of the ceiling,
speed against the hand-rolled script, CPU seconds of the whole process tree
(and by role for indexer, from its runs table), peak memory of the process
tree (PSS summed over every process, sampled every 0.2 s), index size, and the
no-change re-run. Also the FTS5 insertion of all the text in one process (the
single writer's floor). ``--sweep 1,2,4`` times indexer with that many workers
each round: the scaling curve and the writer's share of the wall time. A
benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools.docgen import write_peer_corpus  # noqa: E402

CEILING = r"""
import json, sys
sys.modules.setdefault("pymupdf.layout", None)
sys.modules.setdefault("pymupdf4llm", None)
from multiprocessing import Process
import pymupdf
from indexer.extract.epub import extract_epub
from indexer.extract.text import extract_text

def run(share):
    for kind, path, first, last in share:
        if kind == "pdf":
            with pymupdf.open(path) as doc:
                for n in range(first - 1, last):
                    doc.load_page(n).get_text()
        elif kind == "epub":
            extract_epub(path)
        else:
            extract_text(path)

if __name__ == "__main__":
    shares = json.load(open(sys.argv[1]))
    procs = [Process(target=run, args=(s,)) for s in shares]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
"""


@dataclass
class Result:
    wall: float
    cpu: float  # the whole process tree (its own rusage and its children's)
    peak_pss_mib: float
    returncode: int


@dataclass
class Contender:
    name: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    pss: list[float] = field(default_factory=list)
    index_mib: float = 0.0
    roles: dict[str, list[float]] = field(default_factory=dict)
    noop: list[float] = field(default_factory=list)
    note: str = ""


def run_tree(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    """Run ``cmd``; its wall time, the CPU of its whole tree, and the peak PSS
    summed over the tree, sampled every 0.2 s."""
    started = time.perf_counter()
    # (not a pipe nobody reads: recollindex's log filled one and it hung)
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    root = psutil.Process(proc.pid)
    peak = 0.0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        except psutil.NoSuchProcess:
            pass
        peak = max(peak, total / 2**20)
        time.sleep(0.2)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Result(wall, usage.ru_utime + usage.ru_stime, peak, proc.returncode)


def units(root: Path, workers: int) -> list[list[tuple[str, str, int, int]]]:
    """The ceiling's static shares: every file (big PDFs in page ranges),
    greedily balanced by pages over ``workers`` processes."""
    sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
    sys.modules.setdefault("pymupdf4llm", None)  # type: ignore[arg-type]
    import pymupdf

    work: list[tuple[int, tuple[str, str, int, int]]] = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".pdf":
            with pymupdf.open(path) as doc:
                n = doc.page_count
            step = max(50, -(-n // workers)) if n > 200 else n
            for first in range(1, n + 1, step):
                last = min(n, first + step - 1)
                work.append((last - first + 1, ("pdf", str(path), first, last)))
        elif path.suffix == ".epub":
            work.append((25, ("epub", str(path), 1, 1)))
        elif path.suffix == ".txt":
            work.append((1, ("txt", str(path), 1, 1)))
    shares: list[list[tuple[str, str, int, int]]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for cost, unit in sorted(work, key=lambda w: -w[0]):
        i = loads.index(min(loads))
        shares[i].append(unit)
        loads[i] += cost
    return shares


def fts_floor(root: Path, out: Path) -> tuple[float, float]:
    """Seconds to insert all the corpus's text into an FTS5 table in one
    process (the text extracted first, untimed), and its MB."""
    import pymupdf

    texts: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.suffix in (".pdf", ".epub", ".txt"):
            try:
                with pymupdf.open(path) as doc:
                    texts.extend(page.get_text() for page in doc)
            except Exception:
                pass
    out.unlink(missing_ok=True)
    conn = sqlite3.connect(out)
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text)")
    started = time.perf_counter()
    with conn:
        conn.executemany("INSERT INTO t VALUES (?)", ((t,) for t in texts))
    seconds = time.perf_counter() - started
    conn.close()
    return seconds, sum(len(t.encode()) for t in texts) / 1e6


def recoll_config(base: Path, root: Path) -> Path:
    conf = base / "recoll-conf"
    shutil.rmtree(conf, ignore_errors=True)
    conf.mkdir(parents=True)
    (conf / "recoll.conf").write_text(
        f"topdirs = {root}\ndbdir = {base / 'recoll-db'}\nnoaspell = 1\n"
    )
    return conf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=float, default=0.2)
    ap.add_argument("--shape", choices=["mixed", "pdf", "epub", "tiny"], default="mixed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/indexer-bench-peers"))
    ap.add_argument("--sweep", default="", help="worker counts to time indexer with, e.g. 1,2,4")
    args = ap.parse_args()
    base = args.dir.resolve()
    root = base / f"corpus-{args.shape}-{args.size}-{args.seed}"
    marker = root / ".counts.json"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        counts = write_peer_corpus(root, args.size, args.seed, args.shape)
        marker.write_text(json.dumps(counts))
        print(f"corpus built in {time.perf_counter() - t0:.0f} s")
    counts = json.loads(marker.read_text())
    pages = counts["pdf_pages"] + counts["chapters"] + sum(1 for _ in root.rglob("*.txt"))
    cores = os.cpu_count() or 1
    print(f"corpus: {root} {counts}; {pages:,} pages and chapters; {cores} cores")

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    shares = base / "ceiling-shares.json"
    shares.write_text(json.dumps(units(root, cores)))
    ceiling_script = base / "ceiling.py"
    ceiling_script.write_text(CEILING)
    contenders = {n: Contender(n) for n in ("ceiling", "hand-rolled", "recoll", "indexer")}
    recoll = shutil.which("recollindex")
    if recoll is None:
        contenders["recoll"].note = "not installed (Debian package recoll): skipped"
    sweep = [int(x) for x in args.sweep.split(",") if x]
    sweeps: dict[int, list[float]] = {n: [] for n in sweep}
    writer_share: dict[int, list[float]] = {n: [] for n in sweep}

    for _ in range(args.repeat):
        c = contenders["ceiling"]
        r = run_tree([sys.executable, str(ceiling_script), str(shares)], env)
        c.walls.append(r.wall), c.cpus.append(r.cpu), c.pss.append(r.peak_pss_mib)

        c, db = contenders["hand-rolled"], base / "handrolled.db"
        db.unlink(missing_ok=True)
        r = run_tree([sys.executable, str(REPO / "tools" / "handrolled.py"), str(root), str(db)])
        c.walls.append(r.wall), c.cpus.append(r.cpu), c.pss.append(r.peak_pss_mib)
        c.index_mib = db.stat().st_size / 2**20

        if recoll is not None:
            c = contenders["recoll"]
            conf = recoll_config(base, root)
            shutil.rmtree(base / "recoll-db", ignore_errors=True)
            # its Python filters need the system's python3 (its modules), not
            # a virtual environment's or pyenv's first on PATH: they hung there
            system = {**os.environ, "PATH": "/usr/bin:/bin"}
            r = run_tree([recoll, "-c", str(conf), "-z"], system)
            c.walls.append(r.wall), c.cpus.append(r.cpu), c.pss.append(r.peak_pss_mib)
            c.index_mib = sum(f.stat().st_size for f in (base / "recoll-db").rglob("*")) / 2**20
            c.noop.append(run_tree([recoll, "-c", str(conf)], system).wall)

        c, db = contenders["indexer"], base / "indexer.db"
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        command = [sys.executable, "-m", "indexer", "index", str(root), "--db", str(db), "-q"]
        r = run_tree(command, env, cwd=REPO)
        c.walls.append(r.wall), c.cpus.append(r.cpu), c.pss.append(r.peak_pss_mib)
        c.index_mib = db.stat().st_size / 2**20
        conn = sqlite3.connect(db)
        summary = json.loads(conn.execute("SELECT summary FROM runs").fetchone()[0])
        conn.close()
        for role, seconds in summary.get("cpu", {}).items():
            c.roles.setdefault(role, []).append(seconds)
        # (its fork server's children are not the command's to reap: the
        # tree's rusage misses them, the roles it stored do not)
        c.cpus[-1] = max(c.cpus[-1], sum(summary.get("cpu", {}).values()))
        c.noop.append(run_tree(command, env, cwd=REPO).wall)

        for n in sweep:
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            r = run_tree([*command, "--workers", str(n)], env, cwd=REPO)
            sweeps[n].append(r.wall)
            conn = sqlite3.connect(db)
            s = json.loads(conn.execute("SELECT summary FROM runs").fetchone()[0])
            conn.close()
            writer_share[n].append(s.get("cpu", {}).get("writer", 0) / r.wall)

    ceiling = statistics.median(contenders["ceiling"].walls)
    handrolled = statistics.median(contenders["hand-rolled"].walls)
    print()
    print(
        "| contender | wall s (median) | pages/s | % of ceiling | × hand-rolled | CPU s "
        "| peak PSS MiB | index MiB | no-change s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in contenders.values():
        if not c.walls:
            print(f"| {c.name} | {c.note} | | | | | | | |")
            continue
        wall = statistics.median(c.walls)
        cpu = f"{statistics.median(c.cpus):.1f}"
        if c.roles:
            cpu += (
                " ("
                + ", ".join(
                    f"{role} {statistics.median(v):.1f}" for role, v in sorted(c.roles.items())
                )
                + ")"
            )
        print(
            f"| {c.name} | {wall:.2f} {[round(w, 1) for w in c.walls]} | {pages / wall:,.0f} "
            f"| {100 * ceiling / wall:.0f} % | {handrolled / wall:.2f}× | {cpu} "
            f"| {max(c.pss):.0f} | {c.index_mib:.0f} | "
            + (f"{statistics.median(c.noop):.2f}" if c.noop else "")
            + " |"
        )
    seconds, mb = fts_floor(root, base / "fts-floor.db")
    print(
        f"\nFTS5 insertion of all {mb:.0f} MB of text in one process: {seconds:.1f} s "
        f"({mb / seconds:.1f} MB/s): the single writer's floor"
    )
    if sweep:
        print("\n| workers | wall s (median) | speed-up over 1st | writer CPU ÷ wall |")
        print("| --- | --- | --- | --- |")
        first = statistics.median(sweeps[sweep[0]])
        for n in sweep:
            wall = statistics.median(sweeps[n])
            share = statistics.median(writer_share[n])
            print(f"| {n} | {wall:.2f} | {first / wall:.2f}× | {100 * share:.0f} % |")
    print(
        f"\nmachine: {cores} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
