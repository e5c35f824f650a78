"""Extractors: pure functions from a file (or a page range of one) to page records.

Why this package exists: formats are independent of the pool, the writer and
the database. Each module handles one format and knows nothing else; this file
maps file extensions to them. Extractors raise ``ExtractError`` with a one-line
reason for a file they cannot read; they never touch the index.
"""

from __future__ import annotations

import os

from .base import Extracted, Page, clean_text
from .ocr import OcrSpec

# File extension (lower case, no dot) -> kind. Other files are not indexed.
EXTENSIONS: dict[str, str] = {
    "pdf": "pdf",
    "epub": "epub",
    "txt": "txt",
    "text": "txt",
    "md": "md",
    "markdown": "md",
    "html": "html",
    "htm": "html",
    "xhtml": "html",
    "fb2": "fb2",
    "mobi": "mobi",
    "azw": "mobi",
    "azw3": "mobi",
    "docx": "docx",
    "odt": "odt",
    "djvu": "djvu",
    "djv": "djvu",
    # pictures of pages, read by OCR only (indexed in a run with --ocr)
    "png": "image",
    "jpg": "image",
    "jpeg": "image",
    "tif": "image",
    "tiff": "image",
}
KINDS = ("pdf", "epub", "txt", "md", "html", "fb2", "mobi", "docx", "odt", "djvu", "image")


def kind_of(path: str) -> str | None:
    """The document kind for a file's path, or None when it is not indexed."""
    return kind_of_name(path.rpartition(os.sep)[2])


def kind_of_name(name: str) -> str | None:
    """The document kind for a file name (no folder), or None."""
    dot = name.rfind(".")
    if dot <= 0:  # no extension, or a dot-file such as ".pdf"
        return None
    ext = name[dot + 1 :].lower()
    if ext == "zip":  # FictionBook is often kept zipped: book.fb2.zip
        return "fb2" if name.lower().endswith(".fb2.zip") and len(name) > 8 else None
    return EXTENSIONS.get(ext)


def extract(
    kind: str,
    path: str,
    first: int = 1,
    last: int | None = None,
    limit: int | None = None,
    nested: bool = False,
    ocr: OcrSpec | None = None,
) -> Extracted:
    """Dispatch to the extractor for ``kind``. Page ranges apply to PDFs only.
    A PDF's attached files are read too (``x.attachments``), unless it is
    ``nested`` (an attachment itself); ``ocr``: its scans recognised."""
    if kind == "pdf":
        from .pdf import extract_pdf

        x = extract_pdf(path, first, last, limit, attachments=not nested, ocr=ocr)
        if x.embedded:
            from .attachments import read_attachments

            x.attachments, x.embedded = read_attachments(x.embedded), []
        return x
    if kind == "epub":
        from .epub import extract_epub

        return extract_epub(path, ocr)
    if kind == "html":
        from .html import extract_html

        return extract_html(path)
    if kind in ("txt", "md"):
        from .text import extract_text

        return extract_text(path)
    if kind == "docx":
        from .office import extract_docx

        return extract_docx(path)
    if kind == "odt":
        from .office import extract_odt

        return extract_odt(path)
    if kind == "fb2":
        from .fb2 import extract_fb2

        return extract_fb2(path)
    if kind == "mobi":
        from .mobi import extract_mobi

        return extract_mobi(path)
    if kind == "djvu":
        from .djvu import extract_djvu

        return extract_djvu(path)
    if kind == "image":
        from .ocr import extract_image

        return extract_image(path, ocr)
    raise ValueError(f"unknown document kind {kind!r}")


__all__ = ["EXTENSIONS", "KINDS", "Extracted", "Page", "clean_text", "extract", "kind_of"]
