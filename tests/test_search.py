"""indexer/search.py: ranking, snippets, query fallback, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import DatabaseError, QueryError, UsageError
from indexer.messages import Document
from indexer.query import HL_END, HL_START
from indexer.search import Filters, search
from indexer.writer import WriterHandle


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("search") / "i.db"
    w = WriterHandle(str(db), ["/"])
    w.start()
    docs = [
        (
            "/whales.txt",
            "txt",
            "a",
            1,
            [(1, "The white whale, the white whale! Ahab hunted the whale.")],
        ),
        (
            "/book.pdf",
            "pdf",
            "b",
            3,
            [(1, "A book about ships."), (3, "Once a whale was seen from the ship.")],
        ),
        ("/e-mail.md", "md", "c", 1, [(1, "Send an e-mail about C++ and the file.")]),
    ]
    for path, kind, sha256, page_count, pages in docs:
        w.send(
            Document(
                path=path,
                kind=kind,
                size=1,
                mtime_ns=1,
                sha256=sha256,
                status=None,
                page_count=page_count,
                pages=pages,
            )
        )
    w.finish("ok", {})
    return db


def test_hits_are_ranked_with_pages_and_snippets(db: Path) -> None:
    result = search(db, "whale")
    assert [(h.path, h.page) for h in result.hits] == [("/whales.txt", 1), ("/book.pdf", 3)]
    assert result.hits[0].rank <= result.hits[1].rank
    assert f"{HL_START}whale{HL_END}" in result.hits[0].snippet
    assert result.hits[1].marked() == "Once a [whale] was seen from the ship."


def test_phrases_limits_offsets(db: Path) -> None:
    assert [h.path for h in search(db, '"white whale"').hits] == ["/whales.txt"]
    assert len(search(db, "whale", limit=1).hits) == 1
    assert [h.path for h in search(db, "whale", offset=1).hits] == ["/book.pdf"]
    assert search(db, "narwhal").hits == []


def test_plain_words_are_safe_and_fts_syntax_is_asked_for(db: Path) -> None:
    # nothing typed is an FTS5 syntax error without --fts
    for typed in ('C++ "unterminated', "e-mail", "don't", "whale \x01", "*whale", "a OR"):
        search(db, typed)
    assert [h.path for h in search(db, "e-mail").hits] == ["/e-mail.md"]
    with pytest.raises(QueryError, match="no words to search for in '\\*\\*'"):
        search(db, "**")
    with pytest.raises(QueryError, match="-word only leaves pages out"):
        search(db, "-whale")
    # --fts: FTS5 syntax as it is, and a bad one is one line with a hint
    assert {h.path for h in search(db, "whale NOT ahab", fts=True).hits} == {"/book.pdf"}
    assert {h.path for h in search(db, "ships OR e*", fts=True).hits} == {
        "/book.pdf",
        "/e-mail.md",
    }
    with pytest.raises(QueryError, match="not valid FTS5 syntax") as e:
        search(db, 'whale "unterminated', fts=True)
    assert e.value.hint and "without --fts" in e.value.hint
    # plain -word and word*
    assert [h.path for h in search(db, "whale -ahab").hits] == ["/book.pdf"]
    assert [h.path for h in search(db, "shi*").hits] == ["/book.pdf", "/book.pdf"]


def test_queries_are_nfkc_normalised_like_the_text(db: Path) -> None:
    assert [h.path for h in search(db, "\ufb01le").hits] == ["/e-mail.md"]


def test_errors(db: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="empty"):
        search(db, "   ")
    with pytest.raises(DatabaseError, match="no index at"):
        search(tmp_path / "missing.db", "whale")


FILLER = " ".join(f"filler{i}" for i in range(150))


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Documents for symbols, closeness, document scope and filters, written
    by the real writer process: (path, kind, mtime in s, pages)."""
    db = tmp_path_factory.mktemp("library") / "i.db"
    w = WriterHandle(str(db), ["/"])
    w.start()
    docs = [
        ("/lib/colour.pdf", "pdf", 100, ["C channel, C value: C, M, Y and K. C C C C."]),
        ("/lib/cpp.txt", "txt", 200, ["We write C++ code every day, in C++."]),
        ("/lib/dotnet.md", "md", 300, ["The .NET runtime runs C# and node.js programs."]),
        ("/lib/net.md", "md", 400, ["A fishing net, a node, a js file; c sharp music."]),
        (
            "/cats/far.txt",
            "txt",
            500,
            [f"know know know. {FILLER} that that. {FILLER} cats cats. {FILLER} could could."],
        ),
        ("/cats/near.txt", "txt", 600, [f"{FILLER} {FILLER} didn't know that cats could grin."]),
        ("/books/split.pdf", "pdf", 700, ["the harpoon", "the lantern"]),
        ("/books/both.pdf", "pdf", 800, ["harpoon and lantern", "the kraken"]),
        ("/books/sea.epub", "epub", 900, ["harpoon at sea"]),
    ]
    for path, kind, mtime, texts in docs:
        pages = [(n, t) for n, t in enumerate(texts, 1)]
        w.send(
            Document(
                path=path,
                kind=kind,
                size=1,
                mtime_ns=mtime * 10**9,
                sha256=path,
                status=None,
                page_count=len(pages),
                pages=pages,
            )
        )
    w.finish("ok", {})
    return db


def test_words_with_symbols_mean_what_they_say(library: Path) -> None:
    """``C++`` finds the pages that hold "C++", not every page with a C;
    ``.NET``, ``C#`` and ``node.js`` likewise, case-insensitively."""
    assert [h.path for h in search(library, "C++").hits] == ["/lib/cpp.txt"]
    assert [h.path for h in search(library, "c#").hits] == ["/lib/dotnet.md"]
    assert [h.path for h in search(library, ".net").hits] == ["/lib/dotnet.md"]
    assert [h.path for h in search(library, "node.js").hits] == ["/lib/dotnet.md"]
    # the tokens alone find both (what C++ meant before)
    assert {h.path for h in search(library, "c").hits} >= {"/lib/colour.pdf", "/lib/cpp.txt"}
    assert {h.path for h in search(library, "node js").hits} == {"/lib/dotnet.md", "/lib/net.md"}


def test_pages_where_the_words_stand_close_rank_first(library: Path) -> None:
    query = "know that cats could"
    # bm25 alone prefers the short page that repeats each word far apart ...
    assert search(library, query, fts=True).hits[0].path == "/cats/far.txt"
    # ... the words together come first, and paging runs across both tiers
    hits = search(library, query).hits
    assert [h.path for h in hits] == ["/cats/near.txt", "/cats/far.txt"]
    assert [h.path for h in search(library, query, limit=1, offset=1).hits] == ["/cats/far.txt"]


def test_document_scope_finds_words_on_different_pages(library: Path) -> None:
    assert [h.path for h in search(library, "harpoon lantern").hits] == ["/books/both.pdf"]
    docs = search(library, "harpoon lantern", scope="doc").docs
    assert {d.path for d in docs} == {"/books/split.pdf", "/books/both.pdf"}
    split = next(d for d in docs if d.path == "/books/split.pdf")
    assert [(wp.word, wp.page) for wp in split.pages] == [("harpoon", 1), ("lantern", 2)]
    assert split.pages[1].marked() == "the [lantern]"
    # -word leaves out documents that have it on any page
    docs = search(library, "harpoon lantern -kraken", scope="doc").docs
    assert [d.path for d in docs] == ["/books/split.pdf"]
    assert search(library, "harpoon", scope="doc").paths()[0].startswith("/books/")
    with pytest.raises(UsageError, match="--scope doc takes plain words"):
        search(library, "harpoon", scope="doc", fts=True)


def test_filters_by_folder_glob_format_and_time(library: Path) -> None:
    def paths(query: str, **kw: object) -> set[str]:
        filters = Filters(**kw)  # type: ignore[arg-type]
        result = search(library, query, filters=filters)
        return {h.path for h in result.hits}

    assert paths("harpoon", paths=("/books",)) == {
        "/books/split.pdf",
        "/books/both.pdf",
        "/books/sea.epub",
    }
    assert paths("harpoon", paths=("/book",)) == set()  # a folder, not a prefix
    assert paths("harpoon", paths=("*.epub",)) == {"/books/sea.epub"}
    assert paths("harpoon", paths=("/books/s*",)) == {"/books/split.pdf", "/books/sea.epub"}
    assert paths("harpoon", formats=("epub", "txt")) == {"/books/sea.epub"}
    assert paths("harpoon", since_ns=800 * 10**9) == {"/books/both.pdf", "/books/sea.epub"}
    assert paths("harpoon", before_ns=800 * 10**9) == {"/books/split.pdf"}
    docs = search(
        library, "harpoon lantern", scope="doc", filters=Filters(paths=("/books/split.pdf",))
    ).docs
    assert [d.path for d in docs] == ["/books/split.pdf"]


def test_a_search_over_huge_pages_answers_within_a_second(tmp_path: Path) -> None:
    """A 100 MB text file (cut into pages of a few KB) and a 5 MB EPUB chapter
    (one page, too long for FTS5's snippet(), whose work grows with the matches
    on the page: 65 s for "the" on this one) are searched, through a real run,
    in under a second each."""
    import random
    import time

    from tests.conftest import run_cli
    from tools.docgen import write_epub

    rng = random.Random(7)
    vocabulary = "the whale ship sea captain harpoon crew night storm mast".split()
    vocabulary += [f"w{i}" for i in range(2000)]
    weights = [150] + [3] * 9 + [1] * 2000  # "the" is 5 % of the words, as in prose
    lines = (" ".join(rng.choices(vocabulary, weights, k=12)) for _ in range(14_000))
    block = "\n".join(lines) + "\n"
    root = tmp_path / "docs"
    root.mkdir()
    with open(root / "log.txt", "w") as f:
        for _ in range(100 * 2**20 // len(block) + 1):
            f.write(block)
    write_epub(root / "chapter.epub", [("One", block[: 5 * 2**20] * (5 * 2**20 // len(block) + 1))])
    db = tmp_path / "i.db"
    proc = run_cli("index", root, "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    for query, kw in [
        ("the", {}),
        ("whale ship", {}),
        ("the", {"filters": Filters(formats=("epub",))}),
        ("whale ship", {"scope": "doc"}),
    ]:
        started = time.perf_counter()
        result = search(db, query, **kw)  # type: ignore[arg-type]
        took = time.perf_counter() - started
        assert result.hits or result.docs
        assert took < 1.0, (query, kw, took)
    epub = search(db, "harpoon", filters=Filters(formats=("epub",))).hits
    assert [h.page for h in epub] == [1] and f"{HL_START}harpoon{HL_END}" in epub[0].snippet


def test_hits_carry_title_authors_and_printed_page(tmp_path: Path) -> None:
    """Through a real run: a PDF's info dictionary and page labels, an EPUB's
    Dublin Core, shown in JSON and on a terminal ("p. 1 (PDF 3)"), and
    --lang keeps the documents in a language."""
    import io
    import re

    from indexer import output
    from tests.conftest import run_cli
    from tools.docgen import write_epub, write_pdf

    root = tmp_path / "docs"
    root.mkdir()
    write_pdf(
        root / "guide.pdf",
        ["Preface", "Contents", "The harpoon is thrown"],
        metadata={"title": "Field Guide", "author": "Ann Author"},
        labels=[
            {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
            {"startpage": 2, "prefix": "", "style": "D", "firstpagenum": 1},
        ],
        lang="en",
    )
    dc = "<dc:title>Le Harpon</dc:title><dc:creator>B. Auteur</dc:creator>"
    dc += "<dc:language>fr</dc:language>"
    write_epub(root / "harpon.epub", [("Un", "harpoon en français")], dublin_core=dc)
    db = tmp_path / "i.db"
    assert run_cli("index", root, "--db", db, "-q").returncode == 0
    hits = {h.path.rsplit("/", 1)[1]: h for h in search(db, "harpoon").hits}
    guide = hits["guide.pdf"]
    assert (guide.title, guide.authors, guide.page, guide.label) == (
        "Field Guide",
        "Ann Author",
        3,
        "1",
    )
    assert (hits["harpon.epub"].title, hits["harpon.epub"].label) == ("Le Harpon", None)
    assert [h.path for h in search(db, "harpoon", filters=Filters(languages=("EN",))).hits] == [
        guide.path
    ]
    out = io.StringIO()
    output.write(search(db, "harpoon", filters=Filters(formats=("pdf",))), "terminal", out)
    shown = re.sub(r"\x1b\]8;[^\x1b]*\x1b\\|\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert shown == [
        f"Field Guide — Ann Author  {guide.path}",
        "  p. 1 (PDF 3): The harpoon is thrown",
    ]
    out = io.StringIO()
    output.write(search(db, "harpoon", filters=Filters(formats=("pdf",))), "json", out)
    assert '"label": "1"' in out.getvalue() and '"title": "Field Guide"' in out.getvalue()


def test_a_title_or_author_hit_ranks_first(tmp_path: Path) -> None:
    """Through a real run: a book whose title holds the words comes before
    pages that repeat them; an author's name alone finds the book; at
    --scope doc a word of the title and a word of a page together find it;
    a copy of the book is named, not shown again."""
    import io
    import re
    import shutil

    from indexer import output
    from tests.conftest import run_cli
    from tools.docgen import write_pdf

    root = tmp_path / "docs"
    root.mkdir()
    write_pdf(
        root / "moby.pdf",
        ["Call me Ishmael.", "The white whale surfaced."],
        metadata={"title": "Moby Dick", "author": "Herman Melville"},
    )
    shutil.copy(root / "moby.pdf", root / "moby-copy.pdf")
    (root / "essay.txt").write_text("moby dick " * 40 + "\n")  # the words, over and over
    (root / "notes.md").write_text("# Notes\n\nmoby, dick and whales.\n")
    db = tmp_path / "i.db"
    assert run_cli("index", root, "--db", db, "-q").returncode == 0

    hits = search(db, "moby dick").hits
    assert [Path(h.path).name for h in hits][0] in ("moby.pdf", "moby-copy.pdf")
    assert hits[0].in_meta and not hits[1].in_meta
    assert {Path(hits[0].path).name, *(Path(c).name for c in hits[0].copies)} == {
        "moby.pdf",
        "moby-copy.pdf",
    }
    assert {Path(h.path).name for h in hits[1:]} == {"essay.txt", "notes.md"}
    # the words only in the metadata: the book's first page
    (by_author,) = search(db, "melville").hits
    assert (by_author.page, by_author.in_meta, by_author.marked()) == (1, True, "Call me Ishmael.")
    assert search(db, "melville -ishmael").hits == []  # a -word still rules pages out
    # --scope doc: one word in the authors, one on a page
    (doc,) = search(db, "melville whale", scope="doc").docs
    assert [(wp.word, wp.page) for wp in doc.pages] == [("whale", 2)]
    assert search(db, "melville whale").hits == []  # a page needs both
    out = io.StringIO()
    output.write(search(db, "melville"), "terminal", out)
    shown = re.sub(r"\x1b\]8;[^\x1b]*\x1b\\|\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert shown[0] == f"Moby Dick — Herman Melville  {by_author.path}"
    assert shown[1] == f"  also at {by_author.copies[0]}"
    assert shown[2] == "  p. 1: Call me Ishmael."


def test_a_trigram_index_finds_cjk_words_a_unicode61_index_misses(
    corpus: Path, tmp_path: Path
) -> None:
    """Real Chinese and Japanese documents: unicode61 makes one token of a run
    of characters between punctuation, so a word inside it is not found; an
    index made with --tokenizer trigram finds it, and a two-character word
    through the pages' text. The tokenizer is recorded in the file."""
    import shutil

    from indexer import store
    from tests.conftest import run_cli

    root = tmp_path / "docs"
    root.mkdir()
    shutil.copy(corpus / "pdf/cjk/pymupdf-test_4182.pdf", root / "zh.pdf")
    shutil.copy(corpus / "html/chardet-utf-8-japanese.html", root / "ja.html")
    (root / "en.txt").write_text("The C++ programmers were running home.\n")
    words, trigram = tmp_path / "words.db", tmp_path / "trigram.db"
    assert run_cli("index", root, "--db", words, "-q").returncode == 0
    assert run_cli("index", root, "--db", trigram, "--tokenizer", "trigram", "-q").returncode == 0
    for query, name in [("拟人产品", "zh.pdf"), ("鬼退治", "ja.html"), ("老夫婦", "ja.html")]:
        assert search(words, query).hits == [], query
        hits = search(trigram, query).hits
        assert [Path(h.path).name for h in hits] == [name], query
        assert f"{HL_START}{query}{HL_END}" in hits[0].snippet
    (short,) = search(trigram, "桃").hits  # one character: found in the text itself
    assert Path(short.path).name == "ja.html" and f"{HL_START}桃{HL_END}" in short.snippet
    assert [Path(h.path).name for h in search(trigram, "c++ runn").hits] == ["en.txt"]
    assert [Path(h.path).name for h in search(trigram, "拟人 数字", scope="doc").docs] == ["zh.pdf"]
    with pytest.raises(QueryError, match="3 characters"):
        search(trigram, "鬼退治 -桃")
    # recorded: a later run keeps it, another tokenizer for this file is one line, exit 2
    conn = store.connect(trigram)
    assert store.tokenizer_of(conn) == "trigram"
    conn.close()
    assert run_cli("index", root, "--db", trigram, "-q").returncode == 0
    refused = run_cli("index", root, "--db", trigram, "--tokenizer", "porter")
    assert refused.returncode == 2
    first = refused.stderr.splitlines()[0]
    assert first.endswith("was made with the trigram tokenizer, not porter")


def test_a_porter_index_stems_english(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("She was running home.\n")
    (root / "b.txt").write_text("He runs.\n")
    (root / "c.txt").write_text("Café crème, à la française.\n")
    porter, words = tmp_path / "porter.db", tmp_path / "words.db"
    assert run_cli("index", root, "--db", porter, "--tokenizer", "porter", "-q").returncode == 0
    assert run_cli("index", root, "--db", words, "-q").returncode == 0
    assert {Path(h.path).name for h in search(porter, "run").hits} == {"a.txt", "b.txt"}
    assert search(words, "run").hits == []
    # query-time stemming keeps the default index: running is run*, which finds runs
    found = search(words, "running", stem="en").hits
    assert {Path(h.path).name for h in found} == {"a.txt", "b.txt"}
    (hit,) = search(words, "running", stem="en", filters=Filters(paths=("*b.txt",))).hits
    assert hit.marked() == "He [runs]."
    for db in (porter, words):  # accents fold either way
        assert [Path(h.path).name for h in search(db, "cafe creme francaise").hits] == ["c.txt"]
    bad = run_cli("index", root, "--db", tmp_path / "x.db", "--tokenizer", "snowball")
    assert bad.returncode == 2 and "no tokenizer 'snowball'" in bad.stderr


def test_a_document_without_a_title_is_found_by_its_file_name(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    root = tmp_path / "docs"
    root.mkdir()
    (root / "annual-report_2023.txt").write_text("Revenue grew.\n")
    (root / "notes.md").write_text("# Harbour Notes\n\nRevenue fell.\n")
    db = tmp_path / "i.db"
    assert run_cli("index", root, "--db", db, "-q").returncode == 0
    (hit,) = search(db, "annual report 2023").hits  # the words are only in the name
    assert (Path(hit.path).name, hit.title, hit.in_meta) == (
        "annual-report_2023.txt",
        "annual-report_2023",
        True,
    )
    # a heading is a title, and the name is not searched then
    assert [h.title for h in search(db, "harbour").hits] == ["Harbour Notes"]
    assert search(db, "notes revenue").hits[0].title == "Harbour Notes"
