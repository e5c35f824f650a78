"""What every extractor returns, and the text clean-up they all share.

Why this module exists: extractors are pure functions (a path and maybe a page
range in, page records out). Keeping their result type and the normalisation
rules in one place means PDF, EPUB and text pages reach the index in the same
shape: NFKC-normalised (so the ``ﬁ`` ligature in real PDFs matches ``fi``), no
NUL characters, no lone surrogates, no trailing blanks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from indexer.errors import ExtractError

# A page record: (1-based page number, text). Pages with no text are not listed.
Page = tuple[int, str]
# A page range that could not be read: (first, last, one-line reason).
FailedRange = tuple[int, int, str]


@dataclass(frozen=True)
class Meta:
    """What a document says about itself (PDF info dictionary, EPUB OPF
    ``dc:*``, a text's first heading); None where it says nothing."""

    title: str | None = None
    authors: str | None = None  # several joined with "; "
    language: str | None = None  # as given: "en", "en-US", "fr"
    subject: str | None = None
    keywords: str | None = None
    created: str | None = None  # ISO 8601: "2024", "2024-05-17", "2024-05-17T10:00:00"
    identifier: str | None = None  # an ISBN, DOI or URN: "urn:isbn:9780141439518"

    @staticmethod
    def of(**fields: str | None) -> Meta | None:
        """A Meta of the fields that have text (one line each), or None."""
        kept = {k: " ".join(v.split())[:500] for k, v in fields.items() if v and v.strip()}
        return Meta(**kept) if kept else None


@dataclass
class Extracted:
    """The text of a whole document, or of the page range ``first..last`` of one."""

    page_count: int  # pages (PDF) or spine items (EPUB) in the whole document
    first: int  # first page this result covers (1-based, inclusive)
    last: int  # last page this result covers (inclusive)
    pages: list[Page] = field(default_factory=list)
    # Page ranges inside first..last that could not be read: (first, last, reason).
    failed: list[FailedRange] = field(default_factory=list)
    meta: Meta | None = None  # from the range that starts at page 1
    # printed page labels ("xii", "237") where they differ from the number
    labels: dict[int, str] = field(default_factory=dict)
    # a text file's pages: the line of the file each one starts at (1-based)
    lines: dict[int, int] = field(default_factory=dict)
    # pages without text that show an image (a scan: "no text: image only");
    # a page in first..last that is neither in ``pages``, ``failed`` nor here
    # is blank
    images: list[int] = field(default_factory=list)
    # files attached to a PDF, read as documents of their own (attachments.py);
    # ``embedded`` holds their bytes only until they are read, in the worker
    attachments: list[Attached] = field(default_factory=list)
    embedded: list[tuple[str, bytes | None, int]] = field(default_factory=list)  # None: too big
    # the pages whose text OCR read (ocr.py): page -> its record
    recognised: dict[int, Recognised] = field(default_factory=dict)


# how a page's text was recognised: (engine, languages, dpi, mean word
# confidence 0-100, None where it found no words)
Recognised = tuple[str, str, int, float | None]


@dataclass
class Attached:
    """A file attached to a document (a PDF's embedded file), read as a
    document of its own: its ``Extracted``, or the reason it could not be."""

    name: str  # as the PDF names it, made unique among its attachments
    kind: str
    size: int
    sha256: str
    extracted: Extracted | None
    error: str | None = None


_on_page_read: Callable[[], None] | None = None


def on_page_read(callback: Callable[[], None] | None) -> None:
    """Have ``page_read`` call ``callback`` (a worker's beat: ``worker._beat``)."""
    global _on_page_read
    _on_page_read = callback


def page_read() -> None:
    """Extractors call this after each page or chapter they read. In a worker
    it tells the main process that the task moves (its deadline follows
    progress); elsewhere it does nothing."""
    if _on_page_read is not None:
        _on_page_read()


_TRAILING_BLANKS = re.compile(r"[ \t\r\f\v]+\n")
_BLANK_ENDS = (" \n", "\t\n", "\r\n", "\f\n", "\v\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise extracted text for storage and FTS5 tokenisation."""
    if not text:
        return ""
    if "\x00" in text:
        text = text.replace("\x00", "")
    # Lone surrogates (seen in broken PDF text layers) cannot be stored as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    text = unicodedata.normalize("NFKC", text)
    # The regular expressions only where they can match: they try a match at
    # every blank of the page, which cost 60 % of clean_text (about 5 % of
    # the extraction), and 2 pages in 1,544 had a blank at a line's end.
    if any(blank in text for blank in _BLANK_ENDS):
        text = _TRAILING_BLANKS.sub("\n", text)
    if "\n\n\n" in text:
        text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


# A page of a text file (or an HTML page) holds about this many characters:
# a printed page is 2-3 KB. FTS5's snippet() reads the whole page for every hit
# it shows, and its cost grows with the matches in it: on one 1 MiB page a
# common word took 8.3 s; a search over a 100 MB file in 4,000-character pages
# answers in milliseconds.
PAGE_CHARS = 4_000


def split_pages(text: str, size: int = PAGE_CHARS) -> list[str]:
    """``text`` cut into pages: at every form feed (a page break in plain
    text), and where a run is longer than ``size``, at the last paragraph
    break, else line break, else space in its second half (a hard cut where
    it has none). Joined, the pages are the text without its form feeds."""
    pages: list[str] = []
    for sheet in text.split("\f"):
        start, end = 0, len(sheet)
        while end - start > size:
            low, high = start + size // 2, start + size
            cut = sheet.rfind("\n\n", low, high)
            if cut < 0:
                cut = sheet.rfind("\n", low, high)
            if cut < 0:
                cut = sheet.rfind(" ", low, high)
            cut = high if cut < 0 else cut + 1
            pages.append(sheet[start:cut])
            start = cut
        pages.append(sheet[start:])
    return pages


def text_pages(text: str, lines: bool = False) -> Extracted:
    """A whole text as a document of pages (``split_pages``), each cleaned;
    a page left empty keeps its number. ``lines``: the text is the file's
    (not text taken out of markup), so record the line each page starts at
    (``show`` and a viewer can point into the file)."""
    pieces = split_pages(text)
    pages, starts, line = [], {}, 1
    for n, piece in enumerate(pieces, 1):
        cleaned = clean_text(piece)
        if cleaned:
            pages.append((n, cleaned))
            # the first line with text (clean_text drops the blank ones before it)
            lead = piece[: len(piece) - len(piece.lstrip())]
            starts[n] = line + lead.count("\n")
        line += piece.count("\n")
    x = Extracted(page_count=len(pieces), first=1, last=len(pieces), pages=pages)
    if lines:
        x.lines = starts
    return x


_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a zip archive"),
    (b"%PDF", "a PDF"),
    (b"<!DOCTYPE html", "an HTML page"),
    (b"<html", "an HTML page"),
)


def tidy_lines(text: str) -> str:
    """``text`` with each line's runs of blanks as one space, its ends
    stripped, and its blank lines dropped."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def describe_content(head: bytes) -> str:
    """A few words on what a file really is, from its first bytes."""
    if head and not head.strip(b"\x00"):
        # (a preallocated or zeroed file: left to a PDF's repair, MuPDF read
        # all 2 GB of one for more than a minute)
        return "only NUL bytes"
    for magic, what in _MAGIC:
        if head.startswith(magic) or head.lower().startswith(magic.lower()):
            return what
    return "unrecognised content"


def read_head(path: str, n: int = 1024) -> bytes:
    """The first ``n`` bytes of a file; raises ExtractError for an empty file."""
    try:
        with open(path, "rb") as f:
            head = f.read(n)
    except OSError as e:
        raise ExtractError(os_reason(e)) from None
    if not head:
        raise ExtractError("empty file (0 bytes)")
    return head


def os_reason(e: OSError) -> str:
    """'permission denied' rather than '[Errno 13] Permission denied: /x/y'."""
    return (e.strerror or type(e).__name__).lower()


def one_line(e: BaseException, limit: int = 200) -> str:
    """An exception as one short line: 'TypeName: first line of message'."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    line = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
