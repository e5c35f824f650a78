"""Compare what the scan found with what the index holds, before extracting anything.

Why this module exists: a nightly run must only do the work that changed, and
must decide it from cheap facts first. For each file under the roots:

* same size and mtime_ns as stored: unchanged (nothing to do); with
  ``verify``, its hash decides (content rewritten under an old stat, as
  ``touch -d`` or a restore from backup can leave it);
* different stat: a streamed SHA-256 decides; same hash means only the stored
  stat is refreshed ("touched"), a different hash re-extracts the file;
* not in the index: new, unless a vanished document under the same roots had
  the same size and the same hash, in which case it "moved" and only its path
  changes (its pages stay);
* in the index but not found under a root that was scanned: deleted (never
  below a directory the scan could not read, nor below a root on another
  device than when it was last indexed: an unmounted disk leaves an empty mount
  point on the parent's device, and must not empty the index; a root that was
  simply emptied is on its old device, and is purged);
* failed before and unchanged: skipped, unless ``retry_errors``, or unless the
  failure may not happen again (timed out, out of memory, a worker crash:
  ``work.TRANSIENT``), which is tried again on the next runs up to
  ``TRANSIENT_TRIES`` times in all;
* partial (some page ranges failed): only the failed ranges are retried;
* planned by runs that died while it was being extracted, ``SUSPECT_AFTER``
  times, and unchanged since: a suspect (it may be what ends the runs: a
  machine-killing document), recorded as an error instead of tried again, so
  that one poison file cannot stop every nightly run. It is retried when it
  changes, or with ``retry_errors``.

Roots not named in this run are not looked at. Hashes are computed on a few
daemon threads (hashlib releases the GIL) while the main thread waits on them
with ``stop`` (one Ctrl-C ends a run whose planner reads a stalled network
mount; a thread stuck in that read does not keep the process alive).
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from indexer import store
from indexer.names import container_of, stored_bytes, text_path
from indexer.scan import FileEntry, ScanResult, sha256_file
from indexer.work import TRANSIENT_TRIES, transient_tries

HASH_THREADS = 4
SUSPECT_AFTER = 3  # runs that died while a file was being extracted
UNMOUNTED = (
    "empty, on another device than when it was indexed (a disk that is not mounted?): "
    "nothing indexed below it was purged"
)
OTHER_DEVICE = (
    "on another device than when it was indexed (another disk mounted here?): "
    "nothing indexed below it was purged this time"
)


def suspect_reason(deaths: int) -> str:
    return f"suspected of ending the run: it was being indexed when {deaths} runs died"


@dataclass(frozen=True)
class Checks:
    """How hard a run looks at the files it finds (``indexer index`` flags)."""

    retry_errors: bool = False  # files that failed before, even if unchanged
    reindex: bool = False  # every file is read again, changed or not
    repair: bool = False  # so is every document that lost its pages (another tool)
    verify: bool = False  # every file with an unchanged stat is hashed
    # OCR is on, in these languages: so is every PDF with scans not read in them
    ocr_languages: str | None = None


@dataclass(frozen=True)
class Job:
    """A file to extract (whole, or only some page ranges)."""

    entry: FileEntry
    action: str  # new, changed, retry
    sha256: str | None = None  # known when the planner hashed it
    ranges: tuple[tuple[int, int], ...] = ()  # retry of a partial document: these ranges only
    page_count: int | None = None  # known for a retried partial document
    tries: int = 0  # a transient failure's tries so far (work.transient_tries)


@dataclass
class Plan:
    roots: list[str]
    jobs: list[Job] = field(default_factory=list)
    moved: list[tuple[str, FileEntry]] = field(default_factory=list)  # (old path, new file)
    touched: list[FileEntry] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    verified: int = 0  # hashed for --verify (those that differed are "changed")
    skipped_errors: int = 0  # failed before, unchanged, not retried
    resumed: int = 0  # jobs an interrupted run left unfinished, planned again
    # the device of each root that is not empty, recorded by this run (runs.summary)
    devices: dict[str, int] = field(default_factory=dict)
    # jobs not tried again: in progress when SUSPECT_AFTER runs died (with that count)
    suspects: list[tuple[Job, int]] = field(default_factory=list)
    scan_errors: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # (scan.ScanResult.unsupported)
    excluded: list[str] = field(default_factory=list)  # of deleted: at or below an exclusion

    def count(self, action: str) -> int:
        return sum(1 for j in self.jobs if j.action == action)

    def counts(self) -> dict[str, int]:
        return {
            "new": self.count("new"),
            "changed": self.count("changed"),
            "retry": self.count("retry"),
            "moved": len(self.moved),
            "touched": len(self.touched),
            "deleted": len(self.deleted),
            "unchanged": self.unchanged,
            "skipped_errors": self.skipped_errors,
            "resumed": self.resumed,
            "suspects": len(self.suspects),
            "scan_errors": len(self.scan_errors),
            "unsupported": len(self.unsupported),
            "excluded": len(self.excluded),
        }


def _below(path: str, dirs: list[str]) -> bool:
    return any(path.startswith(d.rstrip(os.sep) + os.sep) for d in dirs)


def _moved(plan: Plan, doc: store.DocRow, entry: FileEntry) -> None:
    plan.moved.append((doc.path, entry))
    if doc.status == "partial":
        plan.jobs.append(_retry_ranges(entry, doc))


def _elsewhere(
    conn: sqlite3.Connection, roots: list[str], new: list[FileEntry]
) -> dict[int, list[store.DocRow]]:
    """Documents outside the roots that a new file may be, moved between
    roots (``indexer index A`` after it moved from B): by size, those whose
    file is gone from a folder that is still there (not an unmounted disk,
    whose files are not gone)."""
    if not new:
        return {}
    paths = store.sized_outside(conn, roots, {e.size for e in new})
    out: dict[int, list[store.DocRow]] = defaultdict(list)
    for path in paths:
        real = os.fsdecode(stored_bytes(path))
        if os.path.lexists(real) or not os.path.isdir(os.path.dirname(real)):
            continue
        doc = store.documents(conn, [path]).get(path)
        if doc is not None and doc.sha256:
            out[doc.size].append(doc)
    return out


def _excluded(deleted: list[str], excluded: list[str]) -> list[str]:
    """The deleted documents that an exclusion left out (not gone from disk)."""
    if not excluded:
        return []
    marks = {text_path(p) for p in excluded}
    out = []
    for path in deleted:
        up = path
        while up not in marks and os.path.dirname(up) != up:
            up = os.path.dirname(up)
        if up in marks:
            out.append(path)
    return out


def hash_files(paths: list[str], stop: Callable[[], None], stall: float = 60.0) -> list[str | None]:
    """``sha256_file`` of each path, on up to HASH_THREADS daemon threads;
    ``stop`` is called while waiting (it raises to end the run, and the
    threads then take no more files). When no hash has finished for
    ``stall`` seconds (a read that hangs on a stalled mount), the files not
    hashed yet are left unknown (None: read again by a worker, whose own
    deadline follows its progress), and the run goes on without them."""
    results: list[str | None] = [None] * len(paths)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    finished: queue.SimpleQueue[int] = queue.SimpleQueue()
    cancelled = threading.Event()
    for i in range(len(paths)):
        todo.put(i)

    def work() -> None:
        while not cancelled.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[i] = sha256_file(paths[i])
            finally:
                finished.put(i)

    for _ in range(min(HASH_THREADS, len(paths))):
        threading.Thread(target=work, name="indexer-plan-hash", daemon=True).start()
    done = [False] * len(paths)
    try:
        for _ in paths:
            waited = 0.0
            while True:
                stop()
                try:
                    done[finished.get(timeout=0.2)] = True
                    break
                except queue.Empty:
                    waited += 0.2
                    if waited >= stall:
                        return [r if ok else None for r, ok in zip(results, done, strict=True)]
    finally:
        cancelled.set()
    return results


def make_plan(
    scan: ScanResult,
    conn: sqlite3.Connection | None,
    checks: Checks = Checks(),
    stop: Callable[[], None] = lambda: None,
    stall: float = 60.0,
) -> Plan:
    """The plan for ``scan`` against the index behind ``conn`` (None: no index
    yet); ``checks``: see there (``repair``: a document that lost its pages is
    'ok' with no page rows). ``stop`` and ``stall``: see ``hash_files``."""
    plan = Plan(roots=scan.roots, scan_errors=list(scan.errors), unsupported=scan.unsupported)
    stats = store.stats_under(conn, scan.roots) if conn is not None else {}
    # files attached to a PDF come and go with it (the writer): not planned
    stats = {path: row for path, row in stats.items() if container_of(path) is None}
    leftover = store.jobs_under(conn, scan.roots) if conn is not None else {}
    pageless = (
        store.pageless_under(conn, scan.roots) if conn is not None and checks.repair else set()
    )
    if conn is not None and checks.ocr_languages:
        pageless |= store.unrecognised_under(conn, scan.roots, checks.ocr_languages)
    retry_errors = checks.retry_errors

    # the index holds paths in their text form (names.text_path); the entries
    # keep the real path, which the workers open
    found = {text_path(path): entry for path, entry in scan.files.items()}
    unreadable = [text_path(d) for d in scan.unreadable_dirs]
    recorded = store.root_devices(conn, scan.roots) if conn is not None else {}
    for root, device in scan.devices.items():
        if root not in scan.empty_roots:
            plan.devices[root] = device  # recorded by this run (not for an empty root)
        was = recorded.get(text_path(root))
        if was is not None and was != device:
            if any(_below(path, [text_path(root)]) for path in stats):
                why = UNMOUNTED if root in scan.empty_roots else OTHER_DEVICE
                plan.scan_errors.append((root, why))
                unreadable.append(text_path(root))
    new: list[FileEntry] = []
    differ: list[FileEntry] = []
    # same stat, but the full row is needed: partial documents and, with
    # retry_errors, failed ones
    need_row: list[FileEntry] = []
    verify: list[FileEntry] = []  # same stat, hashed for --verify
    for path, entry in found.items():
        known = stats.get(path)
        if known is None and entry.kind == "image" and not checks.ocr_languages:
            plan.unsupported.append(entry.path)  # (a picture is read by OCR only)
        elif known is None:
            new.append(entry)
        elif checks.reindex or path in pageless:
            plan.jobs.append(Job(entry, "changed"))  # hashed by its worker
        elif known[:3] != (entry.size, entry.mtime_ns, entry.kind):
            differ.append(entry)
        elif known[3] == "error":  # its reason tells whether it is tried again
            need_row.append(entry)
        elif known[3] == "partial":
            need_row.append(entry)
        elif checks.verify:
            verify.append(entry)
        else:
            plan.unchanged += 1
    vanished_paths = [path for path in stats if path not in found and not _below(path, unreadable)]
    # full rows (with hashes) only for the few files that need them
    docs = (
        store.documents(
            conn,
            [text_path(e.path) for e in differ + need_row + verify] + vanished_paths,
        )
        if conn is not None
        else {}
    )
    for entry in need_row:
        _same_content(plan, entry, docs[text_path(entry.path)], retry_errors, touched=False)
    to_hash = [(entry, docs[text_path(entry.path)]) for entry in differ + verify]
    vanished = [docs[path] for path in vanished_paths]
    by_size: dict[int, list[store.DocRow]] = defaultdict(list)
    for doc in vanished:
        if doc.sha256 and doc.status != "error":
            by_size[doc.size].append(doc)
    # a new file may also be a document moved here from outside the roots
    elsewhere = _elsewhere(conn, scan.roots, new) if conn is not None else {}
    move_candidates = [e for e in new if e.size in by_size or e.size in elsewhere]

    hashes = hash_files(
        [e.path for e, _ in to_hash] + [e.path for e in move_candidates], stop, stall
    )
    changed_hashes = hashes[: len(to_hash)]
    new_hashes = dict(zip((e.path for e in move_candidates), hashes[len(to_hash) :], strict=True))
    plan.verified = len(verify)
    for i, ((entry, doc), digest) in enumerate(zip(to_hash, changed_hashes, strict=True)):
        if digest is not None and digest == doc.sha256 and doc.kind == entry.kind:
            if i >= len(differ):  # hashed for --verify: its stat was the same
                plan.unchanged += 1
            else:
                _same_content(plan, entry, doc, retry_errors, touched=True)
        else:
            plan.jobs.append(Job(entry, "changed", digest))

    gone = {doc.path for doc in vanished}
    for entry in new:
        digest = new_hashes.get(entry.path)
        match = None
        if digest is not None:
            match = next(
                (d for d in by_size[entry.size] if d.sha256 == digest and d.path in gone), None
            )
            if match is not None:
                gone.discard(match.path)
            else:
                outside = elsewhere.get(entry.size, [])
                match = next((d for d in outside if d.sha256 == digest), None)
                if match is not None:
                    outside.remove(match)
        if match is not None:
            _moved(plan, match, entry)
        else:
            plan.jobs.append(Job(entry, "new", digest))
    plan.deleted = sorted(gone)
    plan.excluded = _excluded(plan.deleted, scan.excluded)
    if not retry_errors:
        _set_suspects_aside(plan, leftover)
    plan.resumed = sum(1 for j in plan.jobs if text_path(j.entry.path) in leftover)
    return plan


def _set_suspects_aside(plan: Plan, leftover: dict[str, sqlite3.Row]) -> None:
    """Move the jobs that died with SUSPECT_AFTER runs to ``plan.suspects``.
    A job left 'in_progress' is one the last run died with; the writer counts
    that death (``attempts``) when it starts, after the plan is read."""
    jobs = []
    for job in plan.jobs:
        row = leftover.get(text_path(job.entry.path))
        deaths = 0
        if row is not None and (row["size"], row["mtime_ns"]) == (
            job.entry.size,
            job.entry.mtime_ns,
        ):
            deaths = row["attempts"] + (row["state"] == "in_progress")
        if deaths >= SUSPECT_AFTER:
            plan.suspects.append((job, deaths))
        else:
            jobs.append(job)
    plan.jobs = jobs


def _same_content(
    plan: Plan, entry: FileEntry, doc: store.DocRow, retry_errors: bool, touched: bool
) -> None:
    if touched:
        plan.touched.append(entry)
    if doc.status == "error":
        tries = transient_tries(doc.error)
        if retry_errors:
            plan.jobs.append(Job(entry, "retry", doc.sha256))
        elif tries is not None and tries < TRANSIENT_TRIES:
            plan.jobs.append(Job(entry, "retry", doc.sha256, tries=tries))
        else:
            plan.skipped_errors += 1
    elif doc.status == "partial":
        plan.jobs.append(_retry_ranges(entry, doc))
    elif not touched:
        plan.unchanged += 1


def _retry_ranges(entry: FileEntry, doc: store.DocRow) -> Job:
    ranges = _valid_ranges(doc)
    if not ranges or entry.kind != "pdf":
        # no ranges recorded, or not a PDF (only PDFs are read by page range,
        # an EPUB with a failed chapter is read again whole): redo the whole file
        return Job(entry, "retry", doc.sha256)
    return Job(entry, "retry", doc.sha256, ranges=ranges, page_count=doc.pages)


def _valid_ranges(doc: store.DocRow) -> tuple[tuple[int, int], ...]:
    """The stored failed ranges that make sense for the document's page count,
    clipped to it. Another tool may have written anything there (``[[1,
    999999999]]`` made a run split a billion pages); none valid: () and the
    whole file is read again."""
    count = doc.pages or 0
    out = []
    try:
        for a, b, *_ in doc.failed_ranges:
            first, last = max(1, int(a)), min(count, int(b))
            if first <= last:
                out.append((first, last))
    except (TypeError, ValueError):
        return ()
    return tuple(out)
