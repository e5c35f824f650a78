"""DjVu: the text layer of each page, through ``djvutxt`` from DjVuLibre.

Why this module exists: DjVu is how many scanned books and papers are kept
(archive.org, older digital libraries), usually with a hidden text layer made
by OCR. DjVuLibre's ``djvutxt`` reads it; Debian ships it in
``djvulibre-bin``. Without it a DjVu file fails with a one-line reason and a
hint, and is retried by ``--retry-errors`` once it is installed.

``djvutxt -detail=page`` prints one S-expression per page, ``()`` for a page
with no text layer (a scan nobody recognised: ``empty`` until OCR), so page
numbers stay right, and ``failed`` for a page it cannot decode. (The pages
a truncated file has lost come out as ``()``: djvutxt cannot tell them from
pages without text.) The output is read as it comes, a page at a time, so a
long book keeps its task's deadline moving; a ``djvutxt`` whose worker is
killed at its deadline dies with it.
"""

from __future__ import annotations

import codecs
import re
import shutil
import signal
import subprocess
import sys

from indexer.errors import ExtractError

from .base import Extracted, Page, clean_text, page_read, read_head

MISSING = "djvutxt is not installed (hint: apt-get install djvulibre-bin)"
_PAGE = re.compile(r'^\(page -?\d+ -?\d+ -?\d+ -?\d+ "(.*)"\s*\)\s*$', re.DOTALL)


def _unescape(body: str) -> str:
    """A djvutxt string's C escapes (``\\n``, ``\\"``, octal bytes) decoded."""
    raw, _ = codecs.escape_decode(body.encode("utf-8", "surrogateescape"))
    return bytes(raw).decode("utf-8", "replace")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child is killed when the worker dies (a worker past its
    deadline is killed; its djvutxt must not live on)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _page_count(path: str) -> int | None:
    program = shutil.which("djvused")
    if program is None:
        return None
    try:
        done = subprocess.run(
            [program, "-e", "n", path], capture_output=True, text=True, timeout=60
        )
        return int(done.stdout.strip()) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return None


def extract_djvu(path: str) -> Extracted:
    """The text layer of every page of a DjVu document (bundled or indirect)."""
    head = read_head(path, 16)
    if not head.startswith(b"AT&TFORM"):
        raise ExtractError("not a DjVu document (no AT&TFORM header)")
    program = shutil.which("djvutxt")
    if program is None:
        raise ExtractError(MISSING)
    pages: list[Page] = []
    failed: list[tuple[int, int, str]] = []
    images: list[int] = []
    count = 0
    with subprocess.Popen(
        [program, "-detail=page", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            count += 1
            page_read()
            m = _PAGE.match(line)
            if m is None and line != "()":  # djvutxt prints "failed" for a page it cannot decode
                failed.append((count, count, "unreadable page (djvutxt could not decode it)"))
                continue
            text = clean_text(_unescape(m.group(1))) if m else ""
            if text:
                pages.append((count, text))
            else:  # (a DjVu page is a scan)
                images.append(count)
        err = proc.stderr.read()
    if failed and not pages:
        raise ExtractError("damaged DjVu (djvutxt could not decode its pages)")
    if proc.returncode == 0 and count:
        return Extracted(count, 1, count, pages, failed, images=images)
    why = " ".join(err.replace("*", " ").split())[:120] or f"djvutxt exit {proc.returncode}"
    total = _page_count(path) or 0
    if count == 0 or total <= count:
        raise ExtractError(f"damaged DjVu ({why})")
    failed.append((count + 1, total, f"unreadable pages ({why})"))
    return Extracted(total, 1, total, pages, failed, images=images)
