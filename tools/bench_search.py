"""Benchmark: search latency on a large index (default 1,000,000 pages).

    python tools/bench_search.py [--pages 1000000] [--per-doc 100] [--words 150]
                                 [--repeat 20] [--db PATH] [--keep]

Builds an index of generated text written through the project's own writer
process (``WriterHandle``, the same messages a run sends): documents of
``--per-doc`` pages, pages of ``--words`` words drawn from a Zipf-like
vocabulary, so the commonest word is on nearly every page and the rarest on a
handful; every document has a title, an author, a format, a folder, a file
time and a language, so each filter has something to choose. An existing
``--db`` of the same shape is reused (building 1M pages takes minutes).

Then it runs each kind of query ``--repeat`` times through ``search.search``
(what ``indexer search`` calls; ``--limit 20``), each time with another word
of its class, interleaved, and prints p50/p99 latency per class, the pages
each class matched, and the index size per page. Latency is measured with a
warm page cache (each query once before the timed rounds), which is what a
second search on a desktop sees.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.extract.base import Meta  # noqa: E402
from indexer.messages import Document  # noqa: E402
from indexer.search import Filters, search  # noqa: E402
from indexer.writer import WriterHandle  # noqa: E402

VOCABULARY = 50_000
FORMATS = ("pdf", "epub", "txt", "md", "html")
LANGUAGES = ("en", "fr", "de", "es")
T0 = 1_600_000_000 * 10**9  # file times: T0 + document number days


def word(rank: int) -> str:
    """The vocabulary's word of this rank (0: the commonest), pronounceable
    and unique."""
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    out, n = [], rank + 17 * 5
    while n:
        out.append(consonants[n % 17] + vowels[(n // 17) % 5])
        n //= 85
    return "".join(out)


def build(db: Path, pages: int, per_doc: int, words: int) -> float:
    rng = random.Random(1)
    weights = [1 / (r + 1) for r in range(VOCABULARY)]  # Zipf, s = 1
    cum = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    vocab = [word(r) for r in range(VOCABULARY)]
    w = WriterHandle(str(db), ["/"], batch_rows=20_000, batch_seconds=10)
    w.start()
    started = time.perf_counter()
    docs = (pages + per_doc - 1) // per_doc
    for d in range(docs):
        n = min(per_doc, pages - d * per_doc)
        kind = FORMATS[d % len(FORMATS)]
        body = [(p + 1, " ".join(rng.choices(vocab, cum_weights=cum, k=words))) for p in range(n)]
        title = " ".join(rng.choices(vocab[100:], cum_weights=cum[100:], k=4)).title()
        meta = Meta(
            title=title,
            authors=f"{word(d % 997 + 1000).title()} {word(d % 991 + 3000).title()}",
            language=LANGUAGES[d % len(LANGUAGES)],
        )
        w.send(
            Document(
                path=f"/lib/shelf{d % 50:02d}/doc{d:06d}.{kind}",
                kind=kind,
                size=n * words * 7,
                mtime_ns=T0 + d * 86_400 * 10**9,
                sha256=f"{d:064x}",
                status=None,
                page_count=n,
                pages=body,
                meta=meta,
            )
        )
        if d % 1000 == 999:
            print(f"  {(d + 1) * per_doc:,} pages written", file=sys.stderr)
    w.finish("ok", {})
    seconds = time.perf_counter() - started
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO pages_fts (pages_fts) VALUES ('optimize')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return seconds


def queries(repeat: int, docs: int) -> dict[str, list[tuple[str, dict[str, object]]]]:
    """Each class's queries, one per round."""
    r = range(repeat)
    day = 86_400 * 10**9
    return {
        "common word (rank 0-19)": [(word(i), {}) for i in r],
        "mid word (rank 1,000+)": [(word(1000 + i), {}) for i in r],
        "rare word (rank 40,000+)": [(word(40_000 + i), {}) for i in r],
        "two common words": [(f"{word(i)} {word(i + 1)}", {}) for i in r],
        "common + rare": [(f"{word(i)} {word(40_000 + i)}", {}) for i in r],
        "phrase of common words": [(f'"{word(i)} {word(i + 1)}"', {}) for i in r],
        "prefix (3 letters)": [(word(i)[:3] + "*", {}) for i in r],
        "prefix (4 letters, mid word)": [(word(1000 + i)[:4] + "*", {}) for i in r],
        "title words": [(word(100 + i), {}) for i in r],
        "scope doc, two mid words": [
            (f"{word(1000 + i)} {word(2000 + i)}", {"scope": "doc"}) for i in r
        ],
        "filter --path folder": [
            (word(1000 + i), {"filters": Filters(paths=(f"/lib/shelf{i % 50:02d}",))}) for i in r
        ],
        "filter --format epub": [
            (word(1000 + i), {"filters": Filters(formats=("epub",))}) for i in r
        ],
        "filter --since (last 10 %)": [
            (word(1000 + i), {"filters": Filters(since_ns=T0 + int(docs * 0.9) * day)}) for i in r
        ],
        "filter --lang fr": [(word(1000 + i), {"filters": Filters(languages=("fr",))}) for i in r],
        "filter --path, common word": [
            (word(i), {"filters": Filters(paths=(f"/lib/shelf{i % 50:02d}",))}) for i in r
        ],
        # the documents a filter passes are in one stretch of the index
        "filter oldest 1 % (glob), common": [
            (word(i), {"filters": Filters(paths=(f"/lib/*/doc00{i % 10}0??.*",))}) for i in r
        ],
        "filter --before (oldest 1 %), mid": [
            (word(1000 + i), {"filters": Filters(before_ns=T0 + docs // 100 * day)}) for i in r
        ],
        "filter --since (newest 1 %), mid": [
            (word(1000 + i), {"filters": Filters(since_ns=T0 + docs * 99 // 100 * day)}) for i in r
        ],
    }


def ensure(db: Path, pages: int, per_doc: int, words: int) -> None:
    """Build the index at ``db`` unless one of this shape is there already."""
    shape = (pages, per_doc, words)
    marker = db.with_suffix(".shape")
    if db.exists() and marker.exists() and marker.read_text() == repr(shape):
        return
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    print(f"building {pages:,} pages into {db} ...", file=sys.stderr)
    seconds = build(db, *shape)
    marker.write_text(repr(shape))
    print(f"built in {seconds:.0f} s ({pages / seconds:,.0f} pages/s)")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--per-doc", type=int, default=100)
    ap.add_argument("--words", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--db", type=Path, default=Path("/tmp/bench-search.db"))
    ap.add_argument("--keep", action="store_true", help="keep the index for the next run")
    args = ap.parse_args()
    db: Path = args.db
    ensure(db, args.pages, args.per_doc, args.words)
    size = os.path.getsize(db)
    print(
        f"index: {size / 2**20:,.0f} MiB for {args.pages:,} pages "
        f"({size / args.pages:,.0f} bytes per page; {args.words} words a page)"
    )
    docs = (args.pages + args.per_doc - 1) // args.per_doc
    classes = queries(args.repeat, docs)
    times: dict[str, list[float]] = {name: [] for name in classes}
    matched: dict[str, list[int]] = {name: [] for name in classes}
    for qs in classes.values():  # warm up: every query once
        for q, kw in qs:
            search(db, q, limit=20, **kw)  # type: ignore[arg-type]
    for i in range(args.repeat):  # interleaved: round i runs every class once
        for name, qs in classes.items():
            q, kw = qs[i]
            started = time.perf_counter()
            result = search(db, q, limit=20, **kw)  # type: ignore[arg-type]
            times[name].append((time.perf_counter() - started) * 1000)
            matched[name].append(len(result.hits) + len(result.docs))
    conn = sqlite3.connect(db)
    counts = {}
    for name, qs in classes.items():  # how many pages each class's words are on
        q = qs[0][0]
        if q.startswith('"') or "scope" in qs[0][1] or "filters" in qs[0][1]:
            continue
        counts[name] = conn.execute(
            "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ?", (q,)
        ).fetchone()[0]
    conn.close()
    head = f"{'query (--limit 20)':36} {'p50 ms':>8} {'p99 ms':>8} {'hits':>5}"
    print(f"\n{head} {'pages matched':>14}")
    for name in classes:
        shown = f"{counts[name]:,}" if name in counts else ""
        print(
            f"{name:36} {statistics.median(times[name]):8.1f} {pct(times[name], 99):8.1f} "
            f"{min(matched[name]):5} {shown:>14}"
        )
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        db.with_suffix(".shape").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
