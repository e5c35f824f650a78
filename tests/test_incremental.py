"""Incremental runs through the real pipeline (indexer.run.index): only the work
that changed is done, and the result always equals a fresh run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.config import Config
from indexer.run import RunSummary, index
from tests.conftest import FIXTURES, REPO, db_snapshot, run_cli
from tools.docgen import write_epub, write_long_pdf, write_pdf


def run(root: Path | list[Path], db: Path, **kw: object) -> RunSummary:
    roots = [str(r) for r in (root if isinstance(root, list) else [root])]
    cfg = Config(
        db=db, workers=2, **{k: v for k, v in kw.items() if k in Config.__dataclass_fields__}
    )
    return index(roots, cfg, dry_run=bool(kw.get("dry_run", False)))


def page_ids(db: Path, path: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [
            r[0]
            for r in conn.execute(
                "SELECT p.id FROM pages p JOIN documents d ON d.id = p.doc_id WHERE d.path = ? "
                "ORDER BY p.page",
                (str(path),),
            )
        ]
    finally:
        conn.close()


def texts(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return {
            os.path.basename(p): t
            for p, t in conn.execute(
                "SELECT d.path, group_concat(p.text, ' ') FROM documents d "
                "JOIN pages p ON p.doc_id = d.id GROUP BY d.id"
            )
        }
    finally:
        conn.close()


def test_every_kind_of_change_does_only_its_work(fixture_copy: Path, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    first = run(fixture_copy, db)
    assert (first.new, first.failed) == (19, 9)
    good = fixture_copy / "good"

    again = run(fixture_copy, db)
    assert (again.new, again.changed, again.indexed, again.pages) == (0, 0, 0, 0)
    assert (again.unchanged, again.skipped_errors) == (10, 9)

    guide_ids = page_ids(db, good / "field-guide.pdf")
    os.utime(good / "field-guide.pdf", ns=(1, 1_700_000_000 * 10**9))  # touched, same bytes
    (good / "notes.txt").write_text("Now the list says: anchors and barometers.\n")  # changed
    (good / "archive").mkdir()
    shutil.move(good / "voyage.epub", good / "archive" / "voyage-renamed.epub")  # moved
    voyage_ids = page_ids(db, good / "voyage.epub")
    (good / "readme.md").unlink()  # deleted
    s = run(fixture_copy, db)
    assert (s.new, s.changed, s.moved, s.touched, s.deleted, s.indexed) == (0, 1, 1, 1, 1, 1)
    assert page_ids(db, good / "field-guide.pdf") == guide_ids  # not re-extracted
    assert page_ids(db, good / "archive" / "voyage-renamed.epub") == voyage_ids  # kept its pages
    t = texts(db)
    assert "barometers" in t["notes.txt"] and "apricots" not in t["notes.txt"]
    assert "readme.md" not in t and "voyage-renamed.epub" in t

    fresh = tmp_path / "fresh.db"
    run(fixture_copy, fresh)
    assert db_snapshot(db) == db_snapshot(fresh)


def test_failed_files_are_retried_only_when_changed_or_asked(
    fixture_copy: Path, tmp_path: Path
) -> None:
    db = tmp_path / "i.db"
    run(fixture_copy / "broken", db)
    s = run(fixture_copy / "broken", db)
    assert (s.indexed, s.failed, s.skipped_errors) == (0, 0, 9)
    s = run(fixture_copy / "broken", db, retry_errors=True)
    assert (s.retried, s.failed) == (9, 9)
    # a broken file that gets fixed is re-indexed at the next run
    shutil.copy(FIXTURES / "good" / "field-guide.pdf", fixture_copy / "broken" / "truncated.pdf")
    s = run(fixture_copy / "broken", db)
    assert (s.changed, s.indexed, s.failed) == (1, 1, 0)
    assert "harbour" in texts(db)["truncated.pdf"]


def test_roots_not_named_are_left_alone(fixture_copy: Path, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    run([fixture_copy / "good", fixture_copy / "empty"], db)
    shutil.rmtree(fixture_copy / "empty")
    s = run(fixture_copy / "good", db)
    assert s.deleted == 0
    conn = sqlite3.connect(db)
    assert conn.execute(
        "SELECT count(*) FROM documents WHERE path LIKE '%/empty/%'"
    ).fetchone() == (2,)
    conn.close()
    s = run([fixture_copy / "good", fixture_copy], db)
    assert s.deleted == 2


def test_dry_run_prints_the_plan_and_touches_nothing(fixture_copy: Path, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    proc = run_cli("index", fixture_copy, "--db", db, "--dry-run", "--verbose")
    assert proc.returncode == 0 and not db.exists()
    assert proc.stderr.strip().splitlines()[-1].startswith("dry run: 19 new, 0 changed")
    assert f"new: {fixture_copy / 'good' / 'notes.txt'}" in proc.stdout.splitlines()
    run(fixture_copy, db)
    (fixture_copy / "good" / "notes.txt").write_text("changed")
    before = db.read_bytes()
    proc = run_cli("index", fixture_copy, "--db", db, "--dry-run")
    assert "dry run: 0 new, 1 changed" in proc.stderr
    # a reader may leave SQLite's empty -wal/-shm pair; the database is unchanged
    wal = Path(str(db) + "-wal")
    assert db.read_bytes() == before and (not wal.exists() or wal.stat().st_size == 0)


def test_changed_document_is_replaced_atomically_for_readers(tmp_path: Path) -> None:
    """While a changed 600-page PDF is re-indexed (in chunks), a reader always
    sees all old pages or all new pages: never both, never neither."""
    root = tmp_path / "docs"
    root.mkdir()
    db = tmp_path / "i.db"
    pdf = root / "big.pdf"
    write_long_pdf(pdf, 600, marker="oldmarker")
    run(root, db)
    write_long_pdf(pdf, 600, marker="newmarker")
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()

    def reader() -> None:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        q = "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ?"
        while not stop.is_set():
            conn.execute("BEGIN")
            old = conn.execute(q, ("oldmarker",)).fetchone()[0]
            new = conn.execute(q, ("newmarker",)).fetchone()[0]
            conn.execute("COMMIT")
            seen.add((old, new))
        conn.close()

    t = threading.Thread(target=reader)
    t.start()
    try:
        s = run(root, db, batch_seconds=0.05, batch_rows=50)
    finally:
        stop.set()
        t.join()
    assert s.changed == 1 and s.chunked == 1
    assert seen <= {(600, 0), (0, 600)} and (0, 600) in seen


# -- any sequence of changes: incremental == fresh ------------------------------------

NAMES = ["a.txt", "b.md", "c.pdf", "d.pdf", "sub/e.txt", "sub/f.pdf"]
WORDS = ["otter", "heron", "badger", "lynx", "stoat", "wren"]


def write_doc(path: Path, word: str, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pdf":
        write_pdf(path, [f"{word} page {i} of {n}" for i in range(1, n + 1)])
    else:
        path.write_text(f"{word} " * n)


operation = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(NAMES), st.sampled_from(WORDS), st.integers(1, 3)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES)),
    st.tuples(st.just("move"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("touch"), st.sampled_from(NAMES)),
)


def killed_run(root: Path, db: Path, after: float) -> None:
    """A real ``indexer index`` run, killed with its whole process group
    (kill -9) ``after`` seconds in, wherever it is."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer", "index", str(root), "--db", str(db), "-q"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(after)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.lists(operation, min_size=1, max_size=4), min_size=1, max_size=3),
    st.lists(st.one_of(st.none(), st.floats(0.05, 0.6)), min_size=3, max_size=3),
)
def test_any_sequence_of_changes_gives_the_fresh_index(
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[tuple[object, ...]]],
    kills: list[float | None],
) -> None:
    """Batches of changes to a tree, each followed by a run; a batch's run may
    first be killed (kill -9 of the group) at a random moment, and the next run
    resumes. At the end the index equals a fresh index of the final tree."""
    base = tmp_path_factory.mktemp("seq")
    root = base / "docs"
    root.mkdir()
    for name, word in zip(NAMES[:3], WORDS, strict=False):
        write_doc(root / name, word, 2)
    db = base / "incremental.db"
    run(root, db)
    clock = 1_800_000_000
    for batch, kill in zip(batches, kills, strict=False):
        for op in batch:
            target = root / str(op[1])
            if op[0] == "write":
                write_doc(target, str(op[2]), int(op[3]))  # type: ignore[call-overload]
            elif op[0] == "delete" and target.exists():
                target.unlink()
            elif op[0] == "move" and target.exists() and op[1] != op[2]:
                dest = root / str(op[2])
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.suffix == target.suffix:
                    shutil.move(target, dest)
            elif op[0] == "touch" and target.exists():
                clock += 1
                os.utime(target, ns=(clock * 10**9, clock * 10**9))
        if kill is not None:
            killed_run(root, db, kill)
        run(root, db)
        time.sleep(0.01)
    fresh = base / "fresh.db"
    run(root, fresh)
    assert db_snapshot(db) == db_snapshot(fresh)


def test_file_names_that_are_not_utf8_are_indexed_and_tracked(tmp_path: Path) -> None:
    """Old archives hold Latin-1 or Windows file names: bytes that are not UTF-8.
    They are read (PDFs with pymupdf, which cannot take such a name itself),
    stored and printed with \\xNN escapes, and found again by the next run."""
    root = tmp_path / "docs"
    root.mkdir()
    try:
        folder = root / os.fsdecode(b"caf\xe9")
        folder.mkdir()
    except OSError as e:  # macOS's APFS, for one, refuses such names
        pytest.skip(f"this file system refuses file names that are not UTF-8: {e}")
    (folder / os.fsdecode(b"notes-\xff.txt")).write_text("the mizzen mast and its rigging\n")
    guide = folder / os.fsdecode(b"guide-\xe9.pdf")
    os.rename(write_pdf(tmp_path / "guide.pdf", ["a compass rose", "the binnacle lamp"]), guide)
    shutil.copy(FIXTURES / "good" / "voyage.epub", folder / os.fsdecode(b"voyage-\xe9.epub"))
    (folder / os.fsdecode(b"broken-\xff.pdf")).write_bytes(b"GIF89a not a pdf")
    db = tmp_path / "i.db"

    proc = run_cli("index", str(root), "--db", str(db), "-q")
    assert proc.returncode == 1, proc.stderr  # the broken file failed, nothing else
    assert f"{root}/caf\\xe9/broken-\\xff.pdf: not a PDF (the file is a GIF image)" in proc.stderr
    stored = f"{root}/caf\\xe9/"
    conn = sqlite3.connect(db)
    rows = sorted(conn.execute("SELECT path, status, pages FROM documents"))
    conn.close()
    assert rows == [
        (stored + "broken-\\xff.pdf", "error", None),
        (stored + "guide-\\xe9.pdf", "ok", 2),
        (stored + "notes-\\xff.txt", "ok", 1),
        (stored + "voyage-\\xe9.epub", "ok", rows[3][2]),
    ]
    assert texts(db)["guide-\\xe9.pdf"] == "a compass rose the binnacle lamp"  # pymupdf's text
    hits = run_cli("search", "binnacle", "--db", str(db))
    assert hits.stdout.startswith(stored + "guide-\\xe9.pdf:2: ")

    again = run(root, db)
    assert (again.unchanged, again.skipped_errors, again.new, again.deleted) == (3, 1, 0, 0)
    extra = folder / os.fsdecode(b"extra-\xff.txt")
    extra.write_text("one more\n")
    dry = run_cli("index", str(root), "--db", str(db), "--dry-run", "-v", "-q")
    assert dry.stdout.splitlines() == [f"new: {stored}extra-\\xff.txt"]
    extra.unlink()

    os.rename(folder / os.fsdecode(b"notes-\xff.txt"), folder / os.fsdecode(b"notes-\xfe.txt"))
    (folder / os.fsdecode(b"voyage-\xe9.epub")).unlink()
    os.rename(write_pdf(tmp_path / "guide.pdf", ["a new chart"]), guide)
    s = run(root, db)
    assert (s.moved, s.deleted, s.changed, s.new, s.failed) == (1, 1, 1, 0, 0)
    fresh = tmp_path / "fresh.db"
    run(root, fresh)
    assert db_snapshot(db) == db_snapshot(fresh)


def test_a_partial_epub_is_read_again_whole(tmp_path: Path) -> None:
    """Only PDFs are read by page range: the next run re-reads an EPUB whose
    chapter failed as a whole file (it used to send its chapter to the PDF reader)."""
    root = tmp_path / "docs"
    root.mkdir()
    chapters = [("One", "a harpoon line"), ("Two", "lost"), ("Three", "the try-works")]
    write_epub(root / "sloppy.epub", chapters, spine_comment=False, missing=["c2.xhtml"])
    db = tmp_path / "i.db"
    first = run(root, db)
    assert (first.partial, first.failed) == (1, 0)
    before = db_snapshot(db)
    again = run(root, db)
    assert (again.retried, again.partial, again.failed) == (1, 1, 0)
    assert db_snapshot(db) == before
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status, error FROM documents").fetchall() == [
        ("partial", "pages 2-2: chapter c2.xhtml missing from the archive")
    ]
    conn.close()


def test_a_name_with_a_backslash_and_a_latin1_name_are_two_documents(tmp_path: Path) -> None:
    r"""``caf\xe9.txt`` written literally and ``caf<E9>.txt`` in Latin-1 had
    one stored form, so one of them was never indexed, with no error line:
    the backslash is escaped too, and both are indexed, found again and moved."""
    root = tmp_path / "docs"
    root.mkdir()
    literal = root / "caf\\xe9.txt"
    literal.write_text("a literal backslash in the name\n")
    try:
        latin1 = root / os.fsdecode(b"caf\xe9.txt")
        latin1.write_text("a latin-1 name from an old archive\n")
    except OSError as e:
        pytest.skip(f"this file system refuses file names that are not UTF-8: {e}")
    db = tmp_path / "i.db"
    first = run(root, db)
    assert (first.indexed, first.failed) == (2, 0)
    assert texts(db) == {
        "caf\\\\xe9.txt": "a literal backslash in the name",
        "caf\\xe9.txt": "a latin-1 name from an old archive",
    }
    hits = run_cli("search", "literal", "--db", str(db))
    assert hits.stdout.startswith(f"{root}/caf\\\\xe9.txt:1: ")
    again = run(root, db)
    assert (again.unchanged, again.new, again.deleted, again.moved) == (2, 0, 0, 0)

    os.rename(literal, root / "back\\slash.txt")
    s = run(root, db)
    assert (s.moved, s.new, s.deleted) == (1, 0, 0)
    fresh = tmp_path / "fresh.db"
    run(root, fresh)
    assert db_snapshot(db) == db_snapshot(fresh)
    assert "back\\\\slash.txt" in texts(db)


def test_verify_finds_content_changed_under_an_unchanged_stat(tmp_path: Path) -> None:
    """A file rewritten with the same size whose mtime was put back (``touch -d``,
    a restore from backup) looks unchanged by its stat: --verify hashes every
    file and reads again those whose content differs."""
    root = tmp_path / "docs"
    root.mkdir()
    note = root / "note.txt"
    note.write_text("the old harbour wall\n")
    (root / "other.txt").write_text("nothing changes here\n")
    db = tmp_path / "i.db"
    run(root, db)
    st = note.stat()
    note.write_text("the new harbour pier\n")  # the same length
    os.utime(note, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert note.stat().st_size == st.st_size

    plain = run(root, db)
    assert (plain.unchanged, plain.changed) == (2, 0)
    assert "the old harbour wall" in texts(db)["note.txt"]

    proc = run_cli("index", str(root), "--db", str(db), "--verify", "--json", "-v")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["changed"], summary["unchanged"], summary["touched"]) == (1, 1, 0)
    assert "verify: 2 file(s) with an unchanged stat were hashed" in proc.stderr
    assert texts(db)["note.txt"] == "the new harbour pier"
    again = run_cli("index", str(root), "--db", str(db), "--verify", "--json")
    assert json.loads(again.stdout)["unchanged"] == 2


def test_identical_files_are_indexed_once_and_outlive_each_other(tmp_path: Path) -> None:
    """Three copies of one PDF: its pages are stored once and each hit names
    the other copies; deleting or changing the copy that holds the pages
    hands them to another, and the index stays what a fresh run makes."""
    from indexer.search import search

    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    write_pdf(root / "a.pdf", ["the kraken wakes", "the kraken sleeps"])
    shutil.copy(root / "a.pdf", root / "b.pdf")
    shutil.copy(root / "a.pdf", root / "sub" / "c.pdf")
    (root / "other.txt").write_text("a kraken of its own\n")
    db = tmp_path / "i.db"
    copies = {str(root / n) for n in ("a.pdf", "b.pdf", "sub/c.pdf")}

    def stored_pages() -> int:
        conn = sqlite3.connect(db)
        try:
            return int(conn.execute("SELECT count(*) FROM pages").fetchone()[0])
        finally:
            conn.close()

    def holder() -> str:
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute(
                "SELECT DISTINCT d.path FROM pages p JOIN documents d ON d.id = p.doc_id "
                "WHERE d.kind = 'pdf'"
            ).fetchall()
        finally:
            conn.close()
        assert len(rows) == 1
        return str(rows[0][0])

    summary = run(root, db)
    assert summary.new == 4 and stored_pages() == 3
    hits = [h for h in search(db, "kraken").hits if h.kind == "pdf"]
    assert [h.page for h in hits] == [1, 2]  # once each, not once per copy
    assert {hits[0].path, *hits[0].copies} == copies
    found = search(db, "kraken").paths(copies=True)
    assert sorted(found) == sorted([*copies, str(root / "other.txt")])

    first = holder()
    os.unlink(first)  # the copy with the pages goes: another one gets them
    run(root, db)
    second = holder()
    assert second != first and stored_pages() == 3
    assert {h.path for h in search(db, "wakes").hits} == {second}

    write_pdf(Path(second), ["a squid now"])  # the holder changes: the last copy keeps the text
    run(root, db)
    (last,) = copies - {first, second}
    assert {h.path for h in search(db, "wakes").hits} == {last}
    assert {h.path for h in search(db, "squid").hits} == {second}
    assert search(db, "wakes").hits[0].copies == ()
    fresh = tmp_path / "fresh.db"
    run(root, fresh)
    assert db_snapshot(db) == db_snapshot(fresh)


def test_excluded_documents_are_purged_and_a_dry_run_names_them(tmp_path: Path) -> None:
    """What --exclude (or INDEXER_EXCLUDE, or an .indexerignore) leaves out is
    not indexed, and what the index already held there goes on the next run
    (a dry run says `excluded: PATH` first); taking the pattern away brings
    it back."""
    lib = tmp_path / "lib"
    (lib / "drafts").mkdir(parents=True)
    (lib / "books").mkdir()
    shutil.copy(FIXTURES / "good" / "notes.txt", lib / "drafts" / "notes.txt")
    shutil.copy(FIXTURES / "good" / "field-guide.pdf", lib / "books")
    shutil.copy(FIXTURES / "good" / "readme.md", lib / "books" / "old.md")
    db = tmp_path / "i.db"
    assert run_cli("index", lib, "--db", db, "-q").returncode == 0

    def paths() -> list[str]:
        conn = sqlite3.connect(db)
        try:
            return [os.path.relpath(r[0], lib) for r in conn.execute("SELECT path FROM documents")]
        finally:
            conn.close()

    assert sorted(paths()) == ["books/field-guide.pdf", "books/old.md", "drafts/notes.txt"]
    (lib / "books" / ".indexerignore").write_text("*.md\n")
    dry = run_cli("index", lib, "--db", db, "--exclude", "drafts/", "--dry-run", "-v")
    assert sorted(dry.stdout.splitlines()) == [
        f"excluded: {lib / 'books' / 'old.md'}",
        f"excluded: {lib / 'drafts' / 'notes.txt'}",
    ]
    assert "2 deleted (2 excluded), 1 unchanged" in dry.stderr
    assert len(paths()) == 3
    run = run_cli("index", lib, "--db", db, env={"INDEXER_EXCLUDE": "drafts/,/nothing"})
    assert run.returncode == 0, run.stderr
    assert "0 moved, 2 deleted (2 excluded), 0 failed" in run.stderr
    assert paths() == ["books/field-guide.pdf"]
    assert run_cli("search", "sextant", "--db", db).returncode == 1  # notes.txt's word
    (lib / "books" / ".indexerignore").unlink()
    back = run_cli("index", lib, "--db", db, "--json")
    assert json.loads(back.stdout)["new"] == 2
    assert run_cli("search", "sextant", "--db", db).returncode == 0


def test_a_file_moved_from_one_root_to_another_is_renamed_not_read_again(
    tmp_path: Path,
) -> None:
    """A and B indexed by separate runs; a file moved from A to B is a move
    when B is indexed (its document renamed, not read again), and A's next
    run has nothing to delete. A file whose old folder is gone too (an
    unmounted disk, say) is not taken for moved: it is new."""
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "old").mkdir(parents=True)
    b.mkdir()
    shutil.copy(FIXTURES / "good" / "field-guide.pdf", a)
    shutil.copy(FIXTURES / "good" / "notes.txt", a / "old")
    db = tmp_path / "i.db"
    for root in (a, b):
        assert run_cli("index", root, "--db", db, "-q").returncode == 0
    (a / "field-guide.pdf").rename(b / "field-guide.pdf")
    shutil.move(a / "old", tmp_path / "elsewhere")  # the folder goes with it
    (tmp_path / "elsewhere" / "notes.txt").rename(b / "notes.txt")
    conn = sqlite3.connect(db)
    (doc_id,) = conn.execute(
        "SELECT id FROM documents WHERE path LIKE '%field-guide.pdf'"
    ).fetchone()
    conn.close()
    moved = json.loads(run_cli("index", b, "--db", db, "--json").stdout)
    assert (moved["moved"], moved["new"], moved["pages"]) == (1, 1, 1), moved
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT path FROM documents WHERE id = ?", (doc_id,)).fetchone() == (
        str(b / "field-guide.pdf"),
    )
    conn.close()
    after = json.loads(run_cli("index", a, "--db", db, "--json").stdout)
    assert (after["deleted"], after["new"]) == (1, 0)  # old/notes.txt: its copy is in b now
    hits = run_cli("search", "sextant", "--files", "--db", db).stdout.splitlines()
    assert hits == [str(b / "notes.txt")]
