"""``indexer open``: the command line that shows a document at a hit's page.

Why this module exists: a hit names a file and a page, and people want their
viewer at that page, not at page 1. Each PDF viewer spells "at page N" its
own way (``zathura --page=N``, ``evince --page-index=N``, ``mupdf FILE N``);
this module knows the common ones, takes the user's own template instead
(``INDEXER_VIEWER='my-viewer --goto {page} {path}'``), and falls back to the
desktop's opener (``xdg-open``, macOS ``open``), which cannot go to a page.
Building the command is pure (``command``), so it is tested without a display;
``target`` reads a hit's ``file://...#page=N`` link back into a path and page.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

from indexer.errors import UsageError

# PDF viewers that open a file at a page (1-based in all of them), in the
# order they are looked for on PATH.
PDF_VIEWERS: tuple[tuple[str, ...], ...] = (
    ("zathura", "--page={page}", "{path}"),
    ("evince", "--page-index={page}", "{path}"),
    ("okular", "--page", "{page}", "{path}"),
    ("qpdfview", "{path}#{page}"),
    ("mupdf", "{path}", "{page}"),
)
# The desktop's "open this file" commands: the right program for any kind,
# at its first page.
OPENERS: tuple[tuple[str, ...], ...] = (("xdg-open", "{path}"), ("open", "{path}"))

_FIELD = re.compile(r"\{(path|page|line|url)\}")


@dataclass(frozen=True)
class Command:
    argv: list[str]
    at_page: bool  # does it open the file at the page asked for?


def command(
    kind: str,
    path: str,
    page: int | None = None,
    line: int | None = None,
    template: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> Command:
    """The command that shows ``path`` (a file name as the OS takes it) at
    ``page`` (or the text file's ``line``): the user's ``template`` if one is
    given (its ``{path}``, ``{page}``, ``{line}`` and ``{url}`` filled in, the
    path added at the end if it names none), else the first PDF viewer found
    for a PDF, else the desktop's opener."""
    if template is not None:
        try:
            words = shlex.split(template)
        except ValueError as e:
            raise UsageError(f"viewer {template!r}: {e}", hint="quote it as a shell would") from e
        if not words:
            raise UsageError("the viewer command is empty", hint="e.g. 'zathura --page={page}'")
        if not any("{path}" in w or "{url}" in w for w in words):
            words.append("{path}")
        return Command(_fill(words, path, page, line), at_page=True)
    candidates = (PDF_VIEWERS if kind == "pdf" and page is not None else ()) + OPENERS
    for viewer in candidates:
        if which(viewer[0]) is not None:
            at_page = any("{page}" in w for w in viewer)
            return Command(_fill(list(viewer), path, page, line), at_page=at_page)
    names = ", ".join(v[0] for v in candidates)
    raise UsageError(
        f"no program to open {kind.upper()} files was found (looked for {names})",
        hint="name one with --viewer or INDEXER_VIEWER, e.g. 'zathura --page={page} {path}'",
    )


def _fill(words: list[str], path: str, page: int | None, line: int | None) -> list[str]:
    from indexer.names import file_url, text_path

    values = {
        "path": path,
        "page": str(page or 1),
        "line": str(line or 1),
        "url": file_url(text_path(path), page),
    }
    return [_FIELD.sub(lambda m: values[m.group(1)], w) for w in words]


def target(arg: str) -> tuple[str, int | None]:
    """A path, or a hit's link as ``search`` prints it
    (``file:///books/moby%20dick.pdf#page=12``), as (path, page or None)."""
    if not arg.startswith("file://"):
        return arg, None
    url = urlsplit(arg)
    if url.netloc not in ("", "localhost"):
        raise UsageError(f"{arg}: a link to another machine", hint="give the file's path")
    path = os.fsdecode(unquote_to_bytes(url.path))
    m = re.fullmatch(r"page=(\d+)", url.fragment)
    return path, int(m.group(1)) if m else None
