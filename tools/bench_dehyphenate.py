"""Measure pymupdf's dehyphenation on real PDFs: speed and correctness.

    python tools/bench_dehyphenate.py [FOLDER]   (default: the shared corpus's pdf/)

For every PDF (pages with text), extracts each page with plain ``get_text()``
(what the indexer does) and with ``flags=TEXT_DEHYPHENATE`` added, interleaved
and repeated 3 times, and prints the time of each. Then it judges every
line-end hyphen the flag removed (``exam-`` / ``ple`` became ``example``)
against the rest of the corpus's text:

* right: the joined word occurs elsewhere unbroken, and the hyphenated form
  does not (``exam-ple`` was a line break in ``example``);
* wrong: the hyphenated form occurs elsewhere (``self-contained``: the
  hyphen belonged to the word, and ``selfcontained`` is not what the page
  means);
* unknown: neither occurs elsewhere.
"""

from __future__ import annotations

import collections
import re
import sys
import time
from pathlib import Path

import pymupdf

HYPHEN_BREAK = re.compile(r"([^\W\d_]+)-\n([^\W\d_]+)")
WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def texts(pdf: Path, flags: int | None) -> tuple[list[str], float]:
    started = time.perf_counter()
    out = []
    try:
        with pymupdf.open(pdf) as doc:
            for page in doc:
                out.append(page.get_text() if flags is None else page.get_text(flags=flags))
    except Exception:  # a broken file: skipped, as its own error elsewhere
        return [], 0.0
    return out, time.perf_counter() - started


def main() -> None:
    default = Path(__file__).resolve().parent.parent.parent / "shared/corpus/pdf"
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    pdfs = sorted(folder.rglob("*.pdf"))
    flags = pymupdf.TEXTFLAGS_TEXT | pymupdf.TEXT_DEHYPHENATE
    plain_s = dehyph_s = 0.0
    plain_pages: dict[Path, list[str]] = {}
    for _ in range(3):
        for pdf in pdfs:
            pages, s = texts(pdf, None)
            plain_s += s
            plain_pages[pdf] = pages
            _, s = texts(pdf, flags)
            dehyph_s += s
    n_pages = sum(len(p) for p in plain_pages.values())
    print(f"{len(pdfs)} PDFs, {n_pages:,} pages; 3 interleaved rounds")
    print(f"get_text():                  {plain_s / 3:7.2f} s a round")
    print(
        f"get_text(TEXT_DEHYPHENATE):  {dehyph_s / 3:7.2f} s a round "
        f"({dehyph_s / plain_s - 1:+.1%})"
    )
    words: collections.Counter[str] = collections.Counter()
    for pages in plain_pages.values():
        for text in pages:
            words.update(w.lower() for w in WORD.findall(text.replace("-\n", " ")))
    verdict: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    for pages in plain_pages.values():
        for text in pages:
            for m in HYPHEN_BREAK.finditer(text):
                joined = (m.group(1) + m.group(2)).lower()
                hyphenated = f"{m.group(1)}-{m.group(2)}".lower()
                if words[hyphenated] > 0:
                    kind = "wrong"
                elif words[joined] > 0:
                    kind = "right"
                else:
                    kind = "unknown"
                verdict[kind] += 1
                if len(examples[kind]) < 6:
                    examples[kind].append(f"{m.group(1)}-/{m.group(2)}")
    total = sum(verdict.values())
    print(f"line-end hyphens the flag joins: {total:,}")
    for kind in ("right", "wrong", "unknown"):
        share = verdict[kind] / total if total else 0
        print(f"  {kind:8} {verdict[kind]:6,} ({share:.0%})  e.g. {', '.join(examples[kind])}")


if __name__ == "__main__":
    main()
