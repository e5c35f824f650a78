"""indexer/schedule.py: building tasks and tracking documents, with made-up
outcomes (no process is forked here)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from indexer.extract.base import Extracted
from indexer.messages import Document, NewFile, PageRange, Started
from indexer.plan import Job
from indexer.scan import FileEntry
from indexer.schedule import (
    BIG_PDF_BYTES,
    GROUP_FILES,
    MAX_CHUNK,
    TAIL_CHUNK,
    DocumentTracker,
    Step,
    build_tasks,
    chunk_ranges,
    probe_pages,
)
from indexer.work import Item, ItemResult, Outcome, Task, hash_in_worker


def job(path: str, size: int = 1000, kind: str | None = None, **kw: object) -> Job:
    kind = kind or path.rsplit(".", 1)[1]
    return Job(FileEntry(path, kind, size, 1), "new", **kw)  # type: ignore[arg-type]


def result(item: Item, first: int, last: int, count: int, **kw: object) -> ItemResult:
    pages = [(n, f"text of page {n}") for n in range(first, last + 1)]
    x = Extracted(page_count=count, first=first, last=last, pages=pages)
    return ItemResult(item, x, None, kw.get("sha256"), 0.01)  # type: ignore[arg-type]


def done(task: Task, *results: ItemResult) -> Outcome:
    return Outcome(task, results=list(results))


class Hasher:
    """A stand-in for run.py's hashing thread: records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, path: str, stat: tuple[int, int]) -> Callable[[], str | None]:
        self.asked.append(path)
        return lambda: "hash-of-" + path


def tracker_for(jobs: list[Job], workers: int = 2) -> tuple[DocumentTracker, list[Task], Hasher]:
    tasks = build_tasks(jobs, workers, small_file_kb=128)
    hasher = Hasher()
    return DocumentTracker(jobs, tasks, workers, hasher), tasks, hasher


def documents(step: Step) -> list[Document]:
    return [m for m in step.messages if isinstance(m, Document)]


# --- building tasks ----------------------------------------------------------------


@pytest.mark.parametrize(("pages", "workers"), [(5364, 2), (5364, 16), (100_000, 16), (900, 4)])
def test_ranges_shrink_so_the_workers_finish_together(pages: int, workers: int) -> None:
    ranges = chunk_ranges(2, pages, workers)
    assert [p for a, b in ranges for p in range(a, b + 1)] == list(range(2, pages + 1))
    sizes = [b - a + 1 for a, b in ranges]
    assert max(sizes) <= MAX_CHUNK and min(sizes[:-1]) >= TAIL_CHUNK
    assert sizes[:-1] == sorted(sizes[:-1], reverse=True)  # big ones first
    assert sizes[0] > sizes[-2] or sizes[0] == TAIL_CHUNK
    assert len(ranges) >= 2 * workers or sizes[0] == TAIL_CHUNK
    one = [b - a + 1 for a, b in chunk_ranges(1, pages, 1)]  # one worker: equal ranges
    assert len(one) >= 2 and max(one) <= MAX_CHUNK and max(one) - min(one) <= len(one)


def test_small_files_are_grouped_largest_first_and_epubs_never() -> None:
    jobs = [job(f"/t{i}.txt", size=100 + i) for i in range(GROUP_FILES + 3)]
    jobs += [job("/small.epub", size=10), job("/big.pdf", size=500_000)]
    tasks = build_tasks(jobs, workers=2, small_file_kb=128)
    # a group is a task once it is full; an EPUB is a task of its own at once
    assert [[i.path for i in t.items][:1] + [len(t.items)] for t in tasks] == [
        ["/big.pdf", 1],
        ["/t34.txt", GROUP_FILES],
        ["/small.epub", 1],
        ["/t2.txt", 3],
    ]
    assert [t.is_epub for t in tasks] == [False, False, True, False]
    texts = [int(i.path[2:].split(".")[0]) for t in tasks for i in t.items if i.kind == "txt"]
    assert texts == sorted(texts, reverse=True)  # largest first
    assert all(i.want_hash for t in tasks for i in t.items)  # no hash known yet


def test_the_probe_of_a_pdf() -> None:
    jobs = [job("/small.pdf", 200_000), job("/large.pdf", BIG_PDF_BYTES), job("/k.txt", 200_000)]
    limits = {t.items[0].path: t.items[0].limit for t in build_tasks(jobs, 2, 128)}
    # several workers: a large PDF's probe extracts no page, only the count
    assert limits == {"/small.pdf": probe_pages(2), "/large.pdf": 0, "/k.txt": None}
    limits = {t.items[0].path: t.items[0].limit for t in build_tasks(jobs, 1, 128)}
    assert limits["/large.pdf"] == probe_pages(1) > probe_pages(2)


def test_a_retried_partial_pdf_gets_only_its_failed_ranges() -> None:
    retry = job("/p.pdf", 1000, ranges=((3, 4), (10, 10 + 2 * MAX_CHUNK)), page_count=5000)
    tasks = build_tasks([retry], 2, 128)
    got = [(t.items[0].first, t.items[0].last) for t in tasks]
    assert got == [(3, 4), (10, 9 + MAX_CHUNK), (10 + MAX_CHUNK, 9 + 2 * MAX_CHUNK)] + [
        (10 + 2 * MAX_CHUNK, 10 + 2 * MAX_CHUNK)
    ]
    assert not any(t.urgent for t in tasks)


# --- the tracker -------------------------------------------------------------------


def test_a_small_document_is_closed_by_its_one_outcome() -> None:
    tracker, tasks, hasher = tracker_for([job("/a.txt", 10), job("/b.txt", 20)])
    (task,) = tasks
    started = tracker.started(task)
    assert started == Started(["/b.txt", "/a.txt"])
    b, a = task.items  # largest first
    step = tracker.on_outcome(done(task, result(b, 1, 1, 1), result(a, 1, 1, 1, sha256="ha")))
    docs = documents(step)
    assert [(d.path, d.status, d.pages, d.sha256) for d in docs] == [
        ("/b.txt", None, [(1, "text of page 1")], None),
        ("/a.txt", None, [(1, "text of page 1")], "ha"),
    ]
    assert step.tasks == [] and hasher.asked == []
    assert [(c.path, c.status, c.rows) for c in step.closed] == [
        ("/b.txt", "ok", 1),
        ("/a.txt", "ok", 1),
    ]
    assert (tracker.tally.indexed, tracker.tally.pages, tracker.tally.failed) == (2, 2, 0)


def test_a_long_pdf_is_split_after_its_probe_and_closed_after_its_last_range() -> None:
    tracker, (probe,), hasher = tracker_for([job("/long.pdf", 500_000)])
    item = probe.items[0]
    assert item.limit == probe_pages(2)
    first = result(item, 1, probe_pages(2), 900)
    assert not hash_in_worker(item, first.extracted)  # the main process hashes it
    step = tracker.on_outcome(done(probe, first))
    assert documents(step) == [] and step.closed == []
    ranges = [(t.items[0].first, t.items[0].last) for t in step.tasks]
    assert ranges == chunk_ranges(probe_pages(2) + 1, 900, 2)
    assert all(t.urgent for t in step.tasks)
    assert step.messages == [
        PageRange("/long.pdf", 1, probe_pages(2), first.extracted.pages, NewFile("pdf", 500_000, 1))  # type: ignore[union-attr]
    ]
    assert hasher.asked == ["/long.pdf"] and "(900 pages) in" in step.notes[0]
    # later ranges are not "started" again; they come back in any order
    assert all(tracker.started(t) is None for t in step.tasks)
    later = step.tasks
    for t in reversed(later[1:]):
        s = tracker.on_outcome(
            done(t, result(t.items[0], t.items[0].first, t.items[0].last or 0, 900))
        )
        assert documents(s) == [] and isinstance(s.messages[0], PageRange)
    t = later[0]
    last = tracker.on_outcome(
        done(t, result(t.items[0], t.items[0].first, t.items[0].last or 0, 900))
    )
    (doc,) = documents(last)
    assert (doc.status, doc.page_count, doc.pages, doc.sha256) == (
        None,
        900,
        [],
        "hash-of-/long.pdf",
    )
    assert last.closed[0].rows == 900 and tracker.tally.pages == 900 and tracker.tally.chunked == 1


def test_a_failed_range_makes_the_document_partial() -> None:
    tracker, (probe,), _ = tracker_for([job("/long.pdf", 500_000)])
    step = tracker.on_outcome(done(probe, result(probe.items[0], 1, 50, 400)))
    out = step.tasks
    for t in out[:-1]:
        tracker.on_outcome(done(t, result(t.items[0], t.items[0].first, t.items[0].last or 0, 400)))
    bad = out[-1].items[0]
    last = tracker.on_outcome(Outcome(out[-1], failure="worker crashed (signal 11, SIGSEGV)"))
    (doc,) = documents(last)
    assert doc.status == "partial"
    assert doc.failed_ranges == [(bad.first, bad.last, "worker crashed (signal 11, SIGSEGV)")]
    assert doc.error == f"pages {bad.first}-{bad.last}: worker crashed (signal 11, SIGSEGV)"
    assert last.closed[0].status == "partial" and tracker.tally.partial == 1


def test_a_task_that_fails_whole_fails_each_of_its_documents() -> None:
    tracker, (task,), _ = tracker_for([job("/a.txt", 10), job("/b.md", 10)])
    step = tracker.on_outcome(Outcome(task, failure="timed out after 60 s"))
    # a timeout may not happen again: the reason counts the tries
    again = "timed out after 60 s (try 1 of 3: tried again on the next run)"
    assert [(d.path, d.status, d.error, d.page_count) for d in documents(step)] == [
        ("/a.txt", "error", again, None),
        ("/b.md", "error", again, None),
    ]
    assert tracker.tally.failed == 2 and tracker.tally.indexed == 0


def test_an_extractor_error_and_an_empty_document() -> None:
    tracker, (task,), _ = tracker_for([job("/bad.pdf", 10), job("/scan.pdf", 5)])
    bad, scan = task.items
    err = ItemResult(bad, None, "encrypted: a password is required", None, 0.0)
    empty = ItemResult(scan, Extracted(page_count=3, first=1, last=3), None, "h", 0.0)
    step = tracker.on_outcome(done(task, err, empty))
    assert [(d.path, d.status, d.error) for d in documents(step)] == [
        ("/bad.pdf", "error", "encrypted: a password is required"),
        ("/scan.pdf", None, None),
    ]
    t = tracker.tally
    assert (t.failed, t.indexed, t.empty, t.pages) == (1, 1, 1, 0)


def test_a_retry_of_some_ranges_is_held_by_the_writer_and_replaces_only_them() -> None:
    retry = job("/p.pdf", 1000, ranges=((3, 4),), page_count=10, sha256="known")
    tracker, (task,), hasher = tracker_for([retry])
    assert tracker.started(task) == Started(["/p.pdf"])  # a range, but the document's first task
    step = tracker.on_outcome(done(task, result(task.items[0], 3, 4, 10)))
    part, doc = step.messages
    assert isinstance(part, PageRange) and part.new is None  # not streamed
    assert isinstance(doc, Document)
    assert (doc.mode, doc.retried, doc.sha256, doc.page_count) == ("ranges", [(3, 4)], "known", 10)
    assert hasher.asked == [] and tracker.tally.empty == 0


def test_a_transient_failure_on_its_last_try_says_it_sticks() -> None:
    tracker, (task,), _ = tracker_for([job("/a.txt", 10, tries=2)])
    step = tracker.on_outcome(Outcome(task, failure="worker crashed (signal 9, SIGKILL)"))
    assert [d.error for d in documents(step)] == ["worker crashed (signal 9, SIGKILL) (try 3 of 3)"]
    tracker, (task,), _ = tracker_for([job("/b.txt", 10)])
    err = ItemResult(task.items[0], None, "encrypted: a password is required", None, 0.0)
    step = tracker.on_outcome(done(task, err))  # not transient: no tries
    assert [d.error for d in documents(step)] == ["encrypted: a password is required"]


def test_error_kinds_are_the_words_before_the_detail() -> None:
    from indexer.schedule import error_kind

    assert error_kind("not a PDF (the file is a PNG image)") == "not a PDF"
    assert error_kind("timed out: no page read for 60 s (try 1 of 3)") == "timed out"
    assert error_kind("out of memory (worker limit 300 MiB)") == "out of memory"
    assert error_kind("encrypted: a password is required") == "encrypted"
    assert error_kind("text file larger than 256 MiB") == "text file larger than 256 MiB"
    assert error_kind("") == "unknown"


def test_progress_counts_a_long_pdfs_bytes_as_its_ranges_come_back() -> None:
    """Step.work shares a document's size over its page ranges (the probe
    too), and never counts more than the size in all: a failed document's
    rest is counted when it closes. Step.pages is the page rows each brings."""
    tracker, tasks, _ = tracker_for([job("/long.pdf", 900_000), job("/bad.pdf", 5_000)])
    probe, bad_task = sorted(tasks, key=lambda t: t.items[0].path != "/long.pdf")
    first = result(probe.items[0], 1, probe_pages(2), 900)
    step = tracker.on_outcome(done(probe, first))
    assert step.work == 900_000 * probe_pages(2) // 900 and step.pages == probe_pages(2)
    works, pages = [step.work], [step.pages]
    for t in step.tasks:
        item = t.items[0]
        s = tracker.on_outcome(done(t, result(item, item.first, item.last or 0, 900)))
        works.append(s.work)
        pages.append(s.pages)
    assert all(w > 0 for w in works) and sum(works) == 900_000 and sum(pages) == 900
    failed = tracker.on_outcome(Outcome(bad_task, failure="worker crashed"))
    assert (failed.work, failed.pages, len(failed.closed)) == (5_000, 0, 1)


def test_a_pdf_whose_first_task_finds_scans_is_read_again_in_small_ocr_ranges() -> None:
    from indexer.extract.ocr import OcrSpec
    from indexer.schedule import OCR_CHUNK, ocr_ranges

    spec = OcrSpec("auto", "eng", 300)
    jobs = [job("/a/scan.pdf", size=2000)]
    tasks = build_tasks(jobs, 2, 128, spec)
    (task,) = tasks
    assert task.items[0].ocr is None  # the first task reads text only
    tracker = DocumentTracker(jobs, tasks, 2, Hasher(), spec)
    x = Extracted(page_count=100, first=1, last=50, pages=[], images=list(range(1, 51)))
    step = tracker.on_outcome(done(task, ItemResult(task.items[0], x, None, "h", 0.1)))
    assert not step.messages  # its text is dropped: the ranges read every page again
    ranges = [(t.items[0].first, t.items[0].last) for t in step.tasks]
    assert ranges == ocr_ranges(100, 1.0, 2) and ranges[0][0] == 1 and ranges[-1][1] == 100
    assert all(b - a + 1 <= OCR_CHUNK for a, b in ranges)
    assert all(t.items[0].ocr == spec and t.urgent and t.ocr_pages > 0 for t in step.tasks)
    # the ranges stream in page order, their OCR records with them
    record = ("tesseract 5.3.0", "eng", 300, 91.0)
    messages = []
    for t in step.tasks:
        a, b = t.items[0].first, t.items[0].last or 0
        got = Extracted(
            100,
            a,
            b,
            [(n, f"page {n}") for n in range(a, b + 1)],
            recognised={n: record for n in range(a, b + 1)},
        )
        messages += tracker.on_outcome(done(t, ItemResult(t.items[0], got, None, None, 1))).messages
    ranges_sent = [m for m in messages if isinstance(m, PageRange)]
    assert sum(len(m.recognised) for m in ranges_sent) == 100
    assert isinstance(messages[-1], Document) and messages[-1].status is None


def test_a_text_pdf_is_not_read_again_for_ocr_and_scans_share_their_ranges() -> None:
    from indexer.extract.ocr import OcrSpec
    from indexer.schedule import ocr_ranges

    spec = OcrSpec("auto", "eng", 300)
    jobs = [job("/a/text.pdf")]
    tasks = build_tasks(jobs, 2, 128, spec)
    tracker = DocumentTracker(jobs, tasks, 2, Hasher(), spec)
    step = tracker.on_outcome(done(tasks[0], result(tasks[0].items[0], 1, 10, 10)))
    assert not step.tasks and isinstance(step.messages[-1], Document)
    # a book with a scan in 50 pages gets ranges of about OCR_CHUNK scans each
    assert ocr_ranges(1000, 1 / 50, 2)[0] == (1, 250)
    assert ocr_ranges(1000, 1 / 50, 16)[0] == (1, 32)
    assert ocr_ranges(3, 1.0, 2) == [(1, 1), (2, 2), (3, 3)]


def test_scans_after_a_pdfs_first_pages_are_recognised_in_its_ranges() -> None:
    """A born-digital cover, then a scanned book: the first task sees no
    scan, so the ranges that follow recognise what they find, each with a
    deadline for as many pages as it has."""
    from indexer.extract.ocr import OcrSpec

    spec = OcrSpec("auto", "eng", 300)
    jobs = [job("/a/book.pdf", size=BIG_PDF_BYTES * 2)]
    tasks = build_tasks(jobs, 2, 128, spec)
    (task,) = tasks
    assert task.items[0].limit == 8  # (a few pages to tell a scan by, where none would be read)
    tracker = DocumentTracker(jobs, tasks, 2, Hasher(), spec)
    step = tracker.on_outcome(done(task, result(task.items[0], 1, 8, 400)))
    assert step.tasks and all(t.items[0].ocr == spec for t in step.tasks)
    assert all(t.ocr_pages == (t.items[0].last or 0) - t.items[0].first + 1 for t in step.tasks)
    # without --ocr: the same ranges, no OCR, no OCR deadline
    plain = build_tasks(jobs, 2, 128)
    step = DocumentTracker(jobs, plain, 2, Hasher()).on_outcome(
        done(plain[0], result(plain[0].items[0], 1, 0, 400))
    )
    assert all(t.items[0].ocr is None and t.ocr_pages == 0 for t in step.tasks)
