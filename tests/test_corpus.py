"""The whole shared corpus of real-world documents in one run.

Needs ../shared/corpus (or $INDEXER_CORPUS): skipped with that reason when it is
missing, a failure in CI (INDEXER_REQUIRE_CORPUS=1)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import check_against_manifest, read_manifest, run_cli


@pytest.fixture(scope="module")
def corpus_run(
    corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    db = tmp_path_factory.mktemp("corpus") / "corpus.db"
    return db, run_cli("index", corpus, "--db", db, timeout=600)


def test_corpus_run_finishes_with_status_1_and_a_valid_index(
    corpus_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, proc = corpus_run
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.execute("INSERT INTO pages_fts (pages_fts, rank) VALUES ('integrity-check', 1)")


def test_every_manifest_row_is_indexed_as_expected(
    corpus: Path, corpus_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    db, _ = corpus_run
    rows = read_manifest(corpus / "MANIFEST.tsv")
    assert len(rows) > 200
    assert check_against_manifest(db, corpus, rows) == []


def test_every_error_has_a_stderr_line(
    corpus: Path, corpus_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    _, proc = corpus_run
    for row in read_manifest(corpus / "MANIFEST.tsv"):
        if row["expect"] == "error":
            assert f"{corpus / row['path']}: " in proc.stderr


def test_a_rerun_does_nothing(
    corpus: Path, corpus_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    db, first = corpus_run
    failed = int(first.stderr.splitlines()[-1].split(" failed")[0].rsplit(" ", 1)[1])
    assert failed > 0  # the corpus has broken files on purpose
    proc = run_cli("index", corpus, "--db", db)
    assert proc.returncode == 1, proc.stderr  # they are still not indexed
    assert proc.stderr.startswith("0 new, 0 changed, 0 moved, 0 deleted, 0 failed; 0 pages")
    assert f"; {failed} still failing (--retry-errors to retry)" in proc.stderr
