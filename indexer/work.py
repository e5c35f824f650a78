"""What a worker is given and what it gives back: the units of work.

Why this module exists: the workers and the main process both need these
types, and the workers (forked from the fork server, which preloads the pool)
should import nothing else of the main process's side: not the messages to the
writer, not the scheduling policy (``schedule.py``, which builds these). A
task's results travel back through loky's pipe, or by file (``pool.run_task``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from indexer.extract.base import Extracted
from indexer.extract.ocr import OcrSpec


@dataclass(frozen=True)
class Item:
    """One file, or one page range of a PDF, to extract."""

    path: str
    kind: str
    first: int = 1
    last: int | None = None  # None: to the end
    limit: int | None = None  # PDF: extract at most this many pages (the rest is split off)
    want_hash: bool = False
    # (size, mtime_ns) as the scan saw the file: the worker checks that it reads
    # that file, unchanged from start to end (None: no check)
    stat: tuple[int, int] | None = None
    ocr: OcrSpec | None = None  # PDF: recognise its scanned pages (extract/ocr.py)

    @property
    def whole(self) -> bool:
        """Is this a document's first (or only) task, not a later range?"""
        return self.first == 1 and self.last is None


@dataclass
class ItemResult:
    """What a worker gives back for one item: the text, or a one-line reason."""

    item: Item
    extracted: Extracted | None
    error: str | None
    sha256: str | None
    seconds: float
    changed: bool = False  # the file was not what the scan saw, or changed while read
    cpu: float = 0.0  # the worker's CPU seconds for it (the runs table's CPU by role)


# The reason recorded for a file that changed between the scan and the end of
# its reading: nothing of what was read is kept, and the next run, which sees
# the new stat, reads it again.
CHANGED = "changed while it was being indexed (read again on the next run)"


def hash_in_worker(item: Item, extracted: Extracted | None) -> bool:
    """Does the worker hash ``item``'s file once it is extracted? Not when the
    probe found a long PDF: the main process hashes it while its ranges run;
    and not when nothing could be read (a failed file is tried again when its
    stat changes, and a 2 GB file of NUL bytes cost seconds to hash)."""
    if extracted is None:
        return False
    return item.want_hash and extracted.last >= extracted.page_count


_seq = itertools.count()


@dataclass(eq=False)
class Task:
    """What one worker runs at a time: one item, or a group of small files."""

    items: tuple[Item, ...]
    cost: float  # larger runs earlier
    units: int  # pages or page equivalents, for the deadline
    ocr_pages: int = 0  # pages it may recognise, each with its own deadline (--ocr-timeout)
    urgent: bool = False  # remaining ranges of a document already started
    alone: bool = False  # a crash suspect: runs with nothing else in flight
    seq: int = field(default_factory=lambda: next(_seq))

    @property
    def is_epub(self) -> bool:
        return any(i.kind == "epub" for i in self.items)

    def key(self) -> tuple[int, float, int]:
        return (0 if self.urgent else 1, -self.cost, self.seq)

    def single(self, item: Item, *, urgent: bool | None = None, alone: bool = False) -> Task:
        """A task for one of this task's items."""
        units = self.units if len(self.items) == 1 else max(1, self.units // len(self.items))
        return Task(
            (item,),
            cost=self.cost,
            units=units,
            ocr_pages=self.ocr_pages if len(self.items) == 1 else 0,
            urgent=self.urgent if urgent is None else urgent,
            alone=alone,
        )


@dataclass
class Outcome:
    """A task's results, or its failure as a whole (crashed, timed out)."""

    task: Task
    results: list[ItemResult] | None = None
    failure: str | None = None  # the whole task failed: timed out, crashed


OUT_OF_MEMORY = "out of memory"
# Failures that need not happen again (the machine was short of memory, a
# worker was stopped or killed from outside): such a file is tried again on the
# next runs, TRANSIENT_TRIES times in all, before its error sticks.
TRANSIENT = ("timed out", OUT_OF_MEMORY, "worker crashed")
TRANSIENT_TRIES = 3
_TRY = re.compile(r" \(try (\d+) of \d+[^)]*\)$")


def transient_tries(reason: str | None) -> int | None:
    """The tries a stored failure has had, if it is transient (else None)."""
    if not reason or not reason.startswith(TRANSIENT):
        return None
    m = _TRY.search(reason)
    return int(m.group(1)) if m else 1


def with_tries(reason: str, tries: int) -> str:
    """A transient failure's reason, saying how many tries it has had."""
    more = ": tried again on the next run" if tries < TRANSIENT_TRIES else ""
    return f"{reason} (try {tries} of {TRANSIENT_TRIES}{more})"
