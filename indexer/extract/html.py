"""HTML and XHTML to plain text, for .html files and EPUB content documents.

Why this module exists: both formats need the same thing, the words a reader
sees with the block structure kept as line breaks (a paragraph, heading or list
item starts a new line), and nothing from ``<head>``, ``<script>`` or
``<style>``. lxml's HTML parser is used for both because it recovers from the
malformed markup real books contain (an unclosed ``<p>``, an undeclared
``&nbsp;`` in XHTML) where a strict XML parser gives up. The tree is walked with
an explicit stack, so a deeply nested document cannot hit Python's recursion
limit.
"""

from __future__ import annotations

import html as html_entities
import re

from lxml import etree
from lxml import html as lxml_html

from .base import Extracted, Meta, text_pages, tidy_lines
from .text import decode_bytes, read_bytes

BLOCK_TAGS = frozenset(
    """address article aside blockquote body br caption dd details dialog div dl dt
    fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr li
    main nav ol p pre section summary table tbody td tfoot th thead title tr ul
    level level1 level2 level3 level4 level5 level6 frontmatter bodymatter
    rearmatter doctitle docauthor text desc""".split()
)
SKIP_TAGS = frozenset("head script style template noscript object".split())

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_DOCTYPE = re.compile(r"\A\s*<!DOCTYPE\b[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)
_ENTITY = re.compile(r"<!ENTITY\s+([^\s%\"'>]+)")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9._-]+)""", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
# huge_tree: libxml2 otherwise stops at nesting depth 256 and drops the text.
_PARSER = lxml_html.HTMLParser(huge_tree=True, remove_comments=True, no_network=True)


def declared_charset(data: bytes) -> str | None:
    """The charset an XML declaration or a <meta> tag names, if any."""
    head = data[:4096]
    m = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    return m.group(1).decode("ascii") if m else None


def _localname(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


def tree_text(root: etree._Element) -> str:
    """The visible text under ``root``, one line per block element."""
    out: list[str] = []
    stack: list[tuple[etree._Element, bool]] = [(root, False)]
    while stack:
        el, closing = stack.pop()
        if closing:
            if _localname(el.tag) in BLOCK_TAGS:
                out.append("\n")
            if el.tail:
                out.append(_SPACES.sub(" ", el.tail))
            continue
        tag = el.tag
        if not isinstance(tag, str) or _localname(tag) in SKIP_TAGS:
            # comments, processing instructions, <script> and the like: only the tail
            if el.tail:
                out.append(_SPACES.sub(" ", el.tail))
            continue
        if _localname(tag) in BLOCK_TAGS:
            out.append("\n")
        if el.text:
            out.append(_SPACES.sub(" ", el.text))
        stack.append((el, True))
        stack.extend((child, False) for child in reversed(el))
    lines = (line.strip() for line in "".join(out).split("\n"))
    return "\n".join(line for line in lines if line)


def markup_to_text(data: bytes) -> str:
    """HTML or XHTML bytes (any encoding) to plain text; '' when there is none."""
    return _markup(data)[0]


def _markup(data: bytes) -> tuple[str, str | None]:
    """The plain text of HTML or XHTML bytes, and its title: ``<title>``,
    else the first ``<h1>`` (None without either), from one decoding and
    one parse."""
    text = decode_bytes(data, declared_charset(data))
    # lxml refuses str input that still carries an encoding declaration.
    text = _XML_DECL.sub("", text, count=1)
    # A DOCTYPE with an internal subset (``<!DOCTYPE html [ <!ENTITY ...> ]>``)
    # is not HTML: the parser would show its ``]>`` as text and start the body
    # there (the title became text too). Its entities are never expanded (an
    # external one is never fetched): their references are dropped.
    doctype = _DOCTYPE.match(text)
    if doctype is not None:
        declared = _ENTITY.findall(doctype.group(0))
        text = text[doctype.end() :]
        if declared:
            text = re.sub("&(?:" + "|".join(map(re.escape, declared)) + ");", "", text)
    if not text.strip():
        return "", None
    try:
        root = lxml_html.document_fromstring(text, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return "", None
    if any(e.type_name == "ERR_RESOURCE_LIMIT" for e in _PARSER.error_log):
        return strip_tags(text), None  # libxml2 gave up (nesting deeper than it allows)
    return tree_text(root), _title(root)


def _title(root: etree._Element) -> str | None:
    for tag in ("title", "h1"):
        found = root.find(f".//{tag}")
        if found is not None:
            title = "".join(str(t) for t in found.itertext())
            if title.strip():
                return title
    return None


_INVISIBLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK_TAG = re.compile(r"</?(?:" + "|".join(sorted(BLOCK_TAGS)) + r")\b[^>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^>]*>")


def strip_tags(text: str) -> str:
    """A crude fallback for markup the parser refuses: drop tags, keep blocks as lines."""
    text = _INVISIBLE.sub(" ", text)
    text = _BLOCK_TAG.sub("\n", text)
    text = html_entities.unescape(_ANY_TAG.sub("", text))
    return tidy_lines(text)


def extract_html(path: str) -> Extracted:
    """An .html/.htm file's visible text, in pages of a few KB like a text file's;
    its title from ``<title>``, else the first ``<h1>``."""
    text, title = _markup(read_bytes(path))
    x = text_pages(text)
    x.meta = Meta.of(title=title)
    return x
