"""DOCX and ODT: the text of word-processor files, read from their XML, no office suite.

Why this module exists: a DOCX is a zip whose ``word/document.xml`` holds the
body, an ODT a zip whose ``content.xml`` does; both have paragraphs, runs and
tables, text boxes, tracked deletions, and metadata in a part of its own
(``docProps/core.xml``, ``meta.xml``). Reading the XML directly is fast and
needs nothing installed.

A page is a printed page where the file says where one begins:

* *rendered* breaks, where the word processor last laid a page out: Word's
  ``w:lastRenderedPageBreak``, LibreOffice's ``text:soft-page-break``. They
  hold the page numbers a reader saw, so they are used when a file has them;
* otherwise *hard* breaks: a page break (``w:br w:type="page"``, a paragraph
  with ``w:pageBreakBefore``, a paragraph style with ``fo:break-before`` or
  ``fo:break-after`` = ``page``);
* a file with neither is cut into pages of about 4,000 characters, like a
  text file.

Footnotes, endnotes and comments (DOCX keeps them in parts of their own) are
one more page after the body. Deleted text of tracked changes, field codes
and the fallback copies of text boxes (``mc:Fallback`` repeats ``mc:Choice``)
are not text. Headers and footers are not indexed.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from lxml import etree

from indexer.errors import ExtractError

from .archive import local, member, open_zip, parse_xml, read_member
from .base import Extracted, Meta, clean_text, page_read, text_pages, tidy_lines

# markers in the stream of text pieces a walk yields
RENDERED, HARD = "\x00rendered", "\x00hard"

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def paged(pieces: Iterable[str], notes: str = "") -> Extracted:
    """A document of pages from a walk's text pieces and break markers (see
    the header), with ``notes`` as one more page after the last."""
    parts: list[str] = []
    rendered = hard = False
    for piece in pieces:
        rendered |= piece is RENDERED
        hard |= piece is HARD
        parts.append(piece)
    marker = RENDERED if rendered else HARD if hard else None
    if marker is None:
        x = text_pages("".join(parts))
        sheets: list[str] = []
    else:
        sheets = [""]
        for piece in parts:
            if piece is marker:
                sheets.append("")
            elif piece is not RENDERED and piece is not HARD:
                sheets[-1] += piece
        if rendered and not sheets[0].strip() and len(sheets) > 1:
            sheets.pop(0)  # (Word puts a rendered break before a page's first paragraph)
        pages = [(n, clean_text(tidy_lines(s))) for n, s in enumerate(sheets, 1)]
        x = Extracted(len(sheets), 1, len(sheets), [(n, t) for n, t in pages if t])
    notes = clean_text(tidy_lines(notes))
    if notes:
        x.page_count += 1
        x.last = x.page_count
        x.pages.append((x.page_count, notes))
    return x


# --- DOCX --------------------------------------------------------------------------


def _w(name: str) -> str:
    return f"{{{_W}}}{name}"


_DOCX_SKIP = {_w("delText"), _w("instrText"), _w("hdr"), _w("ftr")}
_DOCX_BLOCKS = {_w("p"), _w("tr"), _w("tbl")}


def _docx_pieces(root: Any) -> Iterator[str]:
    """The text pieces and break markers of a WordprocessingML part."""
    skip = 0  # depth inside an element whose text is not text
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag
        if not isinstance(tag, str):
            continue
        if tag in _DOCX_SKIP or local(tag) == "Fallback":
            skip += 1 if event == "start" else -1
            continue
        if skip:
            continue
        if event == "end":
            if tag in _DOCX_BLOCKS:
                yield "\n"
            elif tag == _w("tc"):
                yield "\t"
            continue
        if tag == _w("t") and el.text:
            yield el.text
        elif tag == _w("tab"):
            yield "\t"
        elif tag in (_w("br"), _w("cr")):
            yield HARD if el.get(_w("type")) == "page" else "\n"
        elif tag == _w("lastRenderedPageBreak"):
            yield RENDERED
        elif tag == _w("pageBreakBefore") and el.get(_w("val"), "true") not in ("0", "false"):
            yield HARD
        elif tag == _w("p"):
            page_read()


def extract_docx(path: str) -> Extracted:
    """A DOCX's body in pages (see the header), footnotes, endnotes and
    comments as a last page, and its ``docProps/core.xml`` metadata."""
    with open_zip(path, "a DOCX") as zf:
        if member(zf, "word/document.xml") is None:
            raise ExtractError("not a DOCX: no word/document.xml")
        body = parse_xml(read_member(zf, "word/document.xml"), "word/document.xml")
        notes = []
        for part in ("word/footnotes.xml", "word/endnotes.xml", "word/comments.xml"):
            if member(zf, part) is not None:
                notes.append("".join(_docx_pieces(parse_xml(read_member(zf, part), part))))
        x = paged(_docx_pieces(body), "\n".join(p for p in notes if p.strip()))
        x.meta = _core_meta(zf)
    return x


def _core_meta(zf: zipfile.ZipFile) -> Meta | None:
    """Dublin Core from ``docProps/core.xml`` (OOXML) or ``meta.xml`` (ODF)."""
    found: dict[str, list[str]] = {}
    for part in ("docProps/core.xml", "meta.xml"):
        if member(zf, part) is None:
            continue
        try:
            root = parse_xml(read_member(zf, part), part)
        except ExtractError:  # metadata is a bonus
            continue
        for el in root.iter():
            text = " ".join("".join(el.itertext()).split()) if len(el) == 0 else ""
            if text:
                found.setdefault(local(el.tag), []).append(text)

    def first(*names: str) -> str | None:
        return next((found[n][0] for n in names if n in found), None)

    return Meta.of(
        title=first("title"),
        authors="; ".join(found.get("creator") or found.get("initial-creator") or []) or None,
        language=first("language"),
        subject=first("description", "subject"),
        keywords=", ".join(found.get("keyword") or found.get("keywords") or []) or None,
        created=first("created", "creation-date"),
    )


# --- ODT ---------------------------------------------------------------------------

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
_FO = "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"


def _t(name: str) -> str:
    return f"{{{_TEXT}}}{name}"


_ODT_SKIP = {_t("tracked-changes"), _t("note-citation"), f"{{{_OFFICE}}}annotation-end"}
_ODT_BLOCKS = {_t("p"), _t("h"), _t("list-item"), f"{{{_OFFICE}}}annotation"}


def _page_styles(*roots: Any) -> tuple[set[str], set[str]]:
    """The names of paragraph styles that start a new page (``fo:break-before``)
    and that end one (``fo:break-after``)."""
    before, after = set(), set()
    for root in roots:
        for style in root.iter(f"{{{_STYLE}}}style"):
            for props in style.iter(f"{{{_STYLE}}}paragraph-properties"):
                name = style.get(f"{{{_STYLE}}}name")
                if props.get(f"{{{_FO}}}break-before") == "page":
                    before.add(name)
                if props.get(f"{{{_FO}}}break-after") == "page":
                    after.add(name)
    return before, after


def _odt_pieces(body: Any, before: set[str], after: set[str]) -> Iterator[str]:
    skip = 0
    style = f"{{{_TEXT}}}style-name"
    for event, el in etree.iterwalk(body, events=("start", "end")):
        tag = el.tag
        if not isinstance(tag, str):
            continue
        if tag in _ODT_SKIP:
            skip += 1 if event == "start" else -1
            if event == "end" and not skip and el.tail:
                yield el.tail
            continue
        if skip:
            continue
        if event == "end":
            if tag in _ODT_BLOCKS or tag == f"{{{_TEXT}}}line-break":
                yield "\n"
            if tag in (_t("p"), _t("h")) and el.get(style) in after:
                yield HARD
            elif tag == "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}table-cell":
                yield "\t"
            if el.tail:
                yield el.tail
            continue
        if tag in (_t("p"), _t("h")):
            page_read()
            if el.get(style) in before:
                yield HARD
        if tag == _t("s"):
            yield " " * min(1000, int(el.get(_t("c"), "1") or 1))
        elif tag == _t("tab"):
            yield "\t"
        elif tag == _t("soft-page-break"):
            yield RENDERED
        if el.text:
            yield el.text


def extract_odt(path: str) -> Extracted:
    """An ODT's body in pages (see the header) and its ``meta.xml`` metadata."""
    with open_zip(path, "an ODT") as zf:
        if member(zf, "content.xml") is None:
            raise ExtractError("not an ODT: no content.xml")
        _check_odf_encryption(zf)
        content = parse_xml(read_member(zf, "content.xml"), "content.xml")
        roots = [content]
        if member(zf, "styles.xml") is not None:
            try:
                roots.append(parse_xml(read_member(zf, "styles.xml"), "styles.xml"))
            except ExtractError:  # styles only place page breaks
                pass
        before, after = _page_styles(*roots)
        body = content.find(f"{{{_OFFICE}}}body")
        x = paged(_odt_pieces(content if body is None else body, before, after))
        x.meta = _core_meta(zf)
    return x


def _check_odf_encryption(zf: zipfile.ZipFile) -> None:
    """ODF saved with a password: its manifest lists encryption data for content.xml."""
    if member(zf, "META-INF/manifest.xml") is None:
        return
    try:
        root = parse_xml(read_member(zf, "META-INF/manifest.xml"), "manifest")
    except ExtractError:
        return
    for entry in root.iter(f"{{{_MANIFEST}}}file-entry"):
        if entry.get(f"{{{_MANIFEST}}}full-path") == "content.xml" and len(entry):
            if entry.find(f"{{{_MANIFEST}}}encryption-data") is not None:
                raise ExtractError("encrypted: a password is required")
