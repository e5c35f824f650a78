"""FB2 (FictionBook 2): an XML ebook, as ``.fb2`` or zipped as ``.fb2.zip``.

Why this module exists: FB2 is the common ebook format of Russian-speaking
libraries (Flibusta, LibRusEc), one XML file that holds the book's
description, its ``<body>`` of nested ``<section>``s and its images (base64
``<binary>`` elements, which are not text).

A page is a section: each ``<section>`` in reading order is one page holding
its own text (its title, epigraph and paragraphs, not those of the sections
inside it), so a part's title page and each of its chapters are pages, as in
an EPUB. Text in a ``<body>`` outside any section (the book's title, an
epigraph), where there is some, is a page too, and so is each section of a notes body. Metadata
comes from ``<title-info>``: ``book-title``, the authors' names, ``lang``,
``date``, ``annotation`` and ``keywords``.
"""

from __future__ import annotations

import os
from typing import Any

from indexer.errors import ExtractError

from .archive import MAX_MEMBER, local, open_zip, parse_xml, read_member
from .base import Extracted, Meta, clean_text, os_reason, page_read, read_head, tidy_lines

_BLOCKS = {"p", "v", "title", "subtitle", "epigraph", "text-author", "stanza", "tr", "date"}


def _read(path: str) -> bytes:
    head = read_head(path)
    if head.startswith(b"PK\x03\x04"):
        with open_zip(path, "an FB2 archive") as zf:
            names = [i.filename for i in zf.infolist() if i.filename.lower().endswith(".fb2")]
            if not names:
                raise ExtractError("not an FB2 archive: no .fb2 file in the zip")
            return read_member(zf, names[0])
    try:
        size = os.stat(path).st_size
        if size > MAX_MEMBER:
            raise ExtractError(f"FB2 of {size // (1024 * 1024)} MiB is over the size limit")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ExtractError(os_reason(e)) from None


def _own_text(top: Any) -> str:
    """The text of ``top`` with a line per block, not that of the sections
    inside it (they are pages of their own) nor of images."""
    out: list[str] = []
    stack: list[tuple[Any, bool]] = [(top, False)]
    while stack:
        node, closing = stack.pop()
        name = local(node.tag)
        if closing:
            if name in _BLOCKS:
                out.append("\n")
            if node is not top and node.tail:
                out.append(node.tail)
            continue
        if node is not top and (name in ("section", "binary") or not name):
            out.append("\n" if name else node.tail or "")
            continue
        if name in _BLOCKS:
            out.append("\n")
        if node.text:
            out.append(node.text)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node))
    return clean_text(tidy_lines("".join(out)))


def extract_fb2(path: str) -> Extracted:
    """One page per section (see the header), and the title-info metadata."""
    root = parse_xml(_read(path), "the FB2 file")
    if local(root.tag) != "FictionBook":
        raise ExtractError(f"not an FB2 book (its root element is <{local(root.tag)}>)")
    sheets: list[str] = []
    for body in (el for el in root if local(el.tag) == "body"):
        for el in body.iter():
            if el is body or local(el.tag) == "section":
                text = _own_text(el)
                if text or el is not body:  # (a body's page only where it has text)
                    sheets.append(text)
                page_read()
    if not sheets:
        raise ExtractError("FB2 book without a <body>")
    pages = [(n, text) for n, text in enumerate(sheets, 1) if text]
    return Extracted(len(sheets), 1, len(sheets), pages, meta=_meta(root))


def _meta(root: Any) -> Meta | None:
    info = next((el for el in root.iter() if local(el.tag) == "title-info"), None)
    if info is None:
        return None

    def first(name: str) -> Any:
        return next((el for el in info if local(el.tag) == name), None)

    def text(el: Any) -> str | None:
        return " ".join("".join(el.itertext()).split()) or None if el is not None else None

    authors = []
    for author in (el for el in info if local(el.tag) == "author"):
        parts = {local(p.tag): text(p) for p in author}
        name = " ".join(
            p for p in (parts.get(k) for k in ("first-name", "middle-name", "last-name")) if p
        )
        if name or parts.get("nickname"):
            authors.append(name or str(parts["nickname"]))
    date = first("date")
    isbn = next((el for el in root.iter() if local(el.tag) == "isbn"), None)
    return Meta.of(
        title=text(first("book-title")),
        authors="; ".join(authors) or None,
        language=text(first("lang")),
        subject=text(first("annotation")),
        keywords=text(first("keywords")),
        created=(date.get("value") or text(date)) if date is not None else None,
        identifier=text(isbn),
    )
