"""indexer/worker.py: what a worker runs, in this process (the pool's tests
run it in real workers): results by file, and the beats a task gives as it
reads its pages."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from indexer import worker
from indexer.extract import base
from indexer.work import Item
from tools.docgen import write_epub, write_long_pdf


def test_big_results_come_back_by_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_task hands a result over 3.5 KiB over in a file, so only its name goes
    through loky's pipe (a worker killed while writing a big result there would
    leave half a message, and loky waits for the rest forever); small results
    travel as they are. Loading the file gives the same results and removes it."""
    pdf = tmp_path / "long.pdf"
    write_long_pdf(pdf, 20)
    note = tmp_path / "note.txt"
    note.write_text("a short note")
    spill = tmp_path / "results"
    spill.mkdir()
    monkeypatch.setattr(worker, "_results_dir", str(spill))

    big = worker.run_task((Item(str(pdf), "pdf"),))
    assert isinstance(big, worker.Spilled)
    assert [p.name for p in spill.iterdir()] == [Path(big.path).name]
    results = big.load()
    assert list(spill.iterdir()) == []
    direct = worker.run_items((Item(str(pdf), "pdf"),))
    assert [r.extracted for r in results] == [r.extracted for r in direct]
    assert len(pickle.dumps(direct)) > worker.INLINE_RESULT_BYTES

    small = worker.run_task((Item(str(note), "txt"),))
    assert isinstance(small, list) and small[0].extracted is not None
    assert list(spill.iterdir()) == []


@pytest.mark.parametrize("kind", ["pdf", "epub"])
def test_a_task_beats_after_each_page_into_its_beat_file(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool tells a task that reads from a hung one by the beat file's
    mtime: it is made when the task starts, touched after each page or
    chapter (at most every BEAT_SECONDS), and removed when the task ends."""
    doc = tmp_path / f"doc.{kind}"
    if kind == "pdf":
        write_long_pdf(doc, 12)
    else:
        write_epub(doc, [(f"Chapter {i}", f"text of chapter {i}") for i in range(12)])
    beat = tmp_path / "beat-0"
    seen: list[int] = []

    def page_read() -> None:
        os.utime(beat, ns=(0, 0))  # so that a touch shows whatever the clock's resolution
        worker._beat()
        seen.append(os.stat(beat).st_mtime_ns)

    monkeypatch.setattr(worker, "BEAT_SECONDS", 0.0)
    base.on_page_read(page_read)
    try:
        out = worker.run_task((Item(str(doc), kind),), str(beat))
    finally:
        base.on_page_read(None)
    assert isinstance(out, list) and out[0].error is None
    assert len(seen) == 12 and all(ns > 0 for ns in seen)  # touched after every page
    assert not beat.exists()


def test_beats_are_spaced_and_a_missing_beat_file_is_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beat = tmp_path / "beat-1"
    beat.write_bytes(b"")
    os.utime(beat, ns=(0, 0))
    monkeypatch.setattr(worker, "_beat_path", str(beat))
    monkeypatch.setattr(worker, "_beat_at", 0.0)
    worker._beat()
    touched = os.stat(beat).st_mtime_ns
    assert touched > 0
    os.utime(beat, ns=(0, 0))
    worker._beat()  # within BEAT_SECONDS of the last one: not touched
    assert os.stat(beat).st_mtime_ns == 0
    beat.unlink()
    monkeypatch.setattr(worker, "_beat_at", 0.0)
    worker._beat()  # the folder was cleaned: nothing raised
