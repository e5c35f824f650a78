"""Files attached to a PDF (embedded files, portfolios, file-attachment
annotations), read as documents of their own.

Why this module exists: a report ships its data as an attached CSV, a
portfolio is a PDF of PDFs, an invoice carries its XML. Each attached file of
a kind the index reads becomes a document at ``PDF//NAME`` (names.ATTACHED),
extracted like any other file: its bytes are written to a private temporary
folder (mode 0700, removed at once; never under the attachment's own name,
which may be ``../../etc/passwd``), within the limits a file on disk has
(``MAX_ATTACHMENT`` each, ``MAX_ATTACHED`` in all for one PDF) and the task's
deadline, which each page read keeps moving. An attachment's own attachments
are not read (one level). Attached data (CSV, TSV, XML, JSON) is read as
text; attachments of other kinds are skipped, as the scan skips such files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from indexer.errors import ExtractError

from .base import Attached, one_line

MAX_ATTACHMENT = 256 * 1024 * 1024
MAX_ATTACHED = 512 * 1024 * 1024


# Data attached to a document is text of it (a report's CSV, an e-invoice's
# XML), though such files on disk are not indexed.
TEXT_EXTENSIONS = frozenset({"csv", "tsv", "xml", "json"})


def _unique(name: str, seen: set[str]) -> str:
    """The last part of ``name`` (a portfolio's folder, or ``../../``, is no
    part of it), on one line, not empty, not yet in ``seen`` (``data (2).csv``)."""
    name = name.replace("\\", "/").rpartition("/")[2]
    name = " ".join(name.replace("\x00", "").split()) or "attachment"
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 1
    while candidate in seen:
        n += 1
        candidate = f"{stem} ({n}).{ext}" if dot else f"{stem} ({n})"
    seen.add(candidate)
    return candidate


def read_attachments(embedded: list[tuple[str, bytes | None, int]]) -> list[Attached]:
    """The attachments of a kind the index reads, each extracted (or with
    its reason), in the order given."""
    from . import extract, kind_of_name

    out: list[Attached] = []
    seen: set[str] = set()
    total = 0
    folder: str | None = None
    try:
        for raw_name, data, size in embedded:
            name = _unique(raw_name, seen)
            kind = kind_of_name(name)
            if kind is None and name.rpartition(".")[2].lower() in TEXT_EXTENSIONS:
                kind = "txt"
            if kind is None or kind == "image":  # (a picture is read by OCR only: not here)
                continue
            total += size
            if data is None or size > MAX_ATTACHMENT or total > MAX_ATTACHED:
                alone = data is None or size > MAX_ATTACHMENT
                limit = MAX_ATTACHMENT if alone else MAX_ATTACHED
                why = f"attachment over the size limit ({limit // 2**20} MiB)"
                out.append(Attached(name, kind, size, "", None, why))
                continue
            digest = hashlib.sha256(data).hexdigest()
            if folder is None:
                folder = tempfile.mkdtemp(prefix="indexer-attached-")
            path = os.path.join(folder, f"{len(out)}.{name.rpartition('.')[2].lower()}")
            with open(path, "wb") as f:
                f.write(data)
            try:
                x = extract(kind, path, nested=True)
                out.append(Attached(name, kind, len(data), digest, x))
            except ExtractError as e:
                out.append(Attached(name, kind, len(data), digest, None, str(e)))
            except (MemoryError, RecursionError) as e:
                out.append(Attached(name, kind, len(data), digest, None, one_line(e)))
            finally:
                os.unlink(path)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return out
