"""The command line: options in, one library call, exit status out.

Why this module exists: it is the only place that knows about the terminal.
Each command parses its options into a ``Config`` (``config.resolve``), calls
one library function (``run.index``, ``search.search``, ...), prints the
result, and turns ``IndexerError`` into ``error: message`` (+ ``hint:``) on
stderr with the exit status the README documents. No traceback reaches the
user; ``INDEXER_DEBUG=1`` shows one for bug reports.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from indexer import config as config_mod
from indexer.cli_common import ConfigOpt, DbOpt, fail, internal
from indexer.cli_read import open_target, search, serve, show, stats
from indexer.errors import ExitStatus, IndexerError

app = typer.Typer(
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # (help texts say "[env: X; default: Y]" as they are)
    pretty_exceptions_enable=False,
    help="Index folders of PDFs, EPUBs and text files into one SQLite FTS5 file, and search it.",
)


def _version(value: bool) -> None:
    if value:
        from indexer import __version__

        typer.echo(f"indexer {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Index folders of PDFs, EPUBs and text files into one SQLite FTS5 file, and search it."""


def _sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@app.command()
def index(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATHS...", help="Folders and files to index.", show_default=False),
    ],
    db: DbOpt = None,
    workers: Annotated[
        str | None,
        typer.Option(help="Worker processes, or 'auto'. [env: INDEXER_WORKERS; default: auto]"),
    ] = None,
    epub_concurrency: Annotated[
        int | None,
        typer.Option(
            help="EPUB tasks in flight at most. [env: INDEXER_EPUB_CONCURRENCY; default: 2]"
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds a task may go without reading a page (a hang), and may "
            "take per 100 pages in all. [env: INDEXER_TIMEOUT; default: 60]"
        ),
    ] = None,
    worker_memory: Annotated[
        str | None,
        typer.Option(
            help="Memory cap per worker, e.g. 2G, or 'auto'. [env: INDEXER_WORKER_MEMORY]"
        ),
    ] = None,
    memory_reserve: Annotated[
        str | None,
        typer.Option(
            help="Memory kept free for the system; below it the pool holds back. "
            "[env: INDEXER_MEMORY_RESERVE]"
        ),
    ] = None,
    batch_rows: Annotated[
        int | None,
        typer.Option(help="Rows per writer transaction. [env: INDEXER_BATCH_ROWS; default: 5000]"),
    ] = None,
    batch_seconds: Annotated[
        float | None,
        typer.Option(
            help="Seconds per writer transaction at most. [env: INDEXER_BATCH_SECONDS; default: 2]"
        ),
    ] = None,
    small_file_kb: Annotated[
        int | None,
        typer.Option(
            help="Group files under this size (KiB) into one task. "
            "[env: INDEXER_SMALL_FILE_KB; default: 128]"
        ),
    ] = None,
    hidden: Annotated[
        bool | None,
        typer.Option(
            "--hidden/--no-hidden", help="Index hidden files and folders. [env: INDEXER_HIDDEN]"
        ),
    ] = None,
    follow_symlinks: Annotated[
        bool | None,
        typer.Option(
            "--follow-symlinks/--no-follow-symlinks",
            help="Follow links to files outside the folders being indexed. "
            "[env: INDEXER_FOLLOW_SYMLINKS; default: no]",
        ),
    ] = None,
    retry_errors: Annotated[
        bool | None,
        typer.Option(
            "--retry-errors/--no-retry-errors",
            help="Retry files that failed before even if unchanged. [env: INDEXER_RETRY_ERRORS]",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="GLOB",
            help="Leave out files and folders matching this gitignore pattern, on the "
            "path relative to each folder indexed (repeat it for more; an .indexerignore "
            "file in any folder adds its own). Documents already indexed there are "
            "removed. [env: INDEXER_EXCLUDE, comma-separated]",
            show_default=False,
        ),
    ] = None,
    progress_every: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Off a terminal (a log, cron), print a progress line this often: "
            "percentage, files, pages, pages/s, failures, time left. "
            "[env: INDEXER_PROGRESS_EVERY; default: 0, none]",
        ),
    ] = None,
    ocr: Annotated[
        str | None,
        typer.Option(
            metavar="never|auto|always",
            help="Recognise scanned pages with Tesseract: auto = pages with no text that "
            "are images, always = every page. [env: INDEXER_OCR; default: never]",
            show_default=False,
        ),
    ] = None,
    ocr_lang: Annotated[
        str | None,
        typer.Option(
            help="OCR languages, e.g. eng+deu. [env: INDEXER_OCR_LANG; default: eng]",
            show_default=False,
        ),
    ] = None,
    ocr_dpi: Annotated[
        int | None,
        typer.Option(
            help="Resolution pages are rendered at for OCR. [env: INDEXER_OCR_DPI; default: 300]",
            show_default=False,
        ),
    ] = None,
    ocr_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds one page's OCR may take. [env: INDEXER_OCR_TIMEOUT; default: 120]",
            show_default=False,
        ),
    ] = None,
    config_file: ConfigOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the plan (counts; paths with --verbose), change nothing."
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait for another run on the same index instead of exiting 2."),
    ] = False,
    reindex: Annotated[
        bool,
        typer.Option("--reindex", help="Read every file under PATHS again, changed or not."),
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Read again the documents whose pages another tool deleted, and rebuild "
            "the full-text index.",
        ),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Hash every file, also those whose size and mtime did not change, and "
            "read again those whose content did.",
        ),
    ] = False,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="How a new index cuts text into searchable tokens: unicode61 (words, "
            "accents folded), porter (English stemming: running finds run) or trigram "
            "(substrings: Chinese, Japanese, Korean). Recorded in the file; later runs "
            "and searches use it. [default: unicode61]",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Explain sizing, governor and pool decisions.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only failed files on stderr (for cron).")
    ] = False,
    json_summary: Annotated[
        bool, typer.Option("--json", help="Print the run summary as JSON on stdout.")
    ] = False,
) -> None:
    """Index PATHS (folders and files) into the index file, incrementally."""
    from indexer.resources import CpuSample

    cpu = CpuSample()  # other processes' CPU use, measured while we start up
    from indexer.plan import Checks
    from indexer.progress import (
        Reporter,
        details_line,
        planned_lines,
        summary_line,
        unsupported_lines,
    )
    from indexer.run import index as run_index

    _sigterm_as_interrupt()
    flags = {
        "db": db,
        "workers": workers,
        "epub_concurrency": epub_concurrency,
        "timeout": timeout,
        "worker_memory": worker_memory,
        "memory_reserve": memory_reserve,
        "batch_rows": batch_rows,
        "batch_seconds": batch_seconds,
        "small_file_kb": small_file_kb,
        "hidden": hidden,
        "follow_symlinks": follow_symlinks,
        "retry_errors": retry_errors,
        "exclude": exclude or None,
        "progress_every": progress_every,
        "ocr": ocr,
        "ocr_lang": ocr_lang,
        "ocr_dpi": ocr_dpi,
        "ocr_timeout": ocr_timeout,
    }
    reporter = Reporter(quiet=quiet, verbose=verbose)
    try:
        cfg = config_mod.resolve(flags, config_file=config_file)
        reporter.progress_every = cfg.progress_every
        summary = run_index(
            [str(p) for p in paths],
            cfg,
            dry_run=dry_run,
            wait=wait,
            reporter=reporter,
            cpu=cpu,
            checks=Checks(reindex=reindex, repair=repair, verify=verify),
            tokenizer=tokenizer,
        )
    except IndexerError as e:
        reporter.stop()
        fail(e)
    except KeyboardInterrupt:
        reporter.stop()
        typer.echo("interrupted", err=True)
        raise typer.Exit(code=int(ExitStatus.INTERRUPTED)) from None
    except Exception as e:
        internal(e)
    if dry_run and verbose:
        for line in planned_lines(summary):
            typer.echo(line)
    if json_summary:
        typer.echo(json.dumps(summary.to_dict()))
    reporter.note(summary_line(summary))
    if verbose and not dry_run:
        for line in unsupported_lines(summary):
            reporter.info(line)
        reporter.info(details_line(summary))
    raise typer.Exit(code=int(summary.exit_status))


@app.command()
def forget(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATHS...",
            help="Folders and files whose documents leave the index (they need not exist).",
            show_default=False,
        ),
    ],
    db: DbOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the documents that would go, change nothing.")
    ] = False,
    config_file: ConfigOpt = None,
) -> None:
    """Remove the documents at or below PATHS from the index (a folder you
    deleted or no longer index). Exit status 1 when a PATH has none."""
    from indexer.forget import forget as forget_paths
    from indexer.progress import printable

    try:
        cfg = config_mod.resolve({"db": db}, config_file=config_file)
        gone = forget_paths(cfg.db, paths, dry_run=dry_run)
    except IndexerError as e:
        fail(e)
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was removed", err=True)
        raise typer.Exit(code=int(ExitStatus.INTERRUPTED)) from None
    except Exception as e:
        internal(e)
    if dry_run:
        for path in gone.paths:
            typer.echo(printable(path))
    for path in gone.unknown:
        typer.echo(f"{printable(path)}: nothing in the index at or below it", err=True)
    many = "" if gone.documents == 1 else "s"
    done = "would remove" if dry_run else "removed"
    typer.echo(f"{done} {gone.documents:,} document{many} ({gone.pages:,} pages)", err=True)
    raise typer.Exit(code=int(ExitStatus.SOME_FAILED if gone.unknown else ExitStatus.OK))


@app.command()
def watch(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATHS...", help="Folders and files to watch.", show_default=False),
    ],
    db: DbOpt = None,
    quiet_seconds: Annotated[
        float,
        typer.Option(
            help="Seconds without changes before a pass reads them (a file being written "
            "is read once it is complete).",
            min=0.1,
        ),
    ] = 2.0,
    rescan_every: Annotated[
        float,
        typer.Option(help="Seconds between passes when no change is reported.", min=1),
    ] = 600.0,
    config_file: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Every pass's detail.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only failed files on stderr.")
    ] = False,
) -> None:
    """Index PATHS, then keep the index current as files change (Ctrl-C stops).
    Settings (exclusions, workers, ...) come from the environment and the
    config file, as for index."""
    from indexer.progress import Reporter, summary_line
    from indexer.run import RunSummary
    from indexer.watch import watch as watch_paths

    _sigterm_as_interrupt()
    reporter = Reporter(quiet=quiet, verbose=verbose)

    passes = 0

    def said(summary: RunSummary) -> None:
        nonlocal passes
        passes += 1
        busy = summary.new + summary.changed + summary.moved + summary.deleted
        if busy or summary.failed or summary.retried or passes == 1:
            reporter.note(summary_line(summary))

    try:
        cfg = config_mod.resolve({"db": db}, config_file=config_file)
        reporter.note(f"watching {len(paths)} path(s) for changes; Ctrl-C stops")
        last = watch_paths(
            [str(p) for p in paths],
            cfg,
            reporter,
            quiet=quiet_seconds,
            rescan=rescan_every,
            on_pass=said,
        )
    except IndexerError as e:
        fail(e)
    except KeyboardInterrupt:
        last = None
    except Exception as e:
        internal(e)
    reporter.note("stopped watching" + (": a pass was interrupted" if last else ""))
    raise typer.Exit(code=int(ExitStatus.INTERRUPTED if last else ExitStatus.OK))


app.command()(search)
app.command()(show)
app.command("open")(open_target)
app.command()(stats)
app.command()(serve)


@app.command("config")
def show_config(
    db: DbOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Print the effective settings and where each one came from."""
    try:
        cfg = config_mod.resolve({"db": db}, config_file=config_file)
    except IndexerError as e:
        fail(e)
    rows = config_mod.describe(cfg)
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    typer.echo(f"# config file: {cfg.config_file or 'none'}")
    for name, value, source in rows:
        typer.echo(f"{name:<{width}}  {value:<{vwidth}}  ({source})")


def _command_line_error(e: Exception) -> int:
    """A mistake on the command line (typer's ClickException family: an
    unknown option, a missing argument, a bad value) as one line and a hint,
    like every other error, instead of typer's framed box. Anything else is
    raised again."""
    message, exit_code = getattr(e, "format_message", None), getattr(e, "exit_code", None)
    if not callable(message) or not isinstance(exit_code, int):
        raise e
    if type(e).__name__ == "NoArgsIsHelpError":  # `indexer` alone: the help
        typer.echo(message(), err=True)
        return exit_code
    from indexer.progress import printable

    ctx = getattr(e, "ctx", None)
    command = ctx.command_path if ctx is not None else "indexer"
    text = printable(str(message()))
    typer.echo(f"error: {text}", err=True)
    if command.endswith(" search") and text.startswith("No such option"):
        hint = f"a query that starts with '-' goes after '--': {command} -- -word"
    else:
        hint = f"see {command} --help"
    typer.echo(f"hint: {hint}", err=True)
    return exit_code


class _Argument(typer.core.TyperArgument):
    """An argument shown in usage as ``QUERY``, not typer's ``{QUERY}``."""

    def make_metavar(self, ctx: Any, *, usage: bool = False) -> str:
        return (
            super().make_metavar(ctx, usage=False)
            if self.required
            else super().make_metavar(ctx, usage=usage)
        )


def _command() -> Any:
    """The click command of ``app``, its required arguments shown plainly."""
    command = typer.main.get_command(app)
    for sub in getattr(command, "commands", {}).values():
        for param in sub.params:
            if type(param) is typer.core.TyperArgument:
                param.__class__ = _Argument
    return command


def main() -> None:
    """The ``indexer`` command. It ends with ``os._exit`` once the exit handlers
    have run and the output is flushed: tearing down the interpreter's modules
    would only add about 50 ms to every command (every search). Everything the
    commands open (index connections, the writer, the workers) is closed by then."""
    try:
        rv = _command()(standalone_mode=False)
        code: object = rv if isinstance(rv, int) else 0
    except SystemExit as e:
        code = e.code
    except Exception as e:
        code = _command_line_error(e)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a reader that left, or a closed stream
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    from indexer import main as indexer_main

    indexer_main()
