"""What a search cannot find, and why: ``indexer stats --unsearchable``.

Why this module exists: a library's index is only as good as its gaps are
known. Every page of every document read has a row in the ``ledger`` view
(schema.sql): the pages with text, and in ``page_gaps`` those without (an
image to OCR, a blank, a page that failed); pages OCR read with a mean word
confidence under ``LOW_CONFIDENCE`` are listed too (``page_ocr``). This module reads the gaps and
the documents that failed whole, folds consecutive pages of one state into
ranges, and counts them, so a user knows what to OCR or download again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

# an OCR'd page whose words Tesseract is, on average, less sure of than this
LOW_CONFIDENCE = 50
LOW_OCR = "text: OCR of low confidence"


@dataclass
class Gap:
    """Pages ``first..last`` of a document, all in ``state``."""

    first: int
    last: int
    state: str
    labels: list[str | None] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"first": self.first, "last": self.last, "state": self.state}
        if any(self.labels):
            out["labels"] = self.labels
        return out

    def describe(self) -> str:
        pages = (
            f"page {self.first}" if self.first == self.last else f"pages {self.first}-{self.last}"
        )
        printed = [label for label in (self.labels[0], self.labels[-1]) if label]
        if printed:
            pages += f" ({'-'.join(dict.fromkeys(printed))})"
        return f"{pages} {self.state}"


@dataclass
class Unsearchable:
    """A document with pages a search cannot find (or none at all)."""

    path: str
    status: str
    pages: int | None  # its page count, where known
    error: str | None  # the reason it failed, for status 'error'
    gaps: list[Gap] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "pages": self.pages,
            "error": self.error if self.status == "error" else None,
            "gaps": [g.as_dict() for g in self.gaps],
        }

    def describe(self) -> str:
        if self.status == "error":
            return f"{self.path}: failed: {self.error}"
        count = f", {self.pages} pages" if self.pages else ""
        return f"{self.path} ({self.status}{count}): " + "; ".join(g.describe() for g in self.gaps)


def unsearchable(conn: sqlite3.Connection) -> list[Unsearchable]:
    """The documents that failed whole, then those with pages without text,
    by path."""
    out = [
        Unsearchable(path, "error", None, error)
        for path, error in conn.execute(
            "SELECT path, error FROM documents WHERE status = 'error' ORDER BY path"
        )
    ]
    current: Unsearchable | None = None
    gaps = (
        "SELECT d.id, d.path, d.status, d.pages, g.page, g.label, g.state "
        "FROM page_gaps g JOIN documents d ON d.id = g.doc_id"
    )
    # pages OCR read with little confidence: found, but their words may not be
    low = (
        " UNION ALL SELECT d.id, d.path, d.status, d.pages, o.page, NULL, ? "
        "FROM page_ocr o JOIN documents d ON d.id = o.doc_id WHERE o.confidence < ?"
    )
    try:
        rows = conn.execute(f"{gaps}{low} ORDER BY 2, 5", (LOW_OCR, LOW_CONFIDENCE)).fetchall()
    except sqlite3.OperationalError:  # an index older than schema 7: no OCR records
        rows = conn.execute(f"{gaps} ORDER BY 2, 5").fetchall()
    last_id = None
    for doc_id, path, status, pages, page, label, state in rows:
        if doc_id != last_id:
            current = Unsearchable(path, status, pages, None)
            out.append(current)
            last_id = doc_id
        assert current is not None
        gap = current.gaps[-1] if current.gaps else None
        if gap is not None and gap.state == state and gap.last == page - 1:
            gap.last = page
            gap.labels.append(label)
        else:
            current.gaps.append(Gap(page, page, state, [label]))
    return out


def totals(found: list[Unsearchable]) -> dict[str, int]:
    """Pages by state ('no text: image only', 'failed', ...; each failure
    reason counts as 'failed') and the documents that failed whole."""
    counts: dict[str, int] = {}
    for doc in found:
        if doc.status == "error":
            counts["documents failed"] = counts.get("documents failed", 0) + 1
        for gap in doc.gaps:
            state = "failed" if gap.state.startswith("failed:") else gap.state
            counts[state] = counts.get(state, 0) + gap.last - gap.first + 1
    return counts


def summary_line(found: list[Unsearchable]) -> str:
    counts = totals(found)
    if not found:
        return "every page of every document has text a search can find"
    pages = ", ".join(
        f"{n:,} {state}" for state, n in sorted(counts.items()) if state != "documents failed"
    )
    failed = counts.get("documents failed", 0)
    parts = [
        p
        for p in (
            f"pages: {pages}" if pages else "",
            f"{failed} documents failed" if failed else "",
        )
        if p
    ]
    hint = " (OCR the image-only pages)" if counts.get("no text: image only") else ""
    return f"{len(found)} documents a search cannot fully find; " + "; ".join(parts) + hint
