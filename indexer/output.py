"""How ``indexer search`` prints its results: a terminal, a pipe, or a script.

Why this module exists: one result, five forms (rich on a terminal, plain
lines in a pipe, ``--json`` lines, ``--csv``, ``--files``), kept out of the
CLI module, which only picks one. Text from documents and their names never
reaches a terminal raw: every form but JSON and CSV (which quote) goes
through ``progress.printable``; JSON and CSV carry it as data.
"""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from typing import IO, Literal

from indexer.errors import UsageError
from indexer.progress import printable
from indexer.query import HL_END, HL_START
from indexer.search import SearchResult, WordPage

Form = Literal["terminal", "plain", "json", "csv", "files"]


def write(result: SearchResult, form: Form, out: IO[str]) -> None:
    {"terminal": _terminal, "plain": _plain, "json": _json, "csv": _csv, "files": _files}[form](
        result, out
    )


def _files(result: SearchResult, out: IO[str]) -> None:
    for path in result.paths(copies=True):
        out.write(printable(path) + "\n")


def _plain(result: SearchResult, out: IO[str]) -> None:
    for h in result.hits:
        out.write(printable(f"{h.path}:{h.page}: {h.marked()}") + "\n")
        for copy in h.copies:
            out.write(printable(f"{copy}:{h.page}: (a copy of {h.path})") + "\n")
    for d in result.docs:
        out.write(printable(d.path) + "\n")
        for wp in d.pages:
            out.write(printable(f"  {wp.word}: {d.path}:{wp.page}: {wp.marked()}") + "\n")


def _json(result: SearchResult, out: IO[str]) -> None:
    for h in result.hits:
        line = {"path": h.path, "page": h.page, "label": h.label, "kind": h.kind}
        line |= {"title": h.title, "authors": h.authors, "rank": h.rank, "snippet": h.marked()}
        line |= {"in_meta": h.in_meta, "copies": list(h.copies), "url": h.url(), "line": h.line}
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    for d in result.docs:
        pages = [{"word": wp.word, "page": wp.page, "snippet": wp.marked()} for wp in d.pages]
        line = {"path": d.path, "kind": d.kind, "title": d.title, "authors": d.authors}
        line |= {"rank": d.rank, "pages": pages, "in_meta": d.in_meta, "copies": list(d.copies)}
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _csv(result: SearchResult, out: IO[str]) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        ["path", "page", "label", "kind", "title", "authors", "rank", "word", "snippet", "copies"]
    )
    for h in result.hits:
        row = [h.path, h.page, h.label, h.kind, h.title, h.authors, h.rank, "", h.marked()]
        w.writerow([*row, ";".join(h.copies)])
    for d in result.docs:
        for wp in d.pages or [WordPage("", 0, "")]:
            row = [d.path, wp.page or "", "", d.kind, d.title, d.authors, d.rank, wp.word]
            w.writerow([*row, wp.marked(), ";".join(d.copies)])


def _terminal(result: SearchResult, out: IO[str]) -> None:
    from rich.console import Console
    from rich.style import Style
    from rich.text import Text

    console = Console(file=out, highlight=False, soft_wrap=True, force_terminal=True)

    def snippet(text: Text, marked: str) -> Text:
        # only the matched words stand out; the rest of the line is plain
        for i, part in enumerate(marked.replace(HL_END, HL_START).split(HL_START)):
            text.append(printable(part), style="bold red" if i % 2 else "")
        return text

    def heading(title: str | None, authors: str | None, path: str, copies: tuple[str, ...]) -> None:
        text = Text()
        if title:
            text.append(printable(title), style="bold")
            if authors:
                text.append(f" — {printable(authors)}")
            text.append("  ")
        text.append(printable(path), style="cyan")
        console.print(text)
        for copy in copies:  # the same bytes, indexed once
            console.print(Text("  also at ", style="dim").append(printable(copy), style="cyan"))

    shown = None
    for h in result.hits:  # grouped: a document's heading once, before its hits
        if h.path != shown:
            heading(h.title, h.authors, h.path, h.copies)
            shown = h.path
        where = f"p. {h.label} (PDF {h.page})" if h.label else f"p. {h.page}"
        if h.line is not None:
            where += f" (line {h.line})"
        # the page is a link (OSC 8) that opens the file, a PDF at the page
        text = Text("  ").append(where, style=Style(dim=True, link=h.url())).append(": ")
        console.print(snippet(text, h.snippet))
    for d in result.docs:
        heading(d.title, d.authors, d.path, d.copies)
        for wp in d.pages:
            text = Text(f"  {printable(wp.word)}: ", style="bold")
            text.append(f"p. {wp.page}: ", style="dim")
            console.print(snippet(text, wp.snippet))


def date_ns(text: str, option: str) -> int:
    """``2024``, ``2024-05``, ``2024-05-17`` or an ISO date-time, in local
    time, as nanoseconds since the epoch."""
    t = text.strip()
    try:
        if len(t) == 4 and t.isdigit():
            moment = datetime(int(t), 1, 1)
        elif len(t) == 7 and t[4] == "-":
            moment = datetime(int(t[:4]), int(t[5:]), 1)
        elif len(t) == 10:
            moment = datetime.combine(date.fromisoformat(t), datetime.min.time())
        else:
            moment = datetime.fromisoformat(t)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a date", hint="use YYYY, YYYY-MM, YYYY-MM-DD or an ISO time"
        ) from None
    # SQLite's integers hold 1677 to 2262 in nanoseconds: a date beyond is as
    # good as the end it is beyond (and year 1 in local time is no timestamp)
    try:
        ns = int(moment.timestamp() * 1_000_000_000)
    except (ValueError, OverflowError, OSError):
        ns = -(2**63) if moment.year < 1970 else 2**63 - 1
    return max(-(2**63), min(2**63 - 1, ns))
