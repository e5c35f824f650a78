"""indexer/plan.py: deciding from stored facts what a run has to do."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from indexer import store
from indexer.messages import Document
from indexer.plan import Checks, make_plan
from indexer.scan import scan, sha256_file
from indexer.writer import WriterHandle


def index_as(db: Path, root: Path, statuses: dict[str, str]) -> None:
    """Store the files under ``root`` as documents with the given statuses."""
    w = WriterHandle(str(db), [str(root)])
    w.start()
    for path, entry in scan([str(root)]).files.items():
        status = statuses.get(os.path.basename(path))
        ranges = [(2, 3, "timed out")] if status == "partial" else []
        w.send(
            Document(
                path=path,
                kind=entry.kind,
                size=entry.size,
                mtime_ns=entry.mtime_ns,
                sha256=sha256_file(path),
                status=status,  # type: ignore[arg-type]
                page_count=5,
                pages=[(1, "text")],
                failed_ranges=ranges,
                error="boom" if status in ("error", "partial") else None,
            )
        )
    w.finish("ok", {})


def plan_for(db: Path, root: Path, retry_errors: bool = False):  # type: ignore[no-untyped-def]
    conn = store.connect(db)
    try:
        return make_plan(scan([str(root)]), conn, Checks(retry_errors=retry_errors))
    finally:
        conn.close()


def test_every_kind_of_change(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    for name in [
        "same.txt",
        "touched.txt",
        "edited.txt",
        "moved.txt",
        "gone.txt",
        "failed.txt",
        "partial.pdf",
    ]:
        (root / name).write_text(f"content of {name}")
    db = tmp_path / "i.db"
    index_as(db, root, {"failed.txt": "error", "partial.pdf": "partial"})

    os.utime(root / "touched.txt", ns=(1, 10**18))  # new mtime, same bytes
    (root / "edited.txt").write_text("different content")
    (root / "sub").mkdir()
    shutil.move(root / "moved.txt", root / "sub" / "renamed.txt")
    (root / "gone.txt").unlink()
    (root / "new.md").write_text("brand new")

    plan = plan_for(db, root)
    actions = {os.path.relpath(j.entry.path, root): j.action for j in plan.jobs}
    assert actions == {"edited.txt": "changed", "new.md": "new", "partial.pdf": "retry"}
    retry = next(j for j in plan.jobs if j.action == "retry")
    assert retry.ranges == ((2, 3),) and retry.page_count == 5
    assert [(os.path.basename(a), os.path.relpath(b.path, root)) for a, b in plan.moved] == [
        ("moved.txt", "sub/renamed.txt")
    ]
    assert [os.path.basename(e.path) for e in plan.touched] == ["touched.txt"]
    assert [os.path.basename(p) for p in plan.deleted] == ["gone.txt"]
    assert (plan.unchanged, plan.skipped_errors) == (1, 1)

    again = plan_for(db, root, retry_errors=True)
    assert {os.path.basename(j.entry.path) for j in again.jobs if j.action == "retry"} == {
        "failed.txt",
        "partial.pdf",
    }


def test_unreadable_directories_are_not_purged(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "a.txt").write_text("keep me")
    db = tmp_path / "i.db"
    index_as(db, root, {})
    found = scan([str(root)])
    # what a permission error while listing 'locked' looks like to the planner
    found.files.clear()
    found.unreadable_dirs.append(str(root / "locked"))
    found.errors.append((str(root / "locked"), "permission denied"))
    conn = store.connect(db)
    plan = make_plan(found, conn)
    conn.close()
    assert plan.deleted == [] and plan.scan_errors == [(str(root / "locked"), "permission denied")]


def test_only_the_roots_given_are_compared(tmp_path: Path) -> None:
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "f.txt").write_text(d)
    db = tmp_path / "i.db"
    index_as(db, tmp_path, {})
    shutil.rmtree(tmp_path / "two")
    plan = plan_for(db, tmp_path / "one")
    assert plan.deleted == [] and plan.unchanged == 1


def test_a_new_index_plans_everything_new(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    plan = make_plan(scan([str(tmp_path)]), None)
    assert [j.action for j in plan.jobs] == ["new"]


def test_hashing_stops_when_told_even_while_a_read_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file on a stalled network mount blocks its read for ever: the planner
    waits on its hashing threads with the run's stop check, so one Ctrl-C ends
    the run, and the stuck thread (a daemon) does not keep the process alive."""
    from indexer import plan as plan_mod

    stalled = threading.Event()

    def hangs(path: str, expect: object = None) -> str:
        if path.endswith("stalled"):
            stalled.wait(30)  # a read that does not come back
        return "digest of " + path

    monkeypatch.setattr(plan_mod, "sha256_file", hangs)
    assert plan_mod.hash_files(["/a", "/b"], lambda: None) == ["digest of /a", "digest of /b"]
    asked = []

    def stop() -> None:
        asked.append(time.monotonic())
        if len(asked) > 3:
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        plan_mod.hash_files(["/x/stalled", "/y"], stop)
    assert time.monotonic() - started < 5
    stuck = [t for t in threading.enumerate() if t.name == "indexer-plan-hash"]
    assert stuck and all(t.daemon for t in stuck)
    # unattended (cron: nobody presses Ctrl-C), the run goes on without the
    # hash it cannot get: that file is read again by a worker
    started = time.monotonic()
    got = plan_mod.hash_files(["/y", "/x/stalled", "/z"], lambda: None, stall=0.6)
    assert got == ["digest of /y", None, "digest of /z"]
    assert time.monotonic() - started < 5
    stalled.set()
