"""Shared test helpers: where the fixtures and the shared corpus are, how to run
the CLI (in-process with Typer's runner, or as a real subprocess), and one
checker that compares an index with a manifest (the corpus's MANIFEST.tsv or
fixtures/EXPECTED.tsv)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from indexer.cli import app
from indexer.extract import kind_of

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
CORPUS = Path(os.environ.get("INDEXER_CORPUS", REPO.parent / "shared" / "corpus"))

# Files where our extractor legitimately disagrees with the corpus manifest.
KNOWN_DIFFERENCES = {
    # Its spine items are raw JPEG images. The manifest's tolerant XML parser
    # dug "Default RGB colour space - sRGB" out of an image's ICC profile and
    # called that text; we do not index image metadata, so the book is empty.
    "epub/page-blanche-bitmaps-in-spine.epub": "empty",
}


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        reason = (
            f"the shared corpus is not at {CORPUS} (it sits beside the repository in "
            "development and CI; set INDEXER_CORPUS to point elsewhere)"
        )
        if os.environ.get("INDEXER_REQUIRE_CORPUS") == "1":
            pytest.fail(reason + " and INDEXER_REQUIRE_CORPUS=1")
        pytest.skip(reason)
    return CORPUS


def require_programs(package: str, *programs: str) -> None:
    """Skip the test when a system program it needs is missing (a failure
    where INDEXER_REQUIRE_TOOLS=1, as in CI, which installs them)."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (apt-get install {package})"
        if os.environ.get("INDEXER_REQUIRE_TOOLS") == "1":
            pytest.fail(reason + " and INDEXER_REQUIRE_TOOLS=1")
        pytest.skip(reason)


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def invoke(*args: object) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_cli(
    *args: object,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    prefix: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m indexer ARGS`` as a real process (``prefix``: a command
    it runs under, such as ``as_ordinary_user()``)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "indexer", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def run_in_session(
    args: list[str], env: dict[str, str], timeout: float
) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``args`` in a session of its own: the session's id (its pid, for
    ``session_processes`` to find what it left behind) and the process."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    out, err = proc.communicate(timeout=timeout)
    return proc.pid, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def session_processes(sid: int) -> list[psutil.Process]:
    """The living processes of session ``sid`` (a run started in a session of
    its own: what it left behind)."""
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return out


def as_ordinary_user() -> list[str]:
    """A command prefix under which file permissions apply: root ignores them
    (CAP_DAC_OVERRIDE), so as root the command runs without that capability
    (util-linux's setpriv); as anyone else, as it is."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root, the permission tests need setpriv (util-linux)")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def search_json(db: Path, query: str, limit: int = 100) -> list[dict[str, object]]:
    code, out, err = invoke("search", query, "--db", db, "--json", "--limit", limit)
    assert code in (0, 1), err
    return [json.loads(line) for line in out.splitlines()]


def check_against_manifest(db: Path, base: Path, rows: list[dict[str, str]]) -> list[str]:
    """Problems found comparing the index with a manifest; [] when all agree."""
    problems = []
    conn = sqlite3.connect(db)
    docs = {r[0]: r[1:] for r in conn.execute("SELECT path, status, pages, error FROM documents")}
    errors = {r[0]: r[1] for r in conn.execute("SELECT path, reason FROM errors")}
    conn.close()
    for row in rows:
        path = str((base / row["path"]).absolute())
        expect = KNOWN_DIFFERENCES.get(row["path"], row["expect"])
        if path not in docs:
            problems.append(f"{row['path']}: not in the index")
            continue
        status, pages, error = docs[path]
        if status != expect:
            problems.append(f"{row['path']}: status {status} ({error}), expected {expect}")
            continue
        if expect == "error" and not errors.get(path):
            problems.append(f"{row['path']}: error without a reason in the errors view")
        # manifests count a text or HTML file as one page: indexer cuts them
        # into pages of a few KB (extract.base.split_pages), found on any
        whole = kind_of(row["path"]) in ("txt", "md", "html")
        if row["pages"] and expect != "error" and not whole and int(row["pages"]) != pages:
            problems.append(f"{row['path']}: {pages} pages, expected {row['pages']}")
        if row["probe_phrase"] and expect == "ok":
            phrase = '"' + row["probe_phrase"] + '"'
            hits = search_json(db, phrase)
            if not any(
                h["path"] == path and (whole or h["page"] == int(row["probe_page"])) for h in hits
            ):
                problems.append(f"{row['path']}: {phrase} not found on page {row['probe_page']}")
    return problems


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    """A writable copy of fixtures/ (tests that modify files)."""
    dest = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, dest)
    return dest


def db_snapshot(db: Path) -> dict[str, object]:
    """Everything a run's result is judged on: documents and page texts."""
    conn = sqlite3.connect(db)
    try:
        docs = sorted(
            conn.execute(
                "SELECT path, kind, status, pages, sha256, failed_ranges IS NOT NULL FROM documents"
            )
        )
        # a copy's pages are those of the document it copies (which of two
        # identical files holds them depends on the order they were read in)
        pages = sorted(
            conn.execute(
                "SELECT d.path, p.page, p.text FROM pages p "
                "JOIN documents d ON coalesce(d.duplicate_of, d.id) = p.doc_id"
            )
        )
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        fts_check = conn.execute(
            "INSERT INTO pages_fts (pages_fts, rank) VALUES ('integrity-check', 1)"
        ).fetchall()
        fts_check += conn.execute(
            "INSERT INTO documents_fts (documents_fts, rank) VALUES ('integrity-check', 1)"
        ).fetchall()
    finally:
        conn.close()
    return {"docs": docs, "pages": pages, "integrity": check, "fts_integrity": fts_check == []}
