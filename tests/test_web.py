"""The web pages (indexer/web): Datasette with the plugin, through Datasette's
own test client, on a real index of the shared corpus and on small indexes
made for one case (escaping, a file gone, a write while serving).

Needs ../shared/corpus for the corpus tests (skipped with that reason when it
is missing, a failure in CI)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from datasette.app import Datasette

from indexer.filters import Filters
from indexer.search import search
from indexer.web import pages
from tests.conftest import read_manifest, run_cli


class Client:
    """A Datasette instance serving ``dbs``, asked through its ASGI client."""

    def __init__(self, *dbs: Path, metadata: dict[str, object] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.ds = Datasette([str(d) for d in dbs], metadata=metadata)
        self.loop.run_until_complete(self.ds.invoke_startup())

    def get(self, path: str) -> httpx.Response:
        return self.loop.run_until_complete(self.ds.client.get(path))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        for db in self.ds.databases.values():
            db.close()
        self.loop.close()


def index(*paths: Path, db: Path) -> None:
    proc = run_cli("index", *paths, "--db", db)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def library(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("web") / "library.db"
    index(corpus, db=db)
    return db


@pytest.fixture(scope="module")
def client(library: Path) -> Iterator[Client]:
    c = Client(library)
    yield c
    c.close()


def doc_ids(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {str(p): int(i) for i, p in conn.execute("SELECT id, path FROM documents")}
    finally:
        conn.close()


def results(html: str) -> list[tuple[int, list[str]]]:
    """The document ids of the result groups, in order, each with its hits' links."""
    out = []
    for block in html.split('<li class="indexer-doc">')[1:]:
        doc = re.search(r"/-/document/(\d+)\?", block)
        assert doc is not None, block[:500]
        out.append((int(doc.group(1)), re.findall(r'class="indexer-page" href="([^"]+)"', block)))
    return out


def search_page(client: Client, **params: object) -> str:
    response = client.get("/library/-/search?" + urlencode(params, doseq=True))
    assert response.status_code == 200, response.text[-2000:]
    return response.text


def test_the_plugin_is_found_through_the_entry_point(client: Client) -> None:
    """``datasette library.db`` gets the pages: the plugin is registered by
    the package's entry point, with its templates and static folder."""
    plugins = client.get("/-/plugins.json").json()
    (ours,) = [p for p in plugins if p["name"] == "indexer"]
    assert ours["templates"] and ours["static"]
    assert "register_routes" in ours["hooks"]
    css = client.get("/-/static-plugins/indexer/indexer.css")
    assert css.status_code == 200 and ".indexer mark" in css.text
    assert "Search the library" in client.get("/library").text
    redirect = client.get("/-/search?q=x")
    assert redirect.status_code == 302 and redirect.headers["location"] == "/library/-/search?q=x"


def test_the_search_page_finds_each_probe_phrase_on_its_page(
    client: Client, library: Path, corpus: Path
) -> None:
    ids = doc_ids(library)
    rows = [
        r
        for r in read_manifest(corpus / "MANIFEST.tsv")
        if r["expect"] == "ok" and r["probe_phrase"]
    ]
    assert len({r["kind"] for r in rows}) >= 4
    missing = []
    for row in rows:
        path = str((corpus / row["path"]).absolute())
        doc = ids[path]
        html = search_page(client, q=f'"{row["probe_phrase"]}"', doc=doc)
        found = dict(results(html))
        if doc not in found:
            missing.append(f"{row['path']}: not found")
            continue
        if row["kind"] == "pdf":
            want = f"/library/-/file/{doc}#page={row['probe_page']}"
        else:  # (a text file is cut into pages of its own: any page of it)
            want = f"/library/-/document/{doc}/page/" + (
                row["probe_page"] if row["kind"] == "epub" else ""
            )
        if not any(link.startswith(want) for link in found[doc]):
            missing.append(f"{row['path']}: no link to {want} in {found[doc]}")
        assert "<mark>" in html
    assert not missing, missing


def test_documents_are_ranked_as_indexer_search_ranks_them(client: Client, library: Path) -> None:
    for q in ("the", "solution", "page", "matrix"):
        hits = search(library, q, limit=pages.PAGE_HITS).hits
        order = list(dict.fromkeys(h.doc_id for h in hits))
        shown = results(search_page(client, q=q))
        assert [doc for doc, _ in shown] == order, q
        # each document's pages in the order of the hits, at most SHOWN_PER_DOCUMENT
        first = [h for h in hits if h.doc_id == order[0]][: pages.SHOWN_PER_DOCUMENT]
        assert len(shown[0][1]) == len(first)
        assert all(
            f"page={h.page}" in link or f"/page/{h.page}?" in link
            for h, link in zip(first, shown[0][1], strict=True)
        )


def test_results_are_paged_and_each_document_counts_its_matching_pages(client: Client) -> None:
    first = search_page(client, q="the")
    assert 'rel="next" href="/library/-/search?q=the&amp;page=2"' in first
    second = search_page(client, q="the", page=2)
    assert 'rel="prev"' in second
    assert results(first) and results(second) and results(first) != results(second)
    for block in first.split('<li class="indexer-doc">')[1:]:
        counted = re.search(r"(\d+) matching pages?<", block)
        if counted is None:  # the words are in its title only: its first page
            assert "in its title or authors" in block
            continue
        assert int(counted.group(1)) >= len(re.findall('class="indexer-page"', block))
    # a page beyond the last: nothing, said so, not an error
    assert "Nothing found on page 999" in search_page(client, q="the", page=999)


def test_filters_narrow_the_results(client: Client, library: Path, corpus: Path) -> None:
    conn = sqlite3.connect(library)
    kinds = {
        int(i): (str(k), lang)
        for i, k, lang in conn.execute("SELECT id, kind, lower(language) FROM documents")
    }
    paths = {int(i): str(p) for i, p in conn.execute("SELECT id, path FROM documents")}
    conn.close()
    epub = [doc for doc, _ in results(search_page(client, q="the", format="epub"))]
    assert epub and all(kinds[d][0] == "epub" for d in epub)
    two = [doc for doc, _ in results(search_page(client, q="the", format=["epub", "txt"]))]
    both = search(library, "the", pages.PAGE_HITS, filters=Filters(formats=("epub", "txt")))
    assert two == list(dict.fromkeys(h.doc_id for h in both.hits))
    assert {kinds[d][0] for d in two} <= {"epub", "txt"}
    folder = str(corpus / "pdf" / "text")
    under = [doc for doc, _ in results(search_page(client, q="the", path=folder))]
    assert under and all(paths[d].startswith(folder + "/") for d in under)
    french = [doc for doc, _ in results(search_page(client, q="la", lang="fr"))]
    assert french and all((kinds[d][1] or "").startswith("fr") for d in french)
    assert set(french) < {doc for doc, _ in results(search_page(client, q="la"))}
    assert "Nothing found" in search_page(client, q="the", since="2999-01-01")
    assert results(search_page(client, q="the", before="2999-01-01"))
    # the facet links narrow as the filter fields do
    html = search_page(client, q="solution")
    assert 'href="/library/-/search?q=solution&amp;format=pdf"' in html
    # one document's pages (the "matching pages" link)
    doc, _ = results(html)[0]
    inside = search_page(client, q="solution", doc=doc)
    assert [d for d, _ in results(inside)] == [doc]
    assert "Only in" in inside


def test_document_scope_lists_documents_with_every_word(client: Client, library: Path) -> None:
    docs = search(library, "solution program", scope="doc", limit=pages.DOC_HITS).docs
    shown = results(search_page(client, q="solution program", scope="doc"))
    assert [d for d, _ in shown] == [d.doc_id for d in docs] and docs


def test_the_document_page_shows_metadata_status_and_pages(
    client: Client, library: Path, corpus: Path
) -> None:
    ids = doc_ids(library)
    conn = sqlite3.connect(library)
    conn.row_factory = sqlite3.Row
    longest = conn.execute(
        "SELECT * FROM documents WHERE status = 'ok' ORDER BY pages DESC LIMIT 1"
    ).fetchone()
    failed = conn.execute("SELECT * FROM documents WHERE status = 'error' LIMIT 1").fetchone()
    (first_text,) = conn.execute(
        "SELECT text FROM pages WHERE doc_id = ? ORDER BY page LIMIT 1", (longest["id"],)
    ).fetchone()
    gapped = conn.execute("SELECT doc_id, state FROM page_gaps LIMIT 1").fetchone()
    conn.close()
    html = unescape(client.get(f"/library/-/document/{longest['id']}").text)
    assert longest["path"] in html and "ok" in html
    assert f"Pages 1–{pages.DOCUMENT_PAGES} of {longest['pages']}" in html
    assert " ".join(first_text.split()[:8]) in " ".join(html.split())
    later = client.get(f"/library/-/document/{longest['id']}?from=21")
    assert later.status_code == 200 and f"Pages 21–40 of {longest['pages']}" in later.text
    html = unescape(client.get(f"/library/-/document/{failed['id']}").text)
    assert failed["error"] in html and "error" in html
    assert gapped is not None  # (the corpus has image-only pages)
    assert gapped["state"] in unescape(client.get(f"/library/-/document/{gapped[0]}").text)
    assert ids  # (every id above came from the index)


def test_a_page_of_stored_text_marks_the_words(client: Client, library: Path) -> None:
    hit = search(library, "solution").hits[0]
    response = client.get(f"/library/-/document/{hit.doc_id}/page/{hit.page}?q=solution")
    assert response.status_code == 200
    marked = re.findall(r"<mark>([^<]*)</mark>", response.text)
    assert marked and all(m.lower().startswith("solution") for m in marked)
    assert f"{len(marked)} match" in response.text


def test_the_errors_page_counts_by_reason(client: Client, library: Path) -> None:
    conn = sqlite3.connect(library)
    reasons = conn.execute(
        "SELECT reason, count(*) FROM errors GROUP BY reason ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    (total,) = conn.execute("SELECT count(*) FROM errors").fetchone()
    paths = [p for (p,) in conn.execute("SELECT path FROM errors")]
    conn.close()
    html = unescape(client.get("/library/-/errors").text)
    assert f"{total:,} file" in html
    assert f"{reasons[1]:,}</td><td>{reasons[0]}" in html
    assert all(p in html for p in paths[: pages.ERRORS_SHOWN])


def test_a_file_is_served_by_its_document_id_only(client: Client, library: Path) -> None:
    conn = sqlite3.connect(library)
    pdf_id, pdf = conn.execute(
        "SELECT id, path FROM documents WHERE kind = 'pdf' AND status = 'ok' LIMIT 1"
    ).fetchone()
    txt_id, txt = conn.execute(
        "SELECT id, path FROM documents WHERE kind = 'html' AND status = 'ok' LIMIT 1"
    ).fetchone()
    (last,) = conn.execute("SELECT max(id) FROM documents").fetchone()
    conn.close()
    response = client.get(f"/library/-/file/{pdf_id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content == Path(pdf).read_bytes()
    assert response.headers["content-disposition"].startswith("inline")
    page = client.get(f"/library/-/file/{txt_id}")
    assert page.content == Path(txt).read_bytes()
    # an indexed web page is shown as text, in a sandbox: its scripts never run here
    assert page.headers["content-type"].startswith("text/plain")
    assert page.headers["content-security-policy"] == "sandbox"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/library/-/file/{last + 1}").status_code == 404


TRAVERSAL = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "%00", "%ff%fe"]


def test_path_traversal_in_every_parameter_is_answered_plainly(
    client: Client, library: Path
) -> None:
    (first,) = (
        sqlite3.connect(library).execute("SELECT path FROM documents WHERE id = 1").fetchone()
    )
    served = Path(first).read_bytes()
    paths = []
    for bad in TRAVERSAL:
        for name in ("q", "path", "format", "since", "before", "lang", "doc", "page", "scope"):
            paths.append(f"/library/-/search?q=the&{name}={bad}")
        paths += [
            f"/library/-/document/{bad}",
            f"/library/-/document/1/page/{bad}",
            f"/library/-/document/1?from={bad}",
            f"/library/-/document/1/page/1?q={bad}",
            f"/library/-/file/{bad}",
            f"/library/-/file/1?path={bad}",
            f"/library/-/errors?page={bad}",
            f"/{bad}/-/search?q=the",
            f"/{bad}/-/file/1",
        ]
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 302, 400, 404), (path, response.status_code)
        assert "root:x:0:0" not in response.text, path
        assert "Traceback" not in response.text, path
        if response.status_code == 200 and "/-/file/" in path:  # (?path= is not read)
            assert response.content == served, path


def test_a_huge_or_malformed_query_gets_a_reason(client: Client) -> None:
    huge = client.get("/library/-/search?q=" + "word+" * 10_000)
    assert huge.status_code == 400
    assert f"{pages.MAX_QUERY:,} at most" in huge.text
    for q in ['"unbalanced', "AND OR NOT (", "*", "-", "-the", "NEAR(", "^", '""', "a:b"]:
        response = client.get("/library/-/search?" + urlencode({"q": q}))
        assert response.status_code in (200, 400), q
        assert "Traceback" not in response.text
        if response.status_code == 400:
            assert 'class="message-error indexer-error"' in response.text
    bad_date = client.get("/library/-/search?q=the&since=yesterday")
    assert bad_date.status_code == 400 and "is not a date" in unescape(bad_date.text)


def test_no_database_no_document_and_no_page_are_404(client: Client, library: Path) -> None:
    (last,) = sqlite3.connect(library).execute("SELECT max(id) FROM documents").fetchone()
    for path in (
        "/nowhere/-/search?q=the",
        f"/library/-/document/{last + 1}",
        f"/library/-/document/{last + 1}/page/1",
        "/library/-/document/1/page/999999",
        f"/library/-/search?q=the&doc={last + 1}",
    ):
        assert client.get(path).status_code == 404, path


def test_the_server_cannot_write_to_the_index(client: Client) -> None:
    db = client.ds.get_database("library")

    def delete(conn: sqlite3.Connection) -> Any:
        return conn.execute("DELETE FROM documents")

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        client.run(db.execute_fn(delete))
    response = client.get("/library.json?sql=" + quote("DELETE FROM documents"))
    assert response.status_code == 400
    assert client.get("/library/documents.json?_size=1").json()["rows"]


def test_html_and_script_in_text_and_file_names_are_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    nasty = "<img src=x onerror=alert('name')>.txt"
    (folder / nasty).write_text(
        'harmless words <script>alert("text")</script> <img src=x onerror=alert(2)>\n'
    )
    (folder / "page.html").write_text(
        "<html><head><title>&lt;script&gt;alert(3)&lt;/script&gt;</title></head>"
        "<body><p>harmless &lt;b onmouseover=alert(4)&gt; text</p></body></html>"
    )
    db = tmp_path / "library.db"
    index(folder, db=db)
    c = Client(db)
    try:
        for path in ("/library/-/search?q=harmless", "/library/-/errors"):
            html = c.get(path).text
            assert "<script>alert" not in html and "<img src=x" not in html
            assert "<b onmouseover" not in html
        html = c.get("/library/-/search?q=harmless").text
        assert "&lt;script&gt;alert(" in html and "&lt;img src=x" in html
        for doc in doc_ids(db).values():
            for path in (f"/library/-/document/{doc}", f"/library/-/document/{doc}/page/1?q=x"):
                assert "<script>alert" not in c.get(path).text
    finally:
        c.close()


def test_a_file_no_longer_there_is_404(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    gone = tmp_path / "docs" / "gone.txt"
    gone.write_text("soon gone\n")
    db = tmp_path / "library.db"
    index(tmp_path / "docs", db=db)
    gone.unlink()
    c = Client(db)
    try:
        (doc,) = doc_ids(db).values()
        response = c.get(f"/library/-/file/{doc}")
        assert response.status_code == 404 and "is no longer there" in response.text
    finally:
        c.close()


def test_a_run_can_write_while_the_index_is_served(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a.txt").write_text("lighthouse keeper\n")
    (second / "b.txt").write_text("lighthouse beacon\n")
    db = tmp_path / "library.db"
    index(first, db=db)
    c = Client(db)
    try:
        assert len(results(c.get("/library/-/search?q=lighthouse").text)) == 1
        proc = run_cli("index", first, second, "--db", db)  # (while Datasette holds it open)
        assert proc.returncode == 0, proc.stderr
        assert len(results(c.get("/library/-/search?q=lighthouse").text)) == 2
        assert "beacon" in c.get("/library/-/search?q=beacon").text
    finally:
        c.close()


def test_datasette_permissions_guard_the_pages(tmp_path: Path) -> None:
    """What an auth plugin allows or denies applies to these pages too."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("lighthouse\n")
    db = tmp_path / "library.db"
    index(tmp_path / "docs", db=db)
    c = Client(db, metadata={"allow": {"id": "me"}})
    try:
        (doc,) = doc_ids(db).values()
        for path in (
            "/library/-/search?q=lighthouse",
            f"/library/-/document/{doc}",
            f"/library/-/document/{doc}/page/1",
            f"/library/-/file/{doc}",
            "/library/-/errors",
        ):
            response = c.get(path)
            assert response.status_code == 403, path
            assert "lighthouse" not in response.text
        cookie = c.ds.sign({"a": {"id": "me"}}, "actor")
        allowed = c.run(
            c.ds.client.get("/library/-/search?q=lighthouse", cookies={"ds_actor": cookie})
        )
        assert allowed.status_code == 200 and "a.txt" in allowed.text
    finally:
        c.close()


def test_other_databases_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("lighthouse\n")
    index(tmp_path / "docs", db=tmp_path / "books.db")
    index(tmp_path / "docs", db=tmp_path / "papers.db")
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE documents (id INTEGER)").connection.commit()
    c = Client(tmp_path / "books.db", tmp_path / "papers.db", plain)
    try:
        assert c.get("/plain/-/search?q=x").status_code == 404
        assert c.get("/plain/documents.json").status_code == 200
        choose = c.get("/-/search")  # two indexes: a list to choose from
        assert choose.status_code == 200
        assert "/books/-/search" in choose.text and "/papers/-/search" in choose.text
        assert "/plain/-/search" not in choose.text
    finally:
        c.close()


def test_form_values_are_parsed_or_refused() -> None:
    def args(**values: str | list[str]) -> pages.Args:
        return lambda name: [v] if isinstance(v := values.get(name, []), str) else list(v)

    form = pages.Form.parse(args(q=" a b ", format=["pdf,epub", "pdf"], page="3", doc="7"))
    assert (form.q, form.formats, form.page, form.doc) == ("a b", ("pdf", "epub"), 3, 7)
    assert form.query_string(page=1) == "q=a+b&format=pdf&format=epub&doc=7"
    assert form.filters().documents == (7,)
    for bad in (
        {"scope": "all"},
        {"format": "exe"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "١"},  # (a digit, not an ASCII one)
        {"page": str(pages.MAX_RESULT_PAGE + 1)},
        {"doc": "1e3"},
        {"since": "soon"},
        {"q": "x" * (pages.MAX_QUERY + 1)},
    ):
        with pytest.raises(pages.FormError):
            pages.Form.parse(args(**bad))


def test_snippets_are_escaped_then_marked() -> None:
    from indexer.query import HL_END, HL_START

    html = pages.snippet_html(f"<b>{HL_START}word{HL_END}</b> & more")
    assert str(html) == "&lt;b&gt;<mark>word</mark>&lt;/b&gt; &amp; more"
