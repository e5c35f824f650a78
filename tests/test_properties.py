"""Properties that must hold for any input (Hypothesis).

* Any bytes under a document's name (``.pdf``, ``.epub``, ``.txt``, ``.html``):
  what a worker runs (``worker.run_items``) gives text or a one-line reason,
  never an exception and never "unexpected error". The bytes are drawn at
  random, or are a real fixture cut short, with bytes overwritten or a range
  repeated (``tools/mutate.py`` does the same with a seed for the end-to-end
  test in ``test_damage.py``).
* Any string as a search query (NUL, control characters, FTS5 operators,
  10,000 characters): hits, or no hits, or one line that says why; never a
  traceback.

Any sequence of changes to a tree, with runs killed on the way, giving the
index of a fresh run is in ``test_incremental.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from indexer.work import Item
from indexer.worker import run_items
from tests.conftest import FIXTURES, invoke, run_cli

SEEDS = {
    "pdf": (FIXTURES / "good" / "field-guide.pdf").read_bytes(),
    "epub": (FIXTURES / "good" / "voyage.epub").read_bytes(),
    "txt": (FIXTURES / "good" / "notes.txt").read_bytes(),
    "html": (FIXTURES / "good" / "page.html").read_bytes(),
}


@st.composite
def document_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(sorted(SEEDS)))
    how = draw(st.sampled_from(["random", "cut", "overwrite", "repeat", "prefix"]))
    seed = SEEDS[kind]
    if how == "random":
        return kind, draw(st.binary(max_size=4096))
    if how == "prefix":  # the right magic bytes, then anything
        return kind, seed[:8] + draw(st.binary(max_size=2048))
    at = draw(st.integers(0, len(seed) - 1))
    if how == "cut":
        return kind, seed[:at]
    if how == "overwrite":
        patch = draw(st.binary(min_size=1, max_size=64))
        return kind, seed[:at] + patch + seed[at + len(patch) :]
    length = draw(st.integers(1, 4096))
    return kind, seed[:at] + seed[at : at + length] * 2 + seed[at + length :]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document_bytes())
@example(("pdf", b""))
@example(("epub", b"PK\x03\x04"))
@example(("txt", b"\x00" * 1000))
@example(("html", b"<!DOCTYPE html [<!ENTITY a 'x'>]><p>&a;"))
def test_any_bytes_under_a_documents_name_give_text_or_a_reason(
    tmp_path: Path, doc: tuple[str, bytes]
) -> None:
    kind, data = doc
    path = tmp_path / f"any.{kind}"
    path.write_bytes(data)
    st_ = os.stat(path)
    [result] = run_items((Item(str(path), kind, stat=(st_.st_size, st_.st_mtime_ns)),))
    if result.error is None:
        assert result.extracted is not None
        for number, text in result.extracted.pages:
            assert 1 <= number <= result.extracted.page_count
            assert text and "\x00" not in text
    else:
        assert result.extracted is None
        assert result.error.strip() and "\n" not in result.error
        assert not result.error.startswith("unexpected error"), (data[:80], result.error)


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("search") / "i.db"
    proc = run_cli("index", FIXTURES / "good", "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    return db


QUERY_PARTS = st.sampled_from(
    ['"', "*", "-", "+", "^", ":", "(", ")", "NOT", "AND", "OR", "NEAR", "\x00", "\x1b[2J",
     "sextant", "lanterns", "café", "日本", "\ud800", "\n", "{", "}", "'", "rope*", "text:"]
)  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(QUERY_PARTS, max_size=8).map(" ".join),
        st.lists(QUERY_PARTS, max_size=8).map("".join),
    )
)
@example("x" * 10_000)
@example("(" * 10_000)
@example("\x1e" * 10_000)
@example("sextant " * 1_250)
@example("-sextant")
@example("\x00")
def test_any_query_gives_hits_or_one_line(small_index: Path, query: str) -> None:
    code, out, err = invoke("search", "--db", small_index, "--", query)
    assert code in (0, 1, 2)
    if code == 0:
        assert out.strip()
    lines = err.splitlines()
    if code == 2:
        assert lines and lines[0].startswith("error: ") and "internal error" not in err
        assert len(lines) <= 2 and all(len(x) < 400 for x in lines), err
    else:
        assert all(x.startswith("note: ") for x in lines), err


def _clean_text_reference(text: str) -> str:
    """clean_text as it was before its regular expressions were skipped
    where they cannot match."""
    import re
    import unicodedata

    if not text:
        return ""
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[ \t\r\f\v]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\r\n\f\vaé\x00ﬁ\ud800")), max_size=80) | st.text())
def test_clean_text_is_what_it_was(text: str) -> None:
    from indexer.extract.base import clean_text

    assert clean_text(text) == _clean_text_reference(text)
