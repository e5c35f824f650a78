"""Walk the roots given on the command line and list the documents under them.

Why this module exists: the scan is the cheap first step of every run, and the
nightly no-change run is nothing but a scan and a comparison, so it must be
fast (``os.scandir`` with the stat it already has) and must never abort: an
unreadable directory becomes a scan error, and the planner does not purge the
documents it used to hold (a missing mount must not empty the index).

Rules: hidden names (starting with ``.``) are skipped unless asked for;
symbolic links to files are followed when they stay inside the roots (a link
named ``notes.txt`` to ``/etc/shadow`` is not indexed), and to anywhere with
``follow_symlinks``; links to directories are not followed (no loops); only
regular files with the extensions in ``extract.EXTENSIONS`` are listed.

Nothing is purged that the scan could not see: a directory it could not list,
and a directory whose entries it could list but not examine (``chmod 644``:
the names are readable, the files behind them are not) are recorded in
``unreadable_dirs`` with a reason in ``errors``; the planner also protects a
root now on another device than when it was indexed (``devices``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import pathspec

from indexer.errors import UsageError
from indexer.extract import EXTENSIONS, kind_of, kind_of_name


class FileEntry(NamedTuple):  # a NamedTuple: the scan makes one per file
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
    # directories that could not be listed or examined: nothing below them is purged
    unreadable_dirs: list[str] = field(default_factory=list)
    # roots that are empty directories, and the device of each directory root:
    # the planner purges nothing below a root on another device than when it
    # was indexed (an unmounted disk leaves its empty mount point)
    empty_roots: list[str] = field(default_factory=list)
    devices: dict[str, int] = field(default_factory=dict)
    # files whose name is no document type's (not hidden ones): counted in
    # the run's summary, listed with --verbose
    unsupported: list[str] = field(default_factory=list)
    # files and folders left out by --exclude or an .indexerignore (nothing
    # below an excluded folder is listed): their documents are purged
    excluded: list[str] = field(default_factory=list)


def sha256_file(path: str, expect: tuple[int, int] | None = None) -> str | None:
    """Streamed SHA-256 of a regular file's content, or None when it cannot be
    read, is not a regular file (opened without blocking: a FIFO or a device
    that took a document's name is never read), or, with ``expect`` (size,
    mtime_ns), when it is not that file from start to end. Who hashes which
    file, and when, is decided in ``schedule.py`` (header)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if expect is not None and (st.st_size, st.st_mtime_ns) != expect:
            return None
        with open(fd, "rb", closefd=False) as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if expect is not None and file_stat(path) != expect:
            return None
        return digest
    except OSError:
        return None
    finally:
        os.close(fd)


def file_stat(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a regular file, or None (gone, unreadable, not a
    regular file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


class MissingRoot(UsageError):
    """A root to index that does not exist (``path``: as it was given)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: no such file or directory")
        self.path = path


def absolute(path: str) -> str:
    """A path as a run records its root (``~`` expanded, without asking the disk)."""
    return os.path.abspath(os.path.expanduser(path))


def normalize_roots(paths: list[str]) -> list[str]:
    """Absolute, de-duplicated roots; a missing path is a usage error."""
    roots: list[str] = []
    for p in paths:
        root = absolute(p)
        if not os.path.exists(root):
            raise MissingRoot(p)
        if os.path.isfile(root) and kind_of(root) is None:
            kinds = ", ".join(sorted(set(EXTENSIONS)))
            raise UsageError(f"{p}: not a supported document type (extensions: {kinds})")
        if root not in roots:
            roots.append(root)
    return _outermost(roots)


def _outermost(roots: list[str]) -> list[str]:
    """``roots`` less the folders that are, links resolved, the same folder
    as an earlier one or inside another: a file reached through two roots
    (``docs docs/sub``, a link to a folder beside the folder) is listed once.
    A file named as a root stays (it is indexed even where the walk would
    leave it out: hidden, excluded)."""
    real = {r: os.path.realpath(r) for r in roots}

    def inside(a: str, b: str) -> bool:
        return a.startswith(b.rstrip(os.sep) + os.sep)

    kept: list[str] = []
    for root in roots:
        if not os.path.isdir(root):
            kept.append(root)
            continue
        covered = any(real[root] == real[k] or inside(real[root], real[k]) for k in kept)
        covered = covered or any(
            inside(real[root], real[o]) for o in roots if o != root and os.path.isdir(o)
        )
        if not covered:
            kept.append(root)
    return kept


# a folder's own exclusions, gitignore patterns relative to it
IGNORE_FILE = ".indexerignore"
# (folder, its patterns), outermost first: a deeper folder's decide first
_Rules = tuple[tuple[str, "pathspec.GitIgnoreSpec"], ...]


def _patterns(lines: tuple[str, ...], where: str) -> pathspec.GitIgnoreSpec | None:
    """Gitignore patterns compiled (None: there are none)."""
    if not any(line.strip() and not line.startswith("#") for line in lines):
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{where}: not a gitignore pattern: {e}") from None


def _excluded(rules: _Rules, path: str, is_dir: bool) -> bool:
    """Whether the patterns exclude ``path``: the deepest folder with a
    pattern that matches it decides, its last such pattern (``!`` includes)."""
    for base, spec in reversed(rules):
        rel = path[len(base) + 1 :] + ("/" if is_dir else "")
        decided = spec.check_file(rel).include
        if decided is not None:
            return decided
    return False


def _reason(e: OSError) -> str:
    return (e.strerror or type(e).__name__).lower()


def scan(
    roots: list[str],
    include_hidden: bool = False,
    should_stop: Callable[[], None] | None = None,
    follow_symlinks: bool = False,
    exclude: tuple[str, ...] = (),
) -> ScanResult:
    """List the documents under ``roots`` (already normalised). ``should_stop``
    is called once per directory and may raise to abandon the scan.
    ``exclude``: gitignore patterns on the path relative to each root; an
    ``IGNORE_FILE`` in any folder adds its own, relative to that folder."""
    result = ScanResult(roots=roots)
    walk = _Walk(result, roots, include_hidden, follow_symlinks, should_stop or (lambda: None))
    walk.exclude = _patterns(exclude, "--exclude")
    for root in roots:
        if os.path.isdir(root):
            walk.tree(root)
        else:
            walk.add_file(root, None)  # named by the user: followed wherever it leads
    if walk.links:
        _drop_links_to_listed(result, walk.links)
    return result


def _drop_links_to_listed(result: ScanResult, links: list[str]) -> None:
    """A link to a file that the walk lists under its own name is not listed
    again: one file, one document. (The walk follows no link to a folder, so
    a file's real path is its root's real path and the rest of its path.)"""
    linked = set(links)
    real_roots = [(r.rstrip(os.sep) + os.sep, os.path.realpath(r) + os.sep) for r in result.roots]
    listed = set()
    for path in result.files:
        if path not in linked:
            for prefix, real in real_roots:
                if path.startswith(prefix):
                    listed.add(real + path[len(prefix) :])
                    break
    for link in links:
        if link in result.files and os.path.realpath(link) in listed:
            del result.files[link]


class _Walk:
    def __init__(
        self,
        result: ScanResult,
        roots: list[str],
        include_hidden: bool,
        follow_symlinks: bool,
        should_stop: Callable[[], None],
    ) -> None:
        self.result = result
        self.exclude: pathspec.GitIgnoreSpec | None = None
        self.links: list[str] = []  # links to files the walk followed
        self.include_hidden = include_hidden
        self.should_stop = should_stop
        # where a link may lead: None, anywhere
        self.inside: list[str] | None = (
            None if follow_symlinks else [os.path.realpath(r) for r in roots]
        )

    def tree(self, top: str) -> None:
        stack: list[tuple[str, _Rules]] = [
            (top, () if self.exclude is None else ((top, self.exclude),))
        ]
        while stack:
            self.should_stop()
            directory, rules = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except FileNotFoundError:
                continue
            except OSError as e:
                self._unreadable(directory, _reason(e))
                continue
            if any(entry.name == IGNORE_FILE for entry in entries):
                rules = self._ignore_file(directory, rules)
            if directory == top:
                with contextlib.suppress(OSError):
                    self.result.devices[top] = os.stat(top).st_dev
                if not entries:
                    self.result.empty_roots.append(top)
            subdirs = []
            files, lstat, S_ISREG = self.result.files, os.lstat, stat.S_ISREG
            unsupported = self.result.unsupported
            hidden = self.include_hidden
            for entry in entries:
                name = entry.name
                if name[0] == "." and not hidden:
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if rules and _excluded(rules, entry.path, True):
                            self.result.excluded.append(entry.path)
                        else:
                            subdirs.append(entry.path)
                        continue
                    # the common case inline (a no-op run of 200,000 files is
                    # mostly this loop): a regular file with a document's name
                    kind = kind_of_name(name)
                    if rules and _excluded(rules, entry.path, False):
                        self.result.excluded.append(entry.path)
                        continue
                    if kind is None:
                        unsupported.append(entry.path)
                        continue
                    if entry.is_symlink():
                        self.add_file(entry.path, entry)
                        self.links.append(entry.path)
                        continue
                    path = entry.path
                    st = lstat(path)  # (DirEntry.stat() takes 20 % longer)
                    if S_ISREG(st.st_mode):
                        files[path] = FileEntry(path, kind, st.st_size, st.st_mtime_ns)
                except FileNotFoundError:
                    continue  # deleted while we walk
                except OSError as e:
                    # the names can be listed, the entries not examined: the
                    # whole directory counts as unreadable
                    self._unreadable(directory, f"{_reason(e)} (its entries cannot be examined)")
                    break
            else:
                stack.extend((d, rules) for d in subdirs)

    def _ignore_file(self, directory: str, rules: _Rules) -> _Rules:
        """``rules`` and those of ``directory``'s ignore file, which an
        unreadable or undecodable file adds none of (said as a folder error)."""
        path = os.path.join(directory, IGNORE_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                spec = _patterns(tuple(f.read().splitlines()), path)
        except UnicodeDecodeError:
            self.result.errors.append((path, "ignore file not read: not UTF-8 text"))
            return rules
        except OSError as e:
            self.result.errors.append((path, f"ignore file not read: {_reason(e)}"))
            return rules
        except UsageError as e:
            self.result.errors.append((path, f"ignore file not read: {e.message}"))
            return rules
        return rules if spec is None else (*rules, (directory, spec))

    def _unreadable(self, directory: str, reason: str) -> None:
        self.result.errors.append((directory, reason))
        self.result.unreadable_dirs.append(directory)

    def add_file(self, path: str, entry: os.DirEntry[str] | None) -> None:
        """List ``path`` if it is a document. Raises OSError when it cannot be
        examined (the caller decides what that means)."""
        kind = kind_of(entry.name if entry is not None else path)
        if kind is None:
            return
        link = False
        try:
            link = entry is not None and entry.is_symlink()
            if link and not self._may_follow(path):
                return
            st = entry.stat() if entry is not None else os.stat(path)
        except FileNotFoundError:
            return  # a dangling link or a file deleted while we walk
        except OSError as e:
            if entry is not None and not link:
                raise
            # a link whose target cannot be examined (a loop), or a root
            self.result.errors.append((path, _reason(e)))
            return
        if stat.S_ISREG(st.st_mode):
            self.result.files[path] = FileEntry(path, kind, st.st_size, st.st_mtime_ns)

    def _may_follow(self, link: str) -> bool:
        """A link to a file is followed when it stays inside the roots."""
        if self.inside is None:
            return True
        target = os.path.realpath(link)
        return any(target == r or target.startswith(r.rstrip(os.sep) + os.sep) for r in self.inside)
