"""Benchmark: how long the web search page takes to render on a large index.

    python -m tools.bench_serve [--pages 100000] [--repeat 20] [--db PATH]

Builds (or reuses) the generated index of ``tools/bench_search.py`` (pages
of Zipf-distributed words, documents with titles, formats, folders, dates
and languages), then asks Datasette, with the ``indexer`` plugin loaded,
for ``/DB/-/search?q=...`` through its own ASGI test client: routing, the
search (50 matching pages, grouped by document), each document's matching
page count, the facets and the template, everything but the socket. Each
class of query runs ``--repeat`` times with another word each round,
interleaved, after one warm-up round; it prints p50 and p99 in ms and the
page's own figure (``took``, the part spent reading the index).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.bench_search import ensure, pct, word  # noqa: E402


def classes(repeat: int, docs: int) -> dict[str, list[dict[str, str]]]:
    r = range(repeat)
    return {
        "common word (rank 0-19)": [{"q": word(i)} for i in r],
        "mid word (rank 1,000+)": [{"q": word(1000 + i)} for i in r],
        "rare word (rank 40,000+)": [{"q": word(40_000 + i)} for i in r],
        "two common words": [{"q": f"{word(i)} {word(i + 1)}"} for i in r],
        "phrase of common words": [{"q": f'"{word(i)} {word(i + 1)}"'} for i in r],
        "prefix (3 letters)": [{"q": word(i)[:3] + "*"} for i in r],
        "title words": [{"q": word(100 + i)} for i in r],
        "scope doc, two mid words": [
            {"q": f"{word(1000 + i)} {word(2000 + i)}", "scope": "doc"} for i in r
        ],
        "format epub, mid word": [{"q": word(1000 + i), "format": "epub"} for i in r],
        "lang fr, common word": [{"q": word(i), "lang": "fr"} for i in r],
        "result page 3, mid word": [{"q": word(1000 + i), "page": "3"} for i in r],
        "no query (the summary)": [{} for _ in r],
    }


async def run(db: Path, repeat: int, docs: int) -> None:
    from datasette.app import Datasette

    ds = Datasette([str(db)])
    await ds.invoke_startup()
    name = db.stem
    plugins = (await ds.client.get("/-/plugins.json")).json()
    if not any(p["name"] == "indexer" for p in plugins):
        sys.exit("the indexer plugin is not loaded: pip install -e '.[serve]' first")
    todo = classes(repeat, docs)
    times: dict[str, list[float]] = {k: [] for k in todo}
    took: dict[str, list[float]] = {k: [] for k in todo}
    for rounds in todo.values():  # warm-up: the page cache, Datasette's threads
        for params in rounds[:2]:
            await ds.client.get(f"/{name}/-/search?{urlencode(params)}")
    for i in range(repeat):
        for label, rounds in todo.items():
            started = time.perf_counter()
            response = await ds.client.get(f"/{name}/-/search?{urlencode(rounds[i])}")
            times[label].append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                sys.exit(f"{label}: status {response.status_code}")
            text = response.text
            at = text.find('class="indexer-took">')
            if at >= 0:
                took[label].append(float(text[at + 21 :].split(" ", 1)[0]))
    print(f"{'search page':32} {'p50 ms':>8} {'p99 ms':>8} {'index ms':>9}")
    for label in todo:
        inner = f"{statistics.median(took[label]):9.1f}" if took[label] else f"{'-':>9}"
        print(f"{label:32} {pct(times[label], 50):8.1f} {pct(times[label], 99):8.1f} {inner}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=100_000)
    ap.add_argument("--per-doc", type=int, default=100)
    ap.add_argument("--words", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--db", type=Path, default=Path("/tmp/bench-serve.db"))
    args = ap.parse_args()
    db: Path = args.db
    ensure(db, args.pages, args.per_doc, args.words)
    print(f"index: {args.pages:,} pages, {os.path.getsize(db) / 2**20:,.0f} MiB")
    asyncio.run(run(db, args.repeat, (args.pages + args.per_doc - 1) // args.per_doc))


if __name__ == "__main__":
    main()
