"""PDF: one record per page, pymupdf first, pypdf as the fallback.

Why this module exists: PDFs in the wild are damaged, encrypted, mislabelled or
huge. This module turns one PDF (or one page range of it, for chunked work on
massive files) into page records or a one-line reason:

* the ``%PDF`` magic is checked first, because pymupdf happily opens a PNG that
  was renamed ``.pdf`` as a one-page image document;
* an encrypted file is tried with the empty password (owner-password-only PDFs
  open that way); otherwise it is an error "encrypted: a password is required";
* when pymupdf cannot open a file, finds no pages, or fails on a page, pypdf
  (7-8x slower, so only the fallback) gets a try at exactly that;
* each worker opens the file itself for its range: no temporary split files.
  A worker keeps the last document it read a range of open (one at most, keyed
  by path, size and mtime), because MuPDF loads the page tree at the first page
  of each opening: 25 ms for 5,000 pages, paid again by every range otherwise.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from indexer.errors import ExtractError

from .base import (
    Extracted,
    Meta,
    Page,
    Recognised,
    clean_text,
    describe_content,
    one_line,
    page_read,
    read_head,
)
from .ocr import OcrSpec, is_scan, recognise_page

# pymupdf 2.0 imports two optional packages when it is imported, and skips each
# on ImportError: pymupdf.layout (an ONNX layout model, with numpy and
# onnxruntime) and pymupdf4llm. Plain get_text() uses neither, and they cost
# every worker about 0.5 s of start-up and 56 MiB of memory, so they are marked
# absent (setdefault: a process that already imported them keeps them). The
# pymupdf-lite distribution we depend on has neither; this matters where the
# full pymupdf distribution is installed instead.
sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
sys.modules.setdefault("pymupdf4llm", None)  # type: ignore[arg-type]

try:  # pymupdf >= 1.24 ships the 'pymupdf' name; older releases only 'fitz'
    import pymupdf
except ImportError:  # pragma: no cover
    import fitz as pymupdf  # type: ignore[no-redef]

# MuPDF prints repair chatter on stderr; the worker's stderr is the user's.
# (pymupdf's functions carry no annotations: the calls below are untyped.)
pymupdf.TOOLS.mupdf_display_errors(False)  # type: ignore[no-untyped-call]
pymupdf.TOOLS.mupdf_display_warnings(False)  # type: ignore[no-untyped-call]
logging.getLogger("pypdf").setLevel(logging.CRITICAL)

ENCRYPTED = "encrypted: a password is required"
# A word broken at a line's end (exam-/ple) is joined again: on the corpus's
# PDFs 88 % of the 4,770 such joins made a word found unbroken elsewhere, 5 %
# removed a hyphen that belonged to the word (large-/scale), and the flag cost
# no time (tools/bench_dehyphenate.py).
TEXT_FLAGS = int(pymupdf.TEXTFLAGS_TEXT | pymupdf.TEXT_DEHYPHENATE)


def _check_magic(path: str) -> bool:
    """False when the ``%PDF`` header is missing. A file that is recognisably
    something else (an image, a zip) is rejected at once; unrecognised leading
    bytes are left to MuPDF's repair, which real PDFs sometimes need."""
    head = read_head(path)
    if b"%PDF" in head:
        return True
    what = describe_content(head)
    if what != "unrecognised content":
        raise ExtractError(f"not a PDF (the file is {what})")
    return False


_kept: tuple[tuple[str, int, int], Any] | None = None  # (path, size, mtime_ns), document


def _file_key(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, st.st_size, st.st_mtime_ns)


def _release(doc: Any, key: tuple[str, int, int], keep: bool) -> None:
    """Done with ``doc``: keep it open for the next range of the same file, or close it."""
    global _kept
    if keep and key[1] >= 0:
        _kept = (key, doc)
    else:
        doc.close()


def _reuse(key: tuple[str, int, int]) -> Any | None:
    """The kept document if it is this file, unchanged; any other is closed."""
    global _kept
    if _kept is None:
        return None
    kept_key, doc = _kept
    _kept = None
    if kept_key == key:
        return doc
    doc.close()
    return None


def _mupdf_open(path: str) -> Any:
    """pymupdf.open(path), also for a file name that is not valid UTF-8.

    pymupdf passes the name to MuPDF as UTF-8 and fails on such a name (its
    undecodable bytes are lone surrogates in Python). That file is opened here
    and handed over by descriptor (``/proc/self/fd/N`` on Linux, ``/dev/fd/N``
    elsewhere), which MuPDF opens again by itself; read into memory only where
    neither exists."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return pymupdf.open(path, filetype="pdf")  # type: ignore[no-untyped-call]
    fd = os.open(path, os.O_RDONLY)
    try:
        for folder in ("/proc/self/fd", "/dev/fd"):
            alias = f"{folder}/{fd}"
            if os.path.exists(alias):
                return pymupdf.open(alias, filetype="pdf")  # type: ignore[no-untyped-call]
        with open(fd, "rb", closefd=False) as f:  # pragma: no cover - no fd folder
            return pymupdf.open(stream=f.read(), filetype="pdf")  # type: ignore[no-untyped-call]
    finally:
        os.close(fd)


def _open_mupdf(path: str) -> Any | None:
    """An open pymupdf document with at least one page, or None to fall back."""
    try:
        doc = _mupdf_open(path)
    except Exception:
        return None
    try:
        locked = doc.needs_pass and not doc.authenticate("")
        count = 0 if locked else doc.page_count
    except Exception:  # a page tree MuPDF cannot count ("Invalid number of pages")
        locked, count = False, 0
    if locked:
        doc.close()
        raise ExtractError(ENCRYPTED)
    if count == 0:
        doc.close()
        return None
    return doc


def _open_pypdf(path: str, has_magic: bool = True) -> Any:
    import pypdf

    if not has_magic:
        damaged = "not a PDF, or a badly damaged one (no %PDF header)"
        try:
            reader = pypdf.PdfReader(path, strict=False)
            if len(reader.pages) == 0:
                raise ExtractError(damaged)
        except ExtractError:
            raise
        except Exception:
            raise ExtractError(damaged) from None

    try:
        reader = pypdf.PdfReader(path, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError(ENCRYPTED)
        n = len(reader.pages)
    except ExtractError:
        raise
    except Exception as e:
        raise ExtractError(f"damaged PDF, cannot be opened ({one_line(e, 120)})") from None
    if n == 0:
        raise ExtractError("damaged PDF: no pages found")
    return reader


def _pypdf_pages(reader: Any, numbers: Iterable[int]) -> tuple[list[Page], list[tuple[int, str]]]:
    """Text of 1-based page ``numbers`` with pypdf: (pages, [(number, reason)])."""
    pages: list[Page] = []
    failed: list[tuple[int, str]] = []
    for n in numbers:
        try:
            text = clean_text(reader.pages[n - 1].extract_text() or "")
        except Exception as e:
            failed.append((n, one_line(e, 120)))
            continue
        finally:
            page_read()
        if text:
            pages.append((n, text))
    return pages, failed


def _ranges(failed: list[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """Consecutive failed page numbers folded into (first, last, reason) ranges."""
    out: list[tuple[int, int, str]] = []
    for n, reason in sorted(failed):
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n, out[-1][2])
        else:
            out.append((n, n, f"unreadable page ({reason})"))
    return out


def extract_pdf(
    path: str,
    first: int = 1,
    last: int | None = None,
    limit: int | None = None,
    attachments: bool = False,
    ocr: OcrSpec | None = None,
) -> Extracted:
    """Text of pages ``first..last`` (1-based, inclusive; ``last=None`` = to the end).

    ``limit`` caps how many pages this call extracts: the caller learns the real
    page count from the result and schedules the rest as further ranges.
    ``attachments``: also the bytes of the files attached to it
    (``x.embedded``: the embedded files with the range that starts at page 1,
    file-attachment annotations with the range of their page).
    ``ocr``: recognise the pages it wants (ocr.py): a scan with no text, or
    (``always``) every page.
    """
    key = _file_key(path)
    doc = _reuse(key)
    has_magic = True
    if doc is None:
        has_magic = _check_magic(path)
        doc = _open_mupdf(path)
    if doc is None:
        return _with_pypdf(path, first, last, limit, has_magic)
    try:
        return _with_mupdf(doc, key, path, first, last, limit, attachments, ocr)
    except ExtractError:
        raise
    except Exception as e:
        # MuPDF failed where a damaged file was not foreseen (a page tree it
        # counted, then could not walk: "code=7: ..."): pypdf reads it instead,
        # or the reason is MuPDF's, in one line
        try:
            return _with_pypdf(path, first, last, limit, has_magic)
        except ExtractError:
            why = " ".join(str(e).split())[:120] or one_line(e, 120)  # (MuPDF's own words)
            raise ExtractError(f"damaged PDF ({why})") from None


def _with_pypdf(
    path: str, first: int, last: int | None, limit: int | None, has_magic: bool
) -> Extracted:
    reader = _open_pypdf(path, has_magic)
    count = len(reader.pages)
    stop = _stop(first, last, limit, count)
    pages, unreadable = _pypdf_pages(reader, range(first, stop + 1))
    meta = None
    if first == 1:
        try:
            meta = _meta(dict(reader.metadata or {}), None)
        except Exception:
            meta = None
    return Extracted(count, first, stop, pages, _ranges(unreadable), meta)


def _with_mupdf(
    doc: Any,
    key: Any,
    path: str,
    first: int,
    last: int | None,
    limit: int | None,
    attachments: bool = False,
    ocr: OcrSpec | None = None,
) -> Extracted:
    keep = False
    recognised: dict[int, Recognised] = {}
    ocr_failed: list[tuple[int, str]] = []
    try:
        count = int(doc.page_count)
        stop = _stop(first, last, limit, count)
        pages = []
        failed_numbers: list[int] = []
        labels: dict[int, str] = {}
        images: list[int] = []
        embedded = _embedded_files(doc) if attachments and first == 1 else []
        annotated = embedded if attachments else None
        labelled = _has_labels(doc)
        for n in range(first, stop + 1):
            try:
                page = doc.load_page(n - 1)
                text = clean_text(page.get_text(flags=TEXT_FLAGS))
                if not text.isascii():
                    text = join_vertical(text)
                if _has_annotations(page):
                    text = _with_annotations(page, text, annotated)
                if labelled:
                    label = page.get_label()
                    if label and label != str(n):
                        labels[n] = label[:40]
            except Exception:
                failed_numbers.append(n)
                continue
            finally:
                page_read()
            if ocr is not None and (
                ocr.mode == "always" or (not text and _shows_an_image(page) and is_scan(page))
            ):
                try:
                    found, record = recognise_page(page, ocr)
                except ExtractError as e:
                    ocr_failed.append((n, str(e)))
                    continue
                finally:
                    page_read()
                recognised[n] = record  # (confidence None: it found no words)
                if found.strip():
                    text = clean_text(found)
            if text:
                pages.append((n, text))
            elif _shows_an_image(page):
                images.append(n)
        meta = _mupdf_meta(doc) if first == 1 else None
        keep = first > 1 or stop < count  # part of a chunked document: more ranges come
    finally:
        _release(doc, key, keep)
    failed: list[tuple[int, str]] = list(ocr_failed)
    if failed_numbers:
        try:
            more, unread = _pypdf_pages(_open_pypdf(path), failed_numbers)
        except ExtractError as e:
            failed += [(n, str(e)) for n in failed_numbers]
        else:
            failed += unread
            pages = sorted(pages + more)
    return Extracted(
        count,
        first,
        stop,
        pages,
        _ranges(sorted(failed)),
        meta,
        labels,
        images=images,
        embedded=embedded,
        recognised=recognised,
    )


# annotations that show no text of their own on the page (their content is a
# comment in a pop-up): a link, a pop-up (it repeats its parent's), a
# widget (read as a form field) and a file attachment are not comments
_NOT_COMMENTS = {"Link", "Popup", "Widget", "FileAttachment", "Sound", "Movie", "Screen"}


def _with_annotations(
    page: Any, text: str, attached: list[tuple[str, bytes | None, int]] | None = None
) -> str:
    """``text`` and, after it, what a page's annotations and form fields hold
    that its text lacks: a comment's (sticky note, highlight) content, a text
    field's or choice's value where the field has no appearance that shows it
    (a filled field usually has one, and then its value is in the text).
    ``attached``: where the files of file-attachment annotations go."""
    extra: list[str] = []
    try:
        for annot in page.annots():
            if annot.type[1] == "FileAttachment" and attached is not None:
                attached.append(_annotation_file(annot))
            elif annot.type[1] not in _NOT_COMMENTS:
                content = (annot.info or {}).get("content") or ""
                if content.strip() and content.strip() not in text:
                    extra.append(content)
        for widget in page.widgets():
            value = widget.field_value
            if widget.field_type_string in ("Text", "ComboBox", "ListBox") and value:
                value = ", ".join(value) if isinstance(value, list) else str(value)
                if value.strip() and value.strip() not in text:
                    extra.append(value)
    except Exception:  # a damaged annotation: the page's text is still the page
        pass
    return clean_text("\n".join([text, *extra])) if extra else text


# A line of one CJK character (an ideograph, kana, hangul or full-width
# form), as MuPDF gives vertical writing: each character on a line of its own.
_CJK_CHAR = "[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
_VERTICAL = re.compile(f"(?:^{_CJK_CHAR}[ \u3000]*\n){{3,}}(?:^{_CJK_CHAR}[ \u3000]*$)?", re.M)


def join_vertical(text: str) -> str:
    """Vertical CJK text in reading order: runs of three or more lines of
    one character each (a column, top to bottom, as MuPDF gives it) become
    one line, so a word of several characters is found as a phrase."""
    if _VERTICAL.search(text) is None:
        return text
    return _VERTICAL.sub(lambda m: "".join(m.group(0).split()) + "\n", text).rstrip("\n")


def _embedded_files(doc: Any) -> list[tuple[str, bytes | None, int]]:
    """(name, bytes, size) of each embedded file (attachments, a portfolio's
    files); the bytes are None for a file over the size limit, unread."""
    out: list[tuple[str, bytes | None, int]] = []
    try:
        count = int(doc.embfile_count())
    except Exception:
        return out
    for i in range(count):
        try:
            out.append(
                _attached_file(
                    doc.embfile_info(i), partial(doc.embfile_get, i), f"attachment-{i + 1}"
                )
            )
        except Exception:  # a damaged entry loses only itself
            continue
    return out


def _annotation_file(annot: Any) -> tuple[str, bytes | None, int]:
    return _attached_file(annot.file_info, annot.get_file, "attachment")


def _attached_file(
    info: dict[str, Any], read: Callable[[], bytes], default: str
) -> tuple[str, bytes | None, int]:
    """(name, bytes, size) of an attached file, from MuPDF's description of
    it (``embfile_info``, ``file_info``); ``read`` is called only for a file
    within the size limit (the bytes are None for another)."""
    from .attachments import MAX_ATTACHMENT

    name = info.get("ufilename") or info.get("filename") or info.get("name") or default
    size = int(info.get("length") or info.get("size") or 0)
    data = None if size > MAX_ATTACHMENT else bytes(read())
    return (str(name), data, len(data or b"") or size)


_RESOURCES = pymupdf.mupdf.pdf_new_name("Resources")
_XOBJECT = pymupdf.mupdf.pdf_new_name("XObject")
_ANNOTS = pymupdf.mupdf.pdf_new_name("Annots")


def _has_annotations(page: Any) -> bool:
    """Does the page have annotations (form fields are some)? Its /Annots
    array, read through MuPDF's own calls: 12 us a page, where
    ``first_annot`` and ``first_widget`` took 16 (a page's text takes about 370)."""
    try:
        mupdf = pymupdf.mupdf
        obj = mupdf.pdf_page_from_fz_page(page.this).obj()
        return bool(mupdf.pdf_array_len(mupdf.pdf_dict_get(obj, _ANNOTS)) > 0)
    except Exception:
        return page.first_annot is not None or page.first_widget is not None


def _shows_an_image(page: Any) -> bool:
    """Does a page without text draw an image (a scan to OCR, not a blank)?
    Its resources (its own or inherited) name an XObject: an image, or a form
    that draws one (a form with text would have given text). Read through
    MuPDF's own calls: 12 us a page, where ``page.get_images()`` took 137."""
    try:
        mupdf = pymupdf.mupdf
        obj = mupdf.pdf_page_from_fz_page(page.this).obj()
        resources = mupdf.pdf_dict_get_inheritable(obj, _RESOURCES)
        return bool(mupdf.pdf_dict_len(mupdf.pdf_dict_get(resources, _XOBJECT)) > 0)
    except Exception:
        try:
            return bool(page.get_images(full=False))
        except Exception:
            return False


def _has_labels(doc: Any) -> bool:
    """Does the PDF define page labels (printed numbers: "xii", "237")?"""
    try:
        return bool(doc.get_page_labels())
    except Exception:
        return False


def pdf_date(value: str | None) -> str | None:
    """A PDF date (``D:20240517103000+02'00'``) as ISO 8601 (``2024-05-17T10:30:00``),
    as far as it goes; None when it is not one."""
    digits = "".join(c for c in (value or "").removeprefix("D:")[:14] if c.isdigit())
    if len(digits) < 4:
        return None
    date = "-".join(p for p in (digits[:4], digits[4:6], digits[6:8]) if p)
    if len(digits) >= 12:
        date += f"T{digits[8:10]}:{digits[10:12]}:{digits[12:14] or '00'}"
    return date


def _meta(info: dict[str, Any] | None, language: str | None) -> Meta | None:
    """The info dictionary's fields (pymupdf's keys, or pypdf's ``/Title``)."""
    get = (info or {}).get

    def field(name: str) -> str | None:
        value = get(name) or get("/" + name.capitalize())
        return value if isinstance(value, str) else None

    return Meta.of(
        title=field("title"),
        authors=field("author"),
        language=language,
        subject=field("subject"),
        keywords=field("keywords"),
        created=pdf_date(field("creationDate") or get("/CreationDate")),
    )


def _mupdf_meta(doc: Any) -> Meta | None:
    try:
        kind, lang = doc.xref_get_key(doc.pdf_catalog(), "Lang")
        language = lang if kind == "string" else None
        return _meta(doc.metadata, language)
    except Exception:  # metadata is a bonus: a damaged info dictionary loses nothing
        return None


def _stop(first: int, last: int | None, limit: int | None, count: int) -> int:
    if first < 1 or first > count:
        raise ExtractError(f"page {first} is out of range (the PDF has {count} pages)")
    stop = count if last is None else min(last, count)
    if limit is not None:
        stop = min(stop, first + limit - 1)
    return stop
