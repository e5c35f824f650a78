"""Which documents a search may return: folders or globs, formats, file times, languages.

Why this module exists: the filters of ``indexer search`` (``--path``,
``--format``, ``--since``, ``--before``, ``--lang``) are SQL conditions on the
``documents`` row a hit joins, built here with no database in sight; a path
filter also accepts a document one of whose copies it names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from indexer import store
from indexer.names import text_path


@dataclass(frozen=True)
class Filters:
    """Which documents a hit may come from (all of them when empty)."""

    paths: tuple[str, ...] = ()  # folders, files or globs (any of them)
    formats: tuple[str, ...] = ()  # document kinds: pdf, epub, txt, md, html
    since_ns: int | None = None  # file modification time, inclusive
    before_ns: int | None = None  # exclusive
    languages: tuple[str, ...] = ()  # "en" matches en, en-US, en-GB
    documents: tuple[int, ...] = ()  # documents rows (the web page's "this document's pages")

    def sql(self, copies: bool = True) -> tuple[str, list[object]]:
        """Conditions on ``d`` (documents), each with a leading AND.
        ``copies``: the index knows them (schema 4)."""
        parts: list[str] = []
        params: list[object] = []
        if self.paths:
            either = []
            for p in self.paths:
                cond, args = _path_condition(p)
                either.append(cond.replace("path", "d.path"))
                params.extend(args)
            cond = " OR ".join(either)
            if copies:
                cond += (
                    " OR EXISTS (SELECT 1 FROM documents c WHERE c.duplicate_of = d.id AND ("
                    + " OR ".join(either).replace("d.path", "c.path")
                    + "))"
                )
                params *= 2
            parts.append("(" + cond + ")")
        if self.formats:
            parts.append(f"d.kind IN ({','.join('?' * len(self.formats))})")
            params.extend(self.formats)
        if self.since_ns is not None:
            parts.append("d.mtime_ns >= ?")
            params.append(self.since_ns)
        if self.before_ns is not None:
            parts.append("d.mtime_ns < ?")
            params.append(self.before_ns)
        if self.languages:
            either = []
            for lang in self.languages:
                either.append("(lower(d.language) = ? OR lower(d.language) LIKE ?)")
                params += [lang.lower(), lang.lower() + "-%"]
            parts.append("(" + " OR ".join(either) + ")")
        if self.documents:
            parts.append(f"d.id IN ({','.join('?' * len(self.documents))})")
            params.extend(self.documents)
        return "".join(f" AND {p}" for p in parts), params


def _path_condition(pattern: str) -> tuple[str, tuple[str, ...]]:
    """A glob (``*``, ``?``, ``[``) matches the whole path, or the file name
    when it has no ``/``; anything else is a folder or a file and everything
    under it."""
    if any(c in pattern for c in "*?["):
        if os.sep not in pattern:
            return "path GLOB ?", ("*" + os.sep + pattern,)
        if not os.path.isabs(pattern):
            pattern = os.path.join(os.getcwd(), pattern)
        return "path GLOB ?", (text_path(pattern),)
    return store.under_root(os.path.abspath(pattern))
