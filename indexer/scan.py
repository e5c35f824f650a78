"""Walk the roots given on the command line and list the documents under them.

Why this module exists: the scan is the cheap first step of every run, and the
nightly no-change run is nothing but a scan and a comparison, so it must be
fast (``os.scandir`` with the stat it already has) and must never abort: an
unreadable directory becomes a scan error, and the planner does not purge the
documents it used to hold (a missing mount must not empty the index).

Rules: hidden names (starting with ``.``) are skipped unless asked for;
symbolic links to files are followed, links to directories are not (no loops);
only the extensions in ``extract.EXTENSIONS`` are listed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from indexer.errors import UsageError
from indexer.extract import EXTENSIONS, kind_of


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute, as found under the root (links are not resolved)
    kind: str
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    roots: list[str]
    files: dict[str, FileEntry] = field(default_factory=dict)
    # (path, reason) for directories and files the scan could not read
    errors: list[tuple[str, str]] = field(default_factory=list)
    # directories that could not be listed: nothing below them is purged
    unreadable_dirs: list[str] = field(default_factory=list)


def sha256_file(path: str) -> str | None:
    """Streamed SHA-256 of a file's content, or None when it cannot be read.
    Who hashes which file, and when, is decided in ``schedule.py`` (header)."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def normalize_roots(paths: list[str]) -> list[str]:
    """Absolute, de-duplicated roots; a missing path is a usage error."""
    roots: list[str] = []
    for p in paths:
        root = os.path.abspath(os.path.expanduser(p))
        if not os.path.exists(root):
            raise UsageError(f"{p}: no such file or directory")
        if os.path.isfile(root) and kind_of(root) is None:
            kinds = ", ".join(sorted(set(EXTENSIONS)))
            raise UsageError(f"{p}: not a supported document type (extensions: {kinds})")
        if root not in roots:
            roots.append(root)
    return roots


def _reason(e: OSError) -> str:
    return (e.strerror or type(e).__name__).lower()


def scan(
    roots: list[str],
    include_hidden: bool = False,
    should_stop: Callable[[], None] | None = None,
) -> ScanResult:
    """List the documents under ``roots`` (already normalised). ``should_stop``
    is called once per directory and may raise to abandon the scan."""
    result = ScanResult(roots=roots)
    for root in roots:
        if os.path.isdir(root):
            _walk(root, result, include_hidden, should_stop or (lambda: None))
        else:
            _add_file(root, None, result)
    return result


def _add_file(path: str, entry: os.DirEntry[str] | None, result: ScanResult) -> None:
    kind = kind_of(entry.name if entry is not None else path)
    if kind is None:
        return
    try:
        st = entry.stat() if entry is not None else os.stat(path)
    except FileNotFoundError:
        return  # a dangling link or a file deleted while we walk
    except OSError as e:
        result.errors.append((path, _reason(e)))
        return
    if stat.S_ISREG(st.st_mode):
        result.files[path] = FileEntry(path, kind, st.st_size, st.st_mtime_ns)


def _walk(
    top: str, result: ScanResult, include_hidden: bool, should_stop: Callable[[], None]
) -> None:
    stack = [top]
    while stack:
        should_stop()
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except FileNotFoundError:
            continue
        except OSError as e:
            result.errors.append((directory, _reason(e)))
            result.unreadable_dirs.append(directory)
            continue
        for entry in entries:
            if not include_hidden and entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(entry.path)
            else:
                _add_file(entry.path, entry, result)
