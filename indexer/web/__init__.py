"""The web page for the library: a Datasette plugin (``indexer serve``).

Why this module exists: the search page is built on Datasette rather than a
web framework of our own, so its tables, facets, SQL, JSON API and plugins
keep working beside it. This package is the plugin, registered through
Datasette's entry point (``[project.entry-points.datasette]``), so that a
plain ``datasette library.db`` gets the same pages; Datasette serves its
``templates/`` and ``static/`` folders. The hooks here only name the routes
and the links to them; ``views.py`` answers them, ``pages.py`` reads the
index. Imported only where Datasette is installed (``indexer[serve]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import datasette
import datasette.handle_exception

from indexer.web import pages, views

# Datasette prints every error it answers, a 404 too, as a rich traceback
# with the local variables (document text among them) where rich is
# installed, as it is with indexer; and where no exception is being handled
# at that moment, rich raises instead, turning a 400 into a 500. Its plain
# traceback.print_exc() for a real 500 stays.
datasette.handle_exception.rich = None

F = TypeVar("F", bound=Callable[..., Any])
hookimpl = cast(Callable[[F], F], datasette.hookimpl)  # (Datasette has no type hints)

DB = r"(?P<database>[^/]+)"
ID = r"(?P<doc_id>[0-9]{1,18})"


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (r"^/-/search$", views.find_index),
        (rf"^/{DB}/-/search$", views.search),
        (rf"^/{DB}/-/document/{ID}$", views.document),
        (rf"^/{DB}/-/document/{ID}/page/(?P<page>[0-9]{{1,9}})$", views.page),
        (rf"^/{DB}/-/file/{ID}$", views.file),
        (rf"^/{DB}/-/errors$", views.errors),
    ]


@hookimpl
def database_actions(datasette: Any, database: str) -> Any:
    async def links() -> list[dict[str, str]]:
        db = datasette.get_database(database)
        if db.is_memory or not await db.execute_fn(pages.is_index):
            return []
        base = datasette.urls.database(database)
        return [
            {"href": f"{base}/-/search", "label": "Search the library"},
            {"href": f"{base}/-/errors", "label": "What could not be indexed"},
        ]

    return links


@hookimpl
def menu_links(datasette: Any) -> Any:
    async def links() -> list[dict[str, str]]:
        out = []
        for db in datasette.databases.values():
            if not db.is_memory and await db.execute_fn(pages.is_index):
                href = views.search_url(datasette, db.name)
                out.append({"href": href, "label": f"Search {db.name}"})
        return out

    return links
