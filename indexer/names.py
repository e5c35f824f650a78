"""The text form of file names: how a path is stored in the index and shown.

Why this module exists: a file name is bytes, and the index, the terminal and
JSON hold text. Every path that meets the index goes through ``text_path``
once (at the writer's door, in the planner, in the read queries), and every
free text that may quote one (a reason, a line for stderr) through
``text_of``. Only the standard library is imported here.
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

# the escapes text_path writes: a doubled backslash, or an undecodable byte
_STORED_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def text_path(path: str) -> str:
    r"""The form in which a path is stored in the index: the key the planner
    finds a file by on every run, and what people see.

    A file name that is not valid UTF-8 (old archives, Windows or Latin-1
    systems) reaches Python with its undecodable bytes as lone surrogates
    (``os.fsdecode``), and SQLite text cannot hold those: such bytes become
    ``\xNN`` escapes, as Python's ``backslashreplace`` writes them, and a
    backslash becomes ``\\``, so the form is injective: a file literally
    named ``caf\xe9.txt`` (stored ``caf\\xe9.txt``) and a Latin-1
    ``caf<E9>.txt`` (stored ``caf\xe9.txt``) are two documents (schema 1
    stored both as ``caf\xe9.txt``: see ``upgrade.py``). Apply it once, to a
    real path: a path read from the index is in this form already. Almost
    every path (valid UTF-8, no backslash) is stored as it is.
    """
    if "\\" not in path and path.isascii():
        return path
    # 0x5C never occurs inside a multi-byte UTF-8 sequence: doubling the byte
    # doubles exactly the backslashes
    return raw_bytes(path).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def text_of(text: str) -> str:
    r"""Free text (a reason, a line for stderr) that may quote a real path, in a
    form SQLite and a terminal can hold: undecodable bytes as ``\xNN``,
    backslashes left as they are (it is not a key: see ``text_path``)."""
    if text.isascii():
        return text
    return raw_bytes(text).decode("utf-8", "backslashreplace")


def raw_bytes(text: str) -> bytes:
    """The bytes a file name (or a command-line word) stands for."""
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:  # a surrogate that no file name produced
        return text.encode("utf-8", "surrogatepass")


def stored_bytes(stored: str) -> bytes:
    r"""The file name a stored path stands for, as bytes (``text_path``'s
    inverse: ``\\`` is a backslash, ``\xNN`` the byte NN)."""
    if "\\" not in stored:
        return raw_bytes(stored)
    out, at = bytearray(), 0
    for m in _STORED_ESCAPE.finditer(stored):
        out += stored[at : m.start()].encode("utf-8", "surrogatepass")
        out += b"\\" if m.group(1) == "\\" else bytes([int(m.group(1)[1:], 16)])
        at = m.end()
    return bytes(out + stored[at:].encode("utf-8", "surrogatepass"))


# A file attached to a PDF is a document of its own, at its PDF's path, this,
# and its name: ``/papers/report.pdf//data.csv``. (A normalised path never
# holds two slashes in a row, so no file's path can look like one.)
ATTACHED = "//"


def container_of(stored: str) -> str | None:
    """The file an attachment's path is inside of; None for a file's path."""
    at = stored.find(ATTACHED)
    return stored[:at] if at > 0 else None


def attached_range(stored: str) -> tuple[str, str]:
    """The range of paths ``[low, high)`` the attachments of ``stored`` are in."""
    return stored + ATTACHED, stored + "/" + chr(ord("/") + 1)


def file_url(stored: str, page: int | None = None) -> str:
    """A ``file://`` link to a stored path; ``#page=N`` opens a PDF at its
    page N in browsers' and most viewers' PDF readers. An attachment's link
    is its PDF's (the page numbers are the attachment's own, so none)."""
    container = container_of(stored)
    if container is not None:
        stored, page = container, None
    url = "file://" + quote(stored_bytes(stored))
    return url if page is None else f"{url}#page={page}"
