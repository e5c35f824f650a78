"""Measure ``search --stem``'s precision on real books: how many of the pages a
stemmed word finds hold a form of that word.

    python tools/bench_stemming.py [--lang en] [--sample 300] [--db PATH] [FOLDER...]
    (default folders: the shared corpus's epub/ and pdf/)

Indexes the folders (once; ``--db`` keeps the index), then draws ``--sample``
words of at least four letters from the index's own vocabulary (words on at
least two pages, seed 1) and searches each as ``--stem`` does: the prefix of
its Snowball stem (``query.stemmed``). For each word it counts

* the pages the exact word is on,
* the pages the stem's prefix finds,
* of those, the pages holding a word whose own stem is the same (a form of
  the word: ``running``, ``runs`` for ``run``) rather than a longer word that
  only starts alike (``runway``): precision = these / all the prefix found.

It prints the mean and the median precision, the share of words at 100 %,
the pages found per word with and without stemming, and the worst words.
"""

from __future__ import annotations

import argparse
import bisect
import random
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.query import fold, parse, stemmed, stemmer  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def count(conn: sqlite3.Connection, match: str) -> int:
    sql = "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ?"
    return int(conn.execute(sql, (match,)).fetchone()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="*", type=Path)
    ap.add_argument("--lang", default="en")
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--db", type=Path, default=Path("/tmp/bench-stemming.db"))
    args = ap.parse_args()
    folders = args.folders or [CORPUS / "epub", CORPUS / "pdf"]
    if not args.db.exists():
        cmd = [sys.executable, "-m", "indexer", "index", *map(str, folders), "--db", str(args.db)]
        subprocess.run([*cmd, "-q"], check=False)
    stem = stemmer(args.lang)
    conn = sqlite3.connect(args.db)
    conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, pages_fts, row)")
    vocab = {
        term: pages
        for term, pages in conn.execute("SELECT term, doc FROM temp.vocab")
        if term.isalpha()
    }
    terms = sorted(vocab)
    candidates = sorted(t for t, n in vocab.items() if n >= 2 and len(t) >= 4)
    words = random.Random(1).sample(candidates, min(args.sample, len(candidates)))
    rows = []
    for word in words:
        (term,) = stemmed(parse(word), stem).terms
        if not term.prefix:  # searched as typed: nothing to measure
            rows.append((word, term.tokens[0], 1.0, vocab[word], vocab[word]))
            continue
        prefix = term.tokens[0]
        at = bisect.bisect_left(terms, prefix)
        matched = []
        while at < len(terms) and terms[at].startswith(prefix):
            matched.append(terms[at])
            at += 1
        forms = [t for t in matched if fold(stem(t)) == prefix]
        found = count(conn, f'"{prefix}"*')
        right = count(conn, " OR ".join(f'"{t}"' for t in forms)) if forms else 0
        rows.append((word, prefix + "*", right / found if found else 1.0, vocab[word], found))
    conn.close()
    precision = [r[2] for r in rows]
    changed = [r for r in rows if r[1].endswith("*")]
    print(f"{args.db}: {len(vocab):,} words in the index; {len(rows)} sampled, {args.lang}")
    print(f"searched as a stem prefix: {len(changed)} of {len(rows)}")
    print(f"precision over all sampled words: mean {statistics.mean(precision):.1%}, ", end="")
    print(f"median {statistics.median(precision):.1%}, at 100 %: ", end="")
    print(f"{sum(p == 1.0 for p in precision) / len(precision):.0%}")
    if changed:
        p = [r[2] for r in changed]
        print(f"precision over the stemmed ones: mean {statistics.mean(p):.1%}, ", end="")
        print(f"median {statistics.median(p):.1%}")
        exact = statistics.mean(r[3] for r in changed)
        stem_found = statistics.mean(r[4] for r in changed)
        print(f"pages found per stemmed word: {exact:.1f} exact, {stem_found:.1f} with --stem")
    print(
        "worst:",
        ", ".join(
            f"{w} -> {s} ({p:.0%})" for w, s, p, _, _ in sorted(rows, key=lambda r: r[2])[:8]
        ),
    )


if __name__ == "__main__":
    main()
