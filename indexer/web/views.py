"""The web pages' Datasette views: search, document, page text, file, errors.

Why this module exists: each view finds the database the URL names among
those Datasette serves, checks that it is an index and that the visitor may
view it (Datasette's permissions, so an auth plugin guards these pages as it
guards the tables), runs one ``pages`` call on Datasette's read-only
connection in its thread pool, and renders a template. The only file a view
sends is the one a ``documents`` row names, looked up by its id.
"""

from __future__ import annotations

import mimetypes
import os
from typing import Any
from urllib.parse import quote

from datasette.utils import tilde_decode
from datasette.utils.asgi import AsgiFileDownload, NotFound, Response

from indexer.extract import KINDS
from indexer.names import container_of, stored_bytes
from indexer.web import pages

# what a served file is sent as; anything else as bytes to download
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "epub": "application/epub+zip",
    "txt": "text/plain",
    "md": "text/plain",
    "html": "text/plain",  # (shown as text: an indexed page's scripts must not run here)
    "djvu": "image/vnd.djvu",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
}


async def _index(datasette: Any, request: Any) -> Any:
    """The database the URL names, if it is an index the visitor may view."""
    route = tilde_decode(request.url_vars["database"])
    try:
        db = datasette.get_database(route=route)
    except KeyError:
        raise NotFound(f"no database {route!r}") from None
    await datasette.ensure_permissions(
        request.actor,
        [("view-table", (db.name, "pages")), ("view-database", db.name), "view-instance"],
    )
    if not await db.execute_fn(pages.is_index):
        raise NotFound(f"{db.name} is not an index made by indexer")
    return db


def _context(datasette: Any, db: Any, **more: object) -> dict[str, object]:
    base = datasette.urls.database(db.name)
    return {
        "database": db.name,
        "base": base,
        "search_url": f"{base}/-/search",
        "errors_url": f"{base}/-/errors",
        "kinds": KINDS,
        **more,
    }


def search_url(datasette: Any, name: str) -> str:
    return str(datasette.urls.database(name)) + "/-/search"


async def _render(
    datasette: Any, request: Any, template: str, context: dict[str, object], status: int = 200
) -> Response:
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, status=status)


async def search(datasette: Any, request: Any) -> Response:
    db = await _index(datasette, request)
    context = _context(datasette, db)
    try:
        form = pages.Form.parse(request.args.getlist)
    except pages.FormError as e:
        form = pages.Form()
        context.update(form=form, error=str(e))
        return await _render(datasette, request, "indexer_search.html", context, 400)
    context["form"] = form
    if form.doc is not None:
        row = await db.execute_fn(lambda conn: pages.document_row(conn, form.doc or 0))
        if row is None:
            raise NotFound(f"no document {form.doc} in {db.name}")
        context["in_document"] = row
    if not form.q:
        context["summary"] = await db.execute_fn(pages.summary)
        return await _render(datasette, request, "indexer_search.html", context)
    try:
        results = await db.execute_fn(lambda conn: pages.search(conn, form, db.name))
    except pages.FormError as e:
        context["error"] = str(e)
        return await _render(datasette, request, "indexer_search.html", context, 400)
    context["results"] = results
    return await _render(datasette, request, "indexer_search.html", context)


async def document(datasette: Any, request: Any) -> Response:
    db = await _index(datasette, request)
    doc_id = int(request.url_vars["doc_id"])
    try:
        first = pages.number(request.args.get("from", ""), "from", 2**31) or 1
    except pages.FormError as e:
        return Response.text(str(e) + "\n", status=400)
    doc = await db.execute_fn(lambda conn: pages.document(conn, doc_id, first))
    if doc is None:
        raise NotFound(f"no document {doc_id} in {db.name}")
    context = _context(datasette, db, doc=doc, q=request.args.get("q", "")[: pages.MAX_QUERY])
    return await _render(datasette, request, "indexer_document.html", context)


async def page(datasette: Any, request: Any) -> Response:
    db = await _index(datasette, request)
    doc_id, number = int(request.url_vars["doc_id"]), int(request.url_vars["page"])
    q = request.args.get("q", "")
    if len(q) > pages.MAX_QUERY:
        return Response.text(f"q: {len(q):,} characters; {pages.MAX_QUERY:,} at most\n", 400)
    found = await db.execute_fn(lambda conn: pages.page_text(conn, doc_id, number, q))
    if found is None:
        raise NotFound(f"no page {number} of document {doc_id} in {db.name}")
    return await _render(
        datasette,
        request,
        "indexer_page.html",
        _context(datasette, db, doc_id=doc_id, found=found, q=q),
    )


async def file(datasette: Any, request: Any) -> Any:
    """The file a document row names (an attachment's: its PDF), never a
    path from the URL."""
    db = await _index(datasette, request)
    doc_id = int(request.url_vars["doc_id"])
    row = await db.execute_fn(lambda conn: pages.document_row(conn, doc_id))
    if row is None:
        raise NotFound(f"no document {doc_id} in {db.name}")
    stored = str(row["path"])
    container = container_of(stored)
    kind = "pdf" if container else str(row["kind"])
    path = os.fsdecode(stored_bytes(container or stored))
    if not os.path.isfile(path):
        raise NotFound(f"{container or stored} is no longer there")
    name = quote(os.path.basename(container or stored))
    headers = {
        "content-disposition": f"inline; filename*=UTF-8''{name}",
        "x-content-type-options": "nosniff",
        "cache-control": "no-store",
    }
    if kind != "pdf":  # (no script in a served file runs as this site; PDFs run none)
        headers["content-security-policy"] = "sandbox"
    content_type = (
        CONTENT_TYPES.get(kind) or mimetypes.guess_type(path)[0] or "application/octet-stream"
    )
    return AsgiFileDownload(path, content_type=content_type, headers=headers)


async def errors(datasette: Any, request: Any) -> Response:
    db = await _index(datasette, request)
    try:
        shown = (pages.number(request.args.get("page", ""), "page", 10**6) or 1) - 1
    except pages.FormError as e:
        return Response.text(str(e) + "\n", status=400)
    found = await db.execute_fn(lambda conn: pages.errors(conn, shown * pages.ERRORS_SHOWN))
    context = _context(datasette, db, found=found, page=shown + 1, per_page=pages.ERRORS_SHOWN)
    return await _render(datasette, request, "indexer_errors.html", context)


async def find_index(datasette: Any, request: Any) -> Response:
    """``/-/search``: the search page of the one index served (the query
    kept), or a list of them."""
    found = []
    for db in datasette.databases.values():
        if not db.is_memory and await db.execute_fn(pages.is_index):
            found.append(db)
    if len(found) == 1:
        qs = request.query_string
        url = search_url(datasette, found[0].name)
        return Response.redirect(url + (f"?{qs}" if qs else ""))
    context: dict[str, object] = {
        "indexes": [(db.name, search_url(datasette, db.name)) for db in found]
    }
    return await _render(datasette, request, "indexer_choose.html", context, 200 if found else 404)
