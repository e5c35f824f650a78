"""Plain text and Markdown: pages of a few KB, broken at form feeds and paragraphs.

Why this module exists: real text files are not all UTF-8. Decoding follows a
fixed order so the result is predictable: a byte-order mark wins; then UTF-16
without a BOM (recognised by its NUL bytes); then strict UTF-8; then an
explicit charset declared by the caller (HTML ``<meta charset>``); then
charset-normalizer's guess. Its guesses among the Western single-byte code
pages are unreliable on short texts (it calls Latin-1 French "cp775"), so when
windows-1252 decodes the bytes to the same quality it is preferred: it is by far
the most common of them, and a superset of ISO-8859-1's printable range.

A file that is not text at all is refused rather than indexed as garbage: one
that is recognisably another format (a PDF or a zip saved as ``.txt``), and
binary content, which is NUL bytes in bytes that are neither UTF-8 nor
readable as UTF-16 (as in ripgrep, NUL bytes mean binary; valid UTF-8 is kept,
for logs with NUL padding).
"""

from __future__ import annotations

import codecs
import os
import re

from indexer.errors import ExtractError

from .base import Extracted, Meta, describe_content, os_reason, text_pages

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Largest file read as text; anything bigger is almost certainly not prose.
MAX_TEXT_BYTES = 256 * 1024 * 1024


def _utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when the bytes look like BOM-less UTF-16 text."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls > 0.3 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.3 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return None


def _guess(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = from_bytes(data[:200_000])
    best = matches.best()
    if best is None:
        return "cp1252" if _decodes(data, "cp1252") else "latin-1"
    # Among equally clean candidates, prefer windows-1252 (see the header).
    for m in matches:
        if m.chaos > best.chaos + 0.02:
            break
        if "cp1252" in m.could_be_from_charset and _decodes(data, "cp1252"):
            return "cp1252"
    return best.encoding


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def detect_encoding(data: bytes, declared: str | None = None) -> tuple[str, int]:
    """(encoding, number of BOM bytes to skip) for ``data``."""
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            return bom_encoding, len(bom)
    utf16 = _utf16_without_bom(data)
    if utf16:
        return utf16, 0
    if _decodes(data, "utf-8"):
        return "utf-8", 0
    if declared:
        name: str | None
        try:
            name = codecs.lookup(declared).name
        except LookupError:
            name = None
        if name and name not in ("utf-8", "utf-16", "utf-32") and _decodes(data, name):
            return name, 0
    return _guess(data), 0


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Bytes of unknown encoding to text; never raises on odd bytes."""
    encoding, skip = detect_encoding(data, declared)
    return data[skip:].decode(encoding, errors="replace")


def _refuse_binary(data: bytes) -> None:
    """Raise when ``data`` is not text (see the header)."""
    if any(data.startswith(bom) for bom, _ in _BOMS) or _utf16_without_bom(data):
        return
    what = describe_content(data[:64])
    if what not in ("unrecognised content", "an HTML page"):
        raise ExtractError(f"not a text file (the file is {what})")
    if b"\x00" in data and not _decodes(data, "utf-8") and not _plausible_utf16(data):
        raise ExtractError("not a text file (binary content)")


def _plausible_utf16(data: bytes) -> bool:
    """Does ``data`` read as UTF-16 text? BOM-less UTF-16 with few NUL bytes
    (Chinese or Japanese with little ASCII) escapes ``_utf16_without_bom``;
    binary data fails to decode (lone surrogates) or decodes to unprintables."""
    if len(data) % 2:
        return False
    for encoding in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        sample = text[:20_000]
        if sum(c.isprintable() or c.isspace() for c in sample) >= 0.95 * len(sample):
            return True
    return False


def read_bytes(path: str) -> bytes:
    """The bytes of a text or HTML file; raises when it is too big or not text."""
    try:
        with open(path, "rb") as f:
            # read(n) allocates n bytes first: ask for what the file holds (a
            # tiny note under a low ``ulimit -v`` failed as "out of memory"),
            # one byte more to see a file that grew past the limit
            size = os.fstat(f.fileno()).st_size
            if size > MAX_TEXT_BYTES:  # refused unread: a 2 GB file costs nothing
                raise ExtractError(f"text file larger than {MAX_TEXT_BYTES // 2**20} MiB")
            data = f.read(size + 1)
    except OSError as e:
        raise ExtractError(os_reason(e)) from None
    if len(data) > MAX_TEXT_BYTES:
        raise ExtractError(f"text file larger than {MAX_TEXT_BYTES // 2**20} MiB")
    _refuse_binary(data)
    return data


def extract_text(path: str) -> Extracted:
    """A .txt or .md file in pages of about ``base.PAGE_CHARS`` characters,
    broken at form feeds and paragraphs. An empty file is an empty document."""
    text = decode_bytes(read_bytes(path))
    x = text_pages(text, lines=True)
    if path.lower().endswith((".md", ".markdown")):
        heading = _HEADING.search(text[:20_000])
        x.meta = Meta.of(title=(heading.group(1) or heading.group(2)) if heading else None)
    return x


# a Markdown heading of level 1 or 2, or a setext one (a line underlined with ===)
_HEADING = re.compile(r"^(?:#{1,2}[ \t]+(.+?)[ \t#]*|(.+)\n=+[ \t]*)$", re.MULTILINE)
