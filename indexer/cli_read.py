"""The commands that read the index: ``search``, ``show``, ``open``, ``stats`` and ``serve``.

Why this module exists: ``cli.py`` holds the index run and the commands
about the index's state; the reading commands are as many lines again. Each
parses its options, calls one library function (``search.search``,
``show.show``, ``viewer.command``) and prints the result; ``cli.py``
registers them on the app in the order ``--help`` lists them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from indexer import config as config_mod
from indexer.cli_common import MAX_HITS, ConfigOpt, DbOpt, fail, internal, typed_text
from indexer.errors import IndexerError, UsageError
from indexer.names import container_of


def search(
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY",
            help='Words (all of them), "a phrase", word* (a prefix), -word (without it).',
        ),
    ],
    db: DbOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Hits to show at most.", min=0, max=MAX_HITS)
    ] = 20,
    offset: Annotated[
        int, typer.Option(help="Skip this many hits first.", min=0, max=MAX_HITS)
    ] = 0,
    fts: Annotated[
        bool, typer.Option("--fts", help="QUERY is FTS5 syntax (NEAR, OR, NOT, columns).")
    ] = False,
    scope: Annotated[
        str,
        typer.Option(
            help="page: pages with every word; doc: documents with every word on any page."
        ),
    ] = "page",
    paths: Annotated[
        list[str] | None,
        typer.Option("--path", help="Only under this folder, or matching this glob (repeatable)."),
    ] = None,
    formats: Annotated[
        str | None, typer.Option("--format", help="Only these kinds, e.g. pdf,epub.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only files modified on or after this date (YYYY-MM-DD).")
    ] = None,
    before: Annotated[
        str | None, typer.Option(help="Only files modified before this date (YYYY-MM-DD).")
    ] = None,
    lang: Annotated[
        str | None, typer.Option(help="Only documents in these languages, e.g. en,fr.")
    ] = None,
    stem: Annotated[
        str | None,
        typer.Option(
            help="Also find the words' other forms: each word as a prefix of its stem in "
            "this language (en, fr, de, ru, ...).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per hit, for scripts.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
    files: Annotated[
        bool, typer.Option("--files", help="The matching files' paths only, best first.")
    ] = False,
    config_file: ConfigOpt = None,
) -> None:
    """Search the index: ranked hits with document, page and a highlighted snippet.

    Exit status: 0 with hits, 1 without, 2 on errors.
    """
    from indexer import output
    from indexer.extract import KINDS
    from indexer.filters import Filters
    from indexer.search import search as run_search

    try:
        if sum((as_json, as_csv, files)) > 1:
            raise UsageError("--json, --csv and --files are one each", hint="pick one")
        if scope not in ("page", "doc"):
            raise UsageError(f"--scope {scope!r}: it is page or doc")
        kinds = tuple(
            k.strip().lower().lstrip(".") for k in (formats or "").split(",") if k.strip()
        )
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise UsageError(
                f"--format {','.join(unknown)}: not a kind the index holds",
                hint="kinds: " + ", ".join(KINDS),
            )
        filters = Filters(
            paths=tuple(typed_text(p) for p in paths or ()),
            formats=kinds,
            since_ns=None if since is None else output.date_ns(since, "--since"),
            before_ns=None if before is None else output.date_ns(before, "--before"),
            languages=tuple(x.strip() for x in (lang or "").split(",") if x.strip()),
        )
        cfg = config_mod.resolve({"db": db}, config_file=config_file)
        result = run_search(
            cfg.db,
            typed_text(query),
            limit=limit,
            offset=offset,
            fts=fts,
            scope="doc" if scope == "doc" else "page",
            filters=filters,
            stem=stem,
        )
    except IndexerError as e:
        fail(e)
    except Exception as e:
        internal(e)
    form: output.Form = (
        "json"
        if as_json
        else "csv"
        if as_csv
        else "files"
        if files
        else "terminal"
        if sys.stdout.isatty()
        else "plain"
    )
    try:
        output.write(result, form, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # `indexer search ... | head`: the reader left; exit quietly like ripgrep
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(code=0) from None
    if not (result.hits or result.docs):
        if sys.stderr.isatty():
            typer.echo("no matches", err=True)
        raise typer.Exit(code=1)
    raise typer.Exit(code=0)


def show(
    path: Annotated[str, typer.Argument(metavar="PATH", help="A document in the index.")],
    page: Annotated[
        str | None,
        typer.Option(help="Print this page's text: its printed label (xii, 237) or its number."),
    ] = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config_file: ConfigOpt = None,
) -> None:
    """Show a document as the index holds it: its metadata and pages, or one page's text."""
    from indexer.progress import printable
    from indexer.show import show as run_show

    try:
        cfg = config_mod.resolve({"db": db}, config_file=config_file)
        shown = run_show(cfg.db, typed_text(path), page)
    except IndexerError as e:
        fail(e)
    except Exception as e:
        internal(e)
    pages = [{"page": p.page, "label": p.label, "line": p.line} for p in shown.pages]
    if page is not None:
        (one,) = shown.pages
        if as_json:
            line = {"path": shown.path, "page": one.page, "label": one.label, "line": one.line}
            line["text"] = one.text
            typer.echo(json.dumps(line, ensure_ascii=False))
        else:  # line by line: printable escapes the newlines of one string
            for text_line in one.text.split("\n"):
                typer.echo(printable(text_line))
    elif as_json:
        typer.echo(json.dumps({"path": shown.path, **shown.fields, "pages_with_text": pages}))
    else:
        typer.echo(printable(shown.path))
        for key, value in shown.fields.items():
            typer.echo(printable(f"  {key}: {value}"))
        listed = [
            f"{p.label} ({p.page})"
            if p.label
            else f"{p.page} (line {p.line})"
            if p.line
            else str(p.page)
            for p in shown.pages
        ]
        typer.echo(printable(f"  pages with text: {', '.join(listed) or 'none'}"))


def open_target(
    target: Annotated[
        str,
        typer.Argument(
            metavar="HIT",
            help="A document in the index, or a hit's link as search prints it "
            "(file:///...#page=N).",
        ),
    ],
    page: Annotated[
        str | None,
        typer.Option(help="Open at this page: its printed label (xii, 237) or its number."),
    ] = None,
    viewer: Annotated[
        str | None,
        typer.Option(
            help="The command to open it with; {path}, {page}, {line} and {url} are "
            "filled in. [env: INDEXER_VIEWER; default: the first of zathura, evince, "
            "okular, qpdfview, mupdf for a PDF, else xdg-open or open]",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the viewer to exit (one in the terminal).")
    ] = False,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the command instead of running it.")
    ] = False,
    db: DbOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Open a document at a hit's page in a viewer (a PDF at the page itself)."""
    import shlex
    import subprocess

    from indexer import viewer as viewer_mod
    from indexer.show import show as run_show

    try:
        path, linked_page = viewer_mod.target(target)
        cfg = config_mod.resolve({"db": db}, config_file=config_file)
        asked = page if page is not None else None if linked_page is None else str(linked_page)
        shown = run_show(cfg.db, path, asked)
        kind = str(shown.fields.get("kind", ""))
        container = container_of(path)
        if container is not None:  # an attached file is shown in its PDF
            typer.echo(f"note: {path} is attached to {container}: opening that", err=True)
            path, kind, asked = container, "pdf", None
        if not os.path.exists(path):
            raise UsageError(
                f"{path} is in the index but no longer on disk",
                hint="the next `indexer index` run purges it",
            )
        one = shown.pages[0] if asked is not None and shown.pages else None
        cmd = viewer_mod.command(
            kind,
            path,
            None if one is None else one.page,
            None if one is None else one.line,
            viewer if viewer is not None else os.environ.get("INDEXER_VIEWER") or None,
        )
        if print_only:
            typer.echo(shlex.join(cmd.argv))
            return
        if one is not None and not cmd.at_page:
            typer.echo(f"note: {cmd.argv[0]} opens it at its start, not at page {asked}", err=True)
        try:
            if wait:
                raise typer.Exit(code=subprocess.run(cmd.argv).returncode)
            subprocess.Popen(
                cmd.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # the viewer outlives the command
            )
        except OSError as e:
            raise UsageError(
                f"cannot run {cmd.argv[0]}: {e.strerror or e}",
                hint="name another with --viewer or INDEXER_VIEWER",
            ) from None
    except IndexerError as e:
        fail(e)
    except typer.Exit:
        raise
    except Exception as e:
        internal(e)


def stats(
    db: DbOpt = None,
    errors: Annotated[bool, typer.Option("--errors", help="List the error records too.")] = False,
    unsearchable: Annotated[
        bool,
        typer.Option(
            "--unsearchable",
            help="List the documents and pages a search cannot find, and why "
            "(image only: OCR them; failed: the reason).",
        ),
    ] = False,
    runs: Annotated[
        bool,
        typer.Option(
            "--runs", help="List the last 10 runs instead: what each did, how fast, CPU by role."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config_file: ConfigOpt = None,
) -> None:
    """Show what the index holds: documents by status, pages, and error records."""
    import sqlite3

    from indexer import store

    try:
        cfg = config_mod.resolve({"db": db}, config_file=config_file)
        conn = store.connect(cfg.db)
        try:
            if runs:
                _print_runs(store.recent_runs(conn), as_json)
                return
            if unsearchable:
                _print_unsearchable(conn, as_json)
                return
            counts = store.counts(conn)
            records = store.error_records(conn) if errors else []
        except sqlite3.Error as e:
            raise store.explain_error(Path(cfg.db), e, "read") from None
        finally:
            conn.close()
    except IndexerError as e:
        fail(e)
    if as_json:
        out: dict[str, Any] = dict(counts)
        if errors:
            out["errors"] = [dict(r) for r in records]
        typer.echo(json.dumps(out))
        return
    typer.echo(
        f"{counts['documents']} documents: {counts['ok']} ok, {counts['empty']} empty, "
        f"{counts['partial']} partial, {counts['error']} failed; {counts['pages']:,} pages"
        + (f" ({counts['ocr_pages']:,} pages recognised by OCR)" if counts["ocr_pages"] else "")
        + (f"; {counts['pending_jobs']} jobs pending" if counts["pending_jobs"] else "")
    )
    from indexer.progress import printable

    for r in records:
        typer.echo(printable(f"{r['path']}: {r['reason']}"))


def _print_runs(runs: list[dict[str, Any]], as_json: bool) -> None:
    """``stats --runs``: one line per run, newest first (JSON: the stored rows)."""
    if as_json:
        for run in runs:
            typer.echo(json.dumps(run))
        return
    for run in runs:
        s = run["summary"]
        cpu = s.get("cpu") or {}
        errors = s.get("errors") or {}
        line = f"run {run['id']}  {str(run['started_at'])[:19]}  {run['status']}" + (
            f"  {s.get('seconds', 0):.1f} s: {s.get('new', 0)} new, {s.get('changed', 0)} "
            f"changed, {s.get('deleted', 0)} deleted, {s.get('failed', 0)} failed; "
            f"{s.get('pages', 0):,} pages ({s.get('pages_per_min', 0):,}/min)"
            if s
            else ""
        )
        if s.get("workers"):
            line += f"; {s['workers']} workers, {100 * s.get('worker_efficiency', 0):.0f} % busy"
        if cpu:
            line += "; CPU " + ", ".join(f"{role} {sec:.1f} s" for role, sec in sorted(cpu.items()))
        if errors:
            line += "; errors: " + ", ".join(f"{kind} {n}" for kind, n in sorted(errors.items()))
        typer.echo(line)


def _print_unsearchable(conn: Any, as_json: bool) -> None:
    """``stats --unsearchable``: a line per document (JSON: an object per
    document, then one of totals), then the totals."""
    from indexer import ledger
    from indexer.progress import printable

    found = ledger.unsearchable(conn)
    if as_json:
        for doc in found:
            typer.echo(json.dumps(doc.as_dict()))
        typer.echo(json.dumps({"totals": ledger.totals(found)}))
        return
    for doc in found:
        typer.echo(printable(doc.describe()))
    typer.echo(ledger.summary_line(found), err=bool(found))


def serve(
    db: DbOpt = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; 0.0.0.0 shares the page with the network "
            "(no login: see the README).",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port.", min=0, max=65535)] = 8001,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the search page in the browser.")
    ] = False,
    config_file: ConfigOpt = None,
) -> None:
    """Serve a search page for the index in the browser (Datasette, read-only).

    Needs the serve extra: pip install 'indexer[serve]'. The rest of Datasette
    (tables, SQL, JSON) is there too.
    """
    from indexer import serve as serve_mod

    try:
        cfg = config_mod.resolve({"db": db}, config_file=config_file)
        serve_mod.serve(Path(cfg.db), host, port, open_browser)
    except IndexerError as e:
        fail(e)
    except Exception as e:
        internal(e)
