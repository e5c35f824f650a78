"""What runs, in what order, and what each result leads to: the scheduling policy.

Why this module exists: the decisions that make a run fast and complete are
pure logic, and are tested here without forking anything
(``tests/test_schedule.py``). No I/O, no processes: ``run.py`` moves outcomes
from the pool through the ``DocumentTracker`` to the writer, and ``pool.py``
runs the tasks this module builds.

* **Units of work** (``work.py``). An ``Item`` is one file, or one page range
  of a PDF; a ``Task`` is what one worker runs at a time (one item, or a group
  of small files); an ``Outcome`` is a task's results, or its failure as a
  whole (crashed, timed out).
* **The probe.** A PDF's first task extracts at most ``probe_pages`` pages and
  learns the page count; a longer document has the rest split into shrinking
  ranges (``chunk_ranges``), queued as urgent tasks, so a massive PDF is spread
  over all workers instead of finishing alone at the end. A large PDF's probe
  (``BIG_PDF_BYTES`` and up, several workers) extracts no page at all: the
  count alone takes 1 ms, a first page 25-50 ms at 5,000 pages (MuPDF loads
  the whole page tree then), which the first range can pay while the others run.
* **Scans** (``--ocr``). A PDF's first task reads text only; where it finds
  scans (``Extracted.images``; or ``--ocr always``), the tracker drops its
  text and sends the whole document out again in small ranges
  (``ocr_ranges``: about ``OCR_CHUNK`` scanned pages each, at least twice as
  many ranges as workers) that recognise them, urgent, each with a deadline
  of ``--ocr-timeout`` per page to recognise on top of the usual one. One
  OCR'd page costs what 500 text pages do. An image file is one task that
  recognises it as it is read.
* **Order.** Tasks run largest first (by file size); the remaining ranges of a
  document already started run before anything else.
* **Grouping.** Files under ``small_file_kb`` (other than EPUBs, which the
  pool throttles by task) are grouped, up to ``GROUP_FILES`` files or
  ``GROUP_BYTES`` per task, to keep inter-process overhead small.
* **Hashing** (the content hash that detects changes and moves). The planner
  hashes the files whose stat changed and the candidates for a move, before
  extracting. A new file is hashed by its worker right after extraction, while
  its bytes are in the page cache (``Item.want_hash``), except when the probe
  finds a long PDF: every worker would then wait for its ranges while one
  hashes, so the main process hashes it while the ranges run
  (``work.hash_in_worker`` is the worker's side of this rule,
  ``DocumentTracker``'s ``start_hash`` the main process's).
* **Documents.** The tracker knows, for every document, which of its tasks are
  still out, what failed, and when it is complete; it then closes it with one
  ``Document`` message (a chunked PDF's ranges go to the writer as
  ``PageRange`` messages as they come, see writer.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from indexer.extract.base import Attached, FailedRange, Meta, Page, Recognised
from indexer.extract.ocr import OcrSpec
from indexer.messages import DocStatus, Document, NewFile, PageRange, Started, ToWriter
from indexer.names import ATTACHED
from indexer.plan import Job
from indexer.scan import FileEntry
from indexer.work import (
    CHANGED,
    Item,
    ItemResult,
    Outcome,
    Task,
    hash_in_worker,
    transient_tries,
    with_tries,
)

GROUP_FILES = 32
GROUP_BYTES = 4 * 1024 * 1024
PAGE_EQUIVALENT_BYTES = 50_000  # EPUB/text bytes counted as one page for deadlines
MIN_CHUNK, TAIL_CHUNK, MAX_CHUNK = 50, 100, 1000
# a range of a scanned PDF holds about this many pages to recognise: one OCR'd
# page costs what 500 text pages do, so scans go out in small ranges
OCR_CHUNK = 8
IMAGE_PAGE_BYTES = 2 * 1024 * 1024  # a multi-page TIFF's pages, guessed for its deadline
EPUB_PICTURE_BYTES = 256 * 1024  # an EPUB's pictures to recognise, guessed likewise
BIG_PDF_BYTES = 1024 * 1024


# --- building tasks ----------------------------------------------------------------


def probe_pages(workers: int) -> int:
    """Pages extracted by a PDF's first task, which also learns the page count;
    the rest of a longer document is split into ranges. Small, so the other
    workers are not idle long while it runs."""
    return 4 * MAX_CHUNK if workers <= 1 else MIN_CHUNK


def chunk_ranges(first: int, last: int, workers: int) -> list[tuple[int, int]]:
    """Page ranges for the rest (``first..last``) of a long PDF.

    With several workers the ranges shrink as the document goes (guided
    scheduling): each is what is left divided by twice the worker count, at
    most MAX_CHUNK and at least TAIL_CHUNK pages. The workers start on big
    ranges, and at the end they finish within a small range of each other,
    whatever made one of them slower. One worker gets equal ranges, at least two."""
    remaining = last - first + 1
    if workers <= 1:
        rounds = max(2, math.ceil(remaining / MAX_CHUNK))
        return split(first, last, max(MIN_CHUNK, math.ceil(remaining / rounds)))
    ranges = []
    a = first
    while a <= last:
        size = math.ceil((last - a + 1) / (2 * workers))
        b = min(last, a + max(TAIL_CHUNK, min(MAX_CHUNK, size)) - 1)
        ranges.append((a, b))
        a = b + 1
    return ranges


def split(first: int, last: int, size: int) -> list[tuple[int, int]]:
    """``first..last`` in ranges of ``size`` pages (the last one shorter)."""
    return [(a, min(last, a + size - 1)) for a in range(first, last + 1, size)]


def range_task(
    e: FileEntry,
    page_count: int | None,
    first: int,
    last: int,
    urgent: bool,
    ocr: OcrSpec | None = None,
    ocr_pages: int = 0,
) -> Task:
    """A task for pages ``first..last`` of the PDF ``e`` (``ocr``: its scans
    recognised, about ``ocr_pages`` of them)."""
    return Task(
        (Item(e.path, "pdf", first, last, stat=(e.size, e.mtime_ns), ocr=ocr),),
        cost=e.size * (last - first + 1) / max(1, page_count or 1),
        units=last - first + 1,
        urgent=urgent,
        ocr_pages=ocr_pages,
    )


def ocr_ranges(page_count: int, scanned_share: float, workers: int) -> list[tuple[int, int]]:
    """Page ranges for a PDF with scans to recognise: about ``OCR_CHUNK``
    scanned pages each (``scanned_share``: the share of its pages that are,
    as its first pages showed), and at least twice as many ranges as
    workers, so that a scanned book is spread over all of them."""
    per_scan = math.ceil(OCR_CHUNK / max(scanned_share, 1 / MAX_CHUNK))
    spread = math.ceil(page_count / (2 * max(1, workers)))
    return split(1, page_count, max(1, min(MAX_CHUNK, per_scan, spread)))


def build_tasks(
    jobs: list[Job], workers: int, small_file_kb: int, ocr: OcrSpec | None = None
) -> list[Task]:
    """The tasks for a plan's jobs: largest first, small files grouped, a
    retried partial PDF's failed ranges in chunk-sized tasks (see the header).
    ``ocr``: those ranges recognise their scans (a first task never does: the
    tracker sends a PDF that has scans out again in small ranges)."""
    small = small_file_kb * 1024
    probe = probe_pages(workers)
    tasks: list[Task] = []
    group: list[Item] = []
    group_bytes = 0
    for job in sorted(jobs, key=lambda j: -j.entry.size):
        e = job.entry
        if job.ranges:  # as recorded: they are chunk-sized already
            for first, last in job.ranges:
                size = OCR_CHUNK if ocr is not None else MAX_CHUNK
                for a, b in split(first, last, size):
                    pages = b - a + 1 if ocr is not None else 0
                    tasks.append(range_task(e, job.page_count, a, b, False, ocr, pages))
            continue
        want_hash = job.sha256 is None
        pages = 0 if workers > 1 and e.size >= BIG_PDF_BYTES else probe
        if ocr is not None and pages == 0:  # a few pages, to tell a scan by
            pages = OCR_CHUNK
        limit = pages if e.kind == "pdf" else None
        item = Item(e.path, e.kind, limit=limit, want_hash=want_hash, stat=(e.size, e.mtime_ns))
        units = pages if e.kind == "pdf" else max(1, e.size // PAGE_EQUIVALENT_BYTES)
        if e.kind == "image":  # a task of its own, recognised as it is read
            frames = max(1, e.size // IMAGE_PAGE_BYTES)  # (a multi-page TIFF: a guess)
            tasks.append(Task((replace(item, ocr=ocr),), cost=e.size, units=1, ocr_pages=frames))
            continue
        if e.kind == "epub" and ocr is not None:  # its pictures recognised as it is read
            pictures = max(1, e.size // EPUB_PICTURE_BYTES)  # (for its deadline: a guess)
            tasks.append(
                Task((replace(item, ocr=ocr),), cost=e.size, units=units, ocr_pages=pictures)
            )
            continue
        if e.kind == "epub" or e.size >= small:
            tasks.append(Task((item,), cost=e.size, units=units))
            continue
        group.append(item)
        group_bytes += e.size
        if len(group) >= GROUP_FILES or group_bytes >= GROUP_BYTES:
            tasks.append(_group_task(group, group_bytes, probe))
            group, group_bytes = [], 0
    if group:
        tasks.append(_group_task(group, group_bytes, probe))
    return tasks


def _group_task(items: list[Item], size: int, probe: int) -> Task:
    units = sum(probe if i.kind == "pdf" else 1 for i in items) + size // PAGE_EQUIVALENT_BYTES
    return Task(tuple(items), cost=size, units=units)


# --- documents ---------------------------------------------------------------------


@dataclass
class Tally:
    """What became of the documents closed so far."""

    indexed: int = 0  # published ok or empty
    empty: int = 0
    partial: int = 0
    failed: int = 0  # became error records
    pages: int = 0  # page rows written
    chunked: int = 0  # PDFs split into page ranges
    attachments: int = 0  # files attached to PDFs, read as documents (failed ones too)
    busy_seconds: float = 0.0  # workers' time on items that came back
    worker_cpu: float = 0.0  # their CPU seconds
    errors: dict[str, int] = field(default_factory=dict)  # error records by kind


def partial_reason(failed: list[FailedRange]) -> str:
    """A partial document's reason: its failed ranges, one line."""
    return "; ".join(f"pages {a}-{b}: {why}" for a, b, why in failed)[:500]


def error_kind(reason: str) -> str:
    """What kind of failure a reason names: its words before the first
    ``:`` or `` (`` ("not a PDF", "timed out", "out of memory")."""
    cut = min((i for i in (reason.find(":"), reason.find(" (")) if i > 0), default=len(reason))
    return reason[:cut].strip()[:60] or "unknown"


@dataclass(frozen=True)
class Closed:
    """A document the tracker has closed, for the progress display."""

    path: str
    status: str  # ok (ok or empty: the writer tells), partial, error
    reason: str | None
    rows: int  # pages with text written


@dataclass
class Step:
    """What one outcome leads to, in order: the messages for the writer, the
    follow-up tasks for the pool, the documents closed, lines for --verbose."""

    messages: list[ToWriter] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    closed: list[Closed] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # for the progress display: page rows read, and bytes of work done (a
    # document's size, shared out over its page ranges as they come back)
    pages: int = 0
    work: int = 0


@dataclass
class _Doc:
    """The tracker's bookkeeping for one document."""

    job: Job
    sha256: str | None
    outstanding: int = 0  # its tasks still out
    page_count: int | None = None
    pages: list[Page] = field(default_factory=list)  # held until complete
    chunked: bool = False
    failed: list[FailedRange] = field(default_factory=list)
    error: str | None = None
    page_rows: int = 0
    hashed: Callable[[], str | None] | None = None  # the main process's hash, when done
    meta: Meta | None = None  # from the task that read page 1
    labels: dict[int, str] = field(default_factory=dict)  # held with the pages
    lines: dict[int, int] = field(default_factory=dict)  # (a text file's)
    images: list[int] = field(default_factory=list)
    recognised: dict[int, Recognised] = field(default_factory=dict)
    attachments: list[Attached] = field(default_factory=list)  # from any of its ranges
    credited: int = 0  # bytes of its size counted as done (Step.work)


# start_hash(path, (size, mtime_ns)) -> a function that waits for the digest
# (None: the file was not that one from start to end, see scan.sha256_file)
HashStarter = Callable[[str, tuple[int, int]], Callable[[], str | None]]


class DocumentTracker:
    """Per-document bookkeeping for a run's tasks (see the header).

    ``start_hash(path, stat)`` starts hashing a file elsewhere (run.py: a
    thread) and returns a function that waits for the digest; it is asked only
    for a long PDF found by its probe. Every result says whether the file was
    the one the scan saw (``ItemResult.changed``): one that was not closes the
    document as an error ``CHANGED``, without text or hash."""

    def __init__(
        self,
        jobs: list[Job],
        tasks: list[Task],
        workers: int,
        start_hash: HashStarter,
        ocr: OcrSpec | None = None,
    ) -> None:
        self.workers = workers
        self.ocr = ocr
        self.start_hash = start_hash
        self.tally = Tally()
        self.docs = {j.entry.path: _Doc(j, j.sha256) for j in jobs}
        for task in tasks:
            for item in task.items:
                doc = self.docs[item.path]
                doc.outstanding += 1
                if doc.job.ranges:
                    doc.chunked = True
                    doc.page_count = doc.job.page_count

    def started(self, task: Task) -> Started | None:
        """The message that marks ``task``'s documents as in progress (a
        later range of a document that is already in progress sends none)."""
        paths = [i.path for i in task.items if i.first == 1 or self.docs[i.path].job.ranges]
        return Started(paths) if paths else None

    def on_outcome(self, outcome: Outcome) -> Step:
        step = Step()
        if outcome.failure is not None:
            for item in outcome.task.items:
                self._failed(step, item, outcome.failure)
        else:
            for result in outcome.results or []:
                self.tally.busy_seconds += result.seconds
                self.tally.worker_cpu += result.cpu
                self._done(step, result)
        return step

    def _failed(self, step: Step, item: Item, reason: str) -> None:
        doc = self.docs[item.path]
        if item.whole:
            doc.error = reason
        else:
            doc.failed.append((item.first, item.last or item.first, reason))
        self._resolved(step, doc)

    def _done(self, step: Step, r: ItemResult) -> None:
        doc = self.docs[r.item.path]
        if r.sha256:
            doc.sha256 = r.sha256
        if r.changed:  # nothing read of it is kept, whichever range this is
            self._changed(doc)
            self._resolved(step, doc)
            return
        if r.error is not None:
            self._failed(step, r.item, r.error)
            return
        x = r.extracted
        assert x is not None
        if self._wants_ocr(r, doc):
            self._send_for_ocr(step, doc, r)
            self._resolved(step, doc)
            return
        doc.page_count = x.page_count
        doc.failed.extend(x.failed)
        if x.meta is not None:
            doc.meta = x.meta
        doc.page_rows += len(x.pages)
        doc.attachments.extend(x.attachments)
        e = doc.job.entry
        step.pages += len(x.pages)
        self._credit(step, doc, e.size * (x.last - x.first + 1) // max(1, x.page_count))
        if r.item.whole and x.last < x.page_count:
            # a long PDF: split the rest across the workers, ahead of other work
            doc.chunked = True
            self.tally.chunked += 1
            ranges = chunk_ranges(x.last + 1, x.page_count, self.workers)
            sizes = sorted({b - a + 1 for a, b in ranges})
            step.notes.append(
                f"chunked: {e.path} ({x.page_count} pages) in {len(ranges)} ranges "
                f"of {sizes[0]} to {sizes[-1]} pages"
            )
            for a, b in ranges:
                # scans further in (a born-digital cover, then a scanned book)
                # are recognised where they are found: a deadline for as many
                # (a hang is still one: no page read in --ocr-timeout)
                scans = b - a + 1 if self.ocr is not None else 0
                step.tasks.append(range_task(e, x.page_count, a, b, True, self.ocr, scans))
                doc.outstanding += 1
            if doc.sha256 is None and r.item.want_hash and not hash_in_worker(r.item, x):
                doc.hashed = self.start_hash(e.path, (e.size, e.mtime_ns))
        if doc.chunked:
            new = None if doc.job.ranges else NewFile(e.kind, e.size, e.mtime_ns)
            step.messages.append(
                PageRange(e.path, x.first, x.last, x.pages, new, x.labels, x.images, x.recognised)
            )
        else:
            doc.pages, doc.labels, doc.lines, doc.images = x.pages, x.labels, x.lines, x.images
            doc.recognised = x.recognised
        self._resolved(step, doc)

    def _wants_ocr(self, r: ItemResult, doc: _Doc) -> bool:
        """A PDF's first task found scans (or ``--ocr always``): it is read
        again in small ranges that recognise them."""
        x = r.extracted
        return (
            self.ocr is not None
            and x is not None
            and r.item.kind == "pdf"
            and r.item.whole  # (a first task: it reads no scan; its ranges do)
            and not doc.job.ranges
            and (bool(x.images) or (self.ocr.mode == "always" and x.page_count > 0))
        )

    def _send_for_ocr(self, step: Step, doc: _Doc, r: ItemResult) -> None:
        """Its first task's text is dropped (every range reads its pages
        again, text and scans alike, and streams them in page order)."""
        x, e, ocr = r.extracted, doc.job.entry, self.ocr
        assert x is not None and ocr is not None
        read = max(1, x.last - x.first + 1)
        share = 1.0 if ocr.mode == "always" else len(x.images) / read
        ranges = ocr_ranges(x.page_count, share, self.workers)
        doc.page_count, doc.chunked = x.page_count, True
        self.tally.chunked += 1
        step.notes.append(
            f"ocr: {e.path} ({x.page_count} pages, {len(x.images)} of the first {read} scanned) "
            f"in {len(ranges)} ranges"
        )
        for a, b in ranges:
            scans = min(b - a + 1, math.ceil((b - a + 1) * share) + 1)
            step.tasks.append(range_task(e, x.page_count, a, b, True, ocr, scans))
            doc.outstanding += 1
        if doc.sha256 is None and r.item.want_hash:
            doc.hashed = self.start_hash(e.path, (e.size, e.mtime_ns))

    @staticmethod
    def _credit(step: Step, doc: _Doc, amount: int) -> None:
        """Count ``amount`` more of the document's bytes as done, never more
        than its size in all (the rest is counted when it closes)."""
        amount = max(0, min(amount, doc.job.entry.size - doc.credited))
        doc.credited += amount
        step.work += amount

    def _changed(self, doc: _Doc) -> None:
        """The file is not what the scan saw: an error without a hash, so that
        the next run, which sees its new stat, reads it again."""
        doc.error, doc.sha256, doc.hashed = CHANGED, None, None

    def _resolved(self, step: Step, doc: _Doc) -> None:
        doc.outstanding -= 1
        if doc.outstanding > 0:
            return
        e, job = doc.job.entry, doc.job
        if doc.hashed is not None:
            doc.sha256 = doc.hashed()
            if doc.sha256 is None:  # it changed while the ranges were read
                self._changed(doc)
        status: DocStatus | None
        error: str | None
        if doc.error is not None:
            status, error, pages, rows = "error", doc.error, [], 0
            if transient_tries(error) is not None:
                error = with_tries(error, job.tries + 1)
        elif doc.failed:
            doc.failed.sort()
            status = "partial"
            error = partial_reason(doc.failed)
            pages, rows = doc.pages, doc.page_rows
        else:  # the writer decides ok or empty
            status, error, pages, rows = None, None, doc.pages, doc.page_rows
        step.messages.append(
            Document(
                path=e.path,
                kind=e.kind,
                size=e.size,
                mtime_ns=e.mtime_ns,
                sha256=doc.sha256,
                status=status,
                page_count=doc.page_count if status != "error" else None,
                pages=pages,
                failed_ranges=doc.failed,
                error=error,
                mode="ranges" if job.ranges else "replace",
                retried=list(job.ranges),
                meta=doc.meta,
                labels=doc.labels if status != "error" else {},
                lines=doc.lines if status != "error" else {},
                images=doc.images if status != "error" else [],
                recognised=doc.recognised if status != "error" else {},
            )
        )
        t = self.tally
        if status == "error":
            t.failed += 1
            kind = error_kind(error or "")
            t.errors[kind] = t.errors.get(kind, 0) + 1
        elif status == "partial":
            t.partial += 1
        else:
            t.indexed += 1
            t.empty += rows == 0 and not job.ranges
        t.pages += rows
        step.closed.append(Closed(e.path, status or "ok", error, rows))
        if status != "error":
            self._attachments(step, doc)
        self._credit(step, doc, e.size)
        doc.pages, doc.labels, doc.lines, doc.images = [], {}, {}, []
        doc.attachments, doc.recognised = [], {}

    def _attachments(self, step: Step, doc: _Doc) -> None:
        """A document of its own for each file attached to ``doc`` (after
        the PDF's, which takes its old attachments out), at ``PDF//NAME``."""
        e, seen = doc.job.entry, set()
        for a in doc.attachments:
            name, n = a.name, 1
            while name in seen:  # (two ranges' annotations may name theirs alike)
                n += 1
                name = f"{a.name} ({n})"
            seen.add(name)
            x, error = a.extracted, a.error
            status: DocStatus | None = None
            if x is None:
                status = "error"
            elif x.failed:
                status = "partial"
                error = partial_reason(x.failed)
            path = e.path + ATTACHED + name
            step.messages.append(
                Document(
                    path=path,
                    kind=a.kind,
                    size=a.size,
                    mtime_ns=e.mtime_ns,
                    sha256=a.sha256 or None,
                    status=status,
                    page_count=x.page_count if x is not None else None,
                    pages=x.pages if x is not None else [],
                    failed_ranges=x.failed if x is not None else [],
                    error=error,
                    meta=x.meta if x is not None else None,
                    labels=x.labels if x is not None else {},
                    lines=x.lines if x is not None else {},
                    images=x.images if x is not None else [],
                )
            )
            t = self.tally
            t.attachments += 1
            rows = len(x.pages) if x is not None else 0
            t.pages += rows
            if status == "error":
                t.failed += 1
                kind = error_kind(error or "")
                t.errors[kind] = t.errors.get(kind, 0) + 1
            step.closed.append(Closed(path, status or "ok", error, rows))
