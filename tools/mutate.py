"""Damaged copies of real documents: truncated, bytes flipped, ranges zeroed or doubled.

    python tools/mutate.py SOURCE_DIR DEST_DIR [--copies 2] [--seed 1] [--max-files 150]

Real files arrive damaged in these ways (interrupted downloads, bad sectors,
broken zip tools). Every copy must give a document or a one-line error record,
never "unexpected error" (an exception the extractors did not expect) or a
stopped run. ``tests/test_damage.py`` checks this on the fixtures and on a
sample of the shared corpus; for a larger run by hand:

    python tools/mutate.py ../shared/corpus /tmp/damaged --copies 3 --seed 7
    indexer index /tmp/damaged --db /tmp/damaged.db -q 2>&1 | grep "unexpected error"

Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from indexer.extract import EXTENSIONS

SUFFIXES = tuple(f".{ext}" for ext in EXTENSIONS)
KINDS = ("truncate", "flip", "zero", "double")


def mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    d = bytearray(data)
    if len(d) < 16:
        return bytes(d)
    if kind == "truncate":
        return bytes(d[: rng.randrange(1, len(d))])
    if kind == "flip":
        for _ in range(rng.randrange(1, 200)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        return bytes(d)
    a = rng.randrange(len(d))
    b = min(len(d), a + rng.randrange(1, 20_000))
    if kind == "zero":
        d[a:b] = bytes(b - a)
    else:  # double: a range repeated, shifting everything after it
        d[a:a] = d[a:b]
    return bytes(d)


def write_damaged(
    source: Path, dest: Path, copies: int = 2, seed: int = 1, max_files: int = 150
) -> list[Path]:
    """``copies`` damaged versions of up to ``max_files`` documents under ``source``."""
    rng = random.Random(seed)
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if len(files) > max_files:
        files = sorted(rng.sample(files, max_files))
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, path in enumerate(files):
        data = path.read_bytes()
        for c in range(copies):
            kind = KINDS[(i + c) % len(KINDS)]
            target = dest / f"{i:04d}-{c}-{kind}-{path.stem[:40]}{path.suffix.lower()}"
            target.write_bytes(mutate(data, kind, rng))
            out.append(target)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-files", type=int, default=150)
    args = ap.parse_args()
    made = write_damaged(args.source, args.dest, args.copies, args.seed, args.max_files)
    print(f"{len(made)} damaged copies in {args.dest}")


if __name__ == "__main__":
    main()
