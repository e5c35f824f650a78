"""MOBI, AZW and AZW3 (Kindle books) through pymupdf, which reads both MOBI 6 and KF8.

Why this module exists: a Kindle book is a Palm database whose first record
says how the text records are compressed and whether they are encrypted, and
whose EXTH block holds the metadata. MuPDF turns the text into HTML and lays
it out into pages, so a page here is a page as MuPDF lays the book out (about
a screenful of an A5 page), the way a Kindle shows "locations": the format
has no chapters of its own that a reader could be sent to.

The header is checked first, so that a DRM-protected book, or one in the
HUFF/CDIC compression MuPDF cannot read, gets its reason in one line instead
of MuPDF's.
"""

from __future__ import annotations

import struct
from typing import Any

from indexer.errors import ExtractError

from .base import Extracted, Meta, Page, clean_text, one_line, page_read, read_head

_EXTH = {
    100: "authors",
    104: "identifier",
    103: "subject",
    105: "keywords",
    106: "created",
    503: "title",
    524: "language",
}


def _record0(path: str) -> bytes:
    """The Palm database's first record (the book's headers), after checking
    that the file is a Kindle book."""
    head = read_head(path, 4096)
    if len(head) < 86 or head[60:68] not in (b"BOOKMOBI", b"TEXtREAd"):
        raise ExtractError("not a MOBI/AZW book (no BOOKMOBI Palm database header)")
    (count,) = struct.unpack(">H", head[76:78])
    start = struct.unpack(">I", head[78:82])[0]
    end = struct.unpack(">I", head[86:90])[0] if count > 1 and len(head) >= 90 else start + 4096
    if not 0 < start < end or end - start > 1 << 20:
        raise ExtractError("damaged MOBI: its record table is out of order")
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


def _check(record0: bytes) -> None:
    if len(record0) < 16:
        raise ExtractError("damaged MOBI: its first record is truncated")
    compression, _, _, _, _, encryption = struct.unpack_from(">HHIHHH", record0)
    if encryption:
        raise ExtractError("DRM-protected: the book's text is encrypted")
    if compression == 17480:
        raise ExtractError("unsupported MOBI: HUFF/CDIC compression (MuPDF cannot read it)")
    if compression not in (1, 2):
        raise ExtractError(f"damaged MOBI: unknown compression {compression}")


def _exth(record0: bytes) -> dict[str, str]:
    """The EXTH metadata records (author, language, date, ...)."""
    if record0[16:20] != b"MOBI":
        return {}
    (length,) = struct.unpack(">I", record0[20:24])
    at = 16 + length
    if record0[at : at + 4] != b"EXTH":
        return {}
    found: dict[str, str] = {}
    _, n = struct.unpack(">II", record0[at + 4 : at + 12])
    at += 12
    for _ in range(min(n, 1000)):
        if at + 8 > len(record0):
            break
        kind, size = struct.unpack(">II", record0[at : at + 8])
        if size < 8:
            break
        field = _EXTH.get(kind)
        value = record0[at + 8 : at + size].decode("utf-8", "replace").strip()
        if field and value:
            found[field] = f"{found[field]}; {value}" if field in found else value
        at += size
    return found


def extract_mobi(path: str) -> Extracted:
    """The text of each laid-out page, and the EXTH metadata."""
    import pymupdf

    record0 = _record0(path)
    _check(record0)
    try:
        doc: Any = pymupdf.open(path, filetype="mobi")  # type: ignore[no-untyped-call]
        count = int(doc.page_count)
    except Exception as e:
        raise ExtractError(
            f"damaged MOBI ({' '.join(str(e).split())[:120] or one_line(e)})"
        ) from None
    pages: list[Page] = []
    failed: list[tuple[int, int, str]] = []
    try:
        for n in range(1, count + 1):
            try:
                text = clean_text(doc.load_page(n - 1).get_text())
            except Exception as e:
                failed.append((n, n, f"unreadable page ({one_line(e, 120)})"))
                continue
            finally:
                page_read()
            if text:
                pages.append((n, text))
        exth = _exth(record0)
        title = exth.pop("title", None) or (doc.metadata or {}).get("title")
    finally:
        doc.close()
    return Extracted(count, 1, count, pages, failed, Meta.of(title=title, **exth))
