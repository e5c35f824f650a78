"""What the main process and the writer process say to each other.

Why this module exists: the two processes share a queue each way, and every
message that crosses it is one of the frozen dataclasses below, so a reader
finds each field in one class, mypy checks both ends, and tests build messages
by name. The writer dispatches on the type (``match``), as loky's executor
does with its ``_CallItem`` and ``_ResultItem``::

    main ── StorePlan, ScanErrors, Move, Touch, Delete,  ──▶ writer
            Started, PageRange, Document, RebuildFullText, Finish
    main ◀── Ready, Fatal, Done ─────────────────────────── writer

Paths travel as the workers opened them; the index stores them in their text
form (``names.text_path``: a file name that is not UTF-8 cannot be stored as it
is), and reasons may quote a path (``names.text_of``). ``in_text_form()``
converts a message at the writer's door: the one place where a message's paths
meet the index. The paths of documents the index already holds (a move's old
path, deleted documents) come from the index and are in that form already. A
message whose names are all UTF-8, without a backslash, comes back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

from indexer.extract.base import FailedRange, Meta, Page, Recognised
from indexer.names import text_of, text_path


class PlannedJob(NamedTuple):
    """One row of the stored plan (the jobs table)."""

    path: str
    action: str  # new, changed, retry
    kind: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class StorePlan:
    """The run's plan: jobs under ``roots`` that it does not list are dropped,
    the others are stored (an interrupted run resumes from them)."""

    roots: list[str]
    jobs: list[PlannedJob]

    def in_text_form(self) -> StorePlan:
        return replace(self, jobs=[j._replace(path=text_path(j.path)) for j in self.jobs])


@dataclass(frozen=True)
class ScanErrors:
    """The directories under ``roots`` that this scan could not read, with
    their reasons; they replace those recorded before."""

    roots: list[str]
    errors: list[tuple[str, str]]

    def in_text_form(self) -> ScanErrors:
        return replace(self, errors=[(text_path(p), text_of(why)) for p, why in self.errors])


@dataclass(frozen=True)
class Move:
    """A document found at a new path with the same content: only its path
    and stat change, its pages stay. ``old`` is the index's path."""

    old: str
    new: str
    size: int
    mtime_ns: int

    def in_text_form(self) -> Move:
        return replace(self, new=text_path(self.new))


@dataclass(frozen=True)
class Touch:
    """Same content, new stat: the stat is stored, the text kept."""

    path: str
    size: int
    mtime_ns: int

    def in_text_form(self) -> Touch:
        return replace(self, path=text_path(self.path))


@dataclass(frozen=True)
class Delete:
    """Documents gone from disk: they and their pages are purged (the
    index's paths)."""

    paths: list[str]

    def in_text_form(self) -> Delete:
        return self


@dataclass(frozen=True)
class Started:
    """The jobs of these documents are in a worker's hands now."""

    paths: list[str]

    def in_text_form(self) -> Started:
        return replace(self, paths=[text_path(p) for p in self.paths])


@dataclass(frozen=True)
class NewFile:
    """What a chunked document extracted whole (a new or changed file) needs
    for the row its ranges stream into."""

    kind: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class PageRange:
    """Pages ``first..last`` of a chunked PDF, those with text in ``pages``.
    ``new`` when the document is extracted whole, so its ranges stream into the
    index as they come; None for a retry of some ranges, held until its
    ``Document`` (see writer.py)."""

    path: str
    first: int
    last: int
    pages: list[Page]
    new: NewFile | None
    labels: dict[int, str] = field(default_factory=dict)  # printed page labels
    images: list[int] = field(default_factory=list)  # pages without text showing an image
    recognised: dict[int, Recognised] = field(default_factory=dict)  # pages OCR read

    def in_text_form(self) -> PageRange:
        return replace(self, path=text_path(self.path))


DocStatus = Literal["partial", "error"]


@dataclass(frozen=True)
class Document:
    """Closes a document: its metadata, its outcome and (for a document that
    did not stream) its pages."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: DocStatus | None  # None: the writer decides ok or empty
    page_count: int | None = None
    pages: list[Page] = field(default_factory=list)
    failed_ranges: list[FailedRange] = field(default_factory=list)
    error: str | None = None
    # 'replace': the pages replace all the document's pages (new or changed file).
    # 'ranges': a retry of the ``retried`` page ranges of a partial document.
    mode: Literal["replace", "ranges"] = "replace"
    retried: list[tuple[int, int]] = field(default_factory=list)
    # what the document says about itself (None: nothing, or a retry of
    # ranges that did not read page 1, which keeps what is stored)
    meta: Meta | None = None
    labels: dict[int, str] = field(default_factory=dict)  # printed page labels
    lines: dict[int, int] = field(default_factory=dict)  # a text file's: page -> first line
    images: list[int] = field(default_factory=list)  # pages without text showing an image
    recognised: dict[int, Recognised] = field(default_factory=dict)  # pages OCR read

    def in_text_form(self) -> Document:
        return replace(
            self,
            path=text_path(self.path),
            error=None if self.error is None else text_of(self.error),
            failed_ranges=[(a, b, text_of(why)) for a, b, why in self.failed_ranges],
        )


@dataclass(frozen=True)
class RebuildFullText:
    """``indexer index --repair``: rebuild the FTS index from the pages."""

    def in_text_form(self) -> RebuildFullText:
        return self


RunStatus = Literal["ok", "some_failed", "interrupted"]


@dataclass(frozen=True)
class Finish:
    """The end of the run: commit, record the run's status and summary, stop."""

    status: RunStatus
    summary: dict[str, Any]  # the run summary as JSON, stored in the runs table

    def in_text_form(self) -> Finish:
        return self


ToWriter = (
    StorePlan
    | ScanErrors
    | Move
    | Touch
    | Delete
    | Started
    | PageRange
    | Document
    | RebuildFullText
    | Finish
)


# -- the writer's replies ----------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The writer has opened (or created) the index and recorded the run;
    ``notes``: what it repaired first (``repair.repair_schema``)."""

    run_id: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Fatal:
    """The writer cannot go on: the one-line reason (and a hint)."""

    message: str
    hint: str | None = None


@dataclass(frozen=True)
class Done:
    """The writer committed everything and is exiting: what it wrote."""

    stats: dict[str, int]  # documents, pages, commits


FromWriter = Ready | Fatal | Done
