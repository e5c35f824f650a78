"""What every command of the command line shares: the common options, and
how a failure becomes one ``error:`` line (+ ``hint:``) and an exit status.

Why this module exists: the commands live in two modules (``cli.py``: the
index run and the index's state; ``cli_read.py``: search, show, open), and
both need these without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from indexer.errors import ExitStatus, IndexerError

MAX_HITS = 2**62  # SQLite's integers are 64-bit: a larger --offset was an OverflowError

DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="The index file. [env: INDEXER_DB; default: index.db]"),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file. [env: INDEXER_CONFIG]"),
]


def fail(e: IndexerError) -> NoReturn:
    from indexer.progress import printable  # (a message may quote a file name or a query)

    typer.echo(f"error: {printable(e.message)}", err=True)
    if e.hint:
        typer.echo(f"hint: {printable(e.hint)}", err=True)
    raise typer.Exit(code=int(e.exit_status))


def internal(e: BaseException) -> NoReturn:
    if os.environ.get("INDEXER_DEBUG") == "1":
        raise e
    from indexer.progress import printable

    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    typer.echo(f"error: internal error: {type(e).__name__}: {printable(msg)}", err=True)
    typer.echo("hint: run again with INDEXER_DEBUG=1 for the traceback, and report it", err=True)
    raise typer.Exit(code=int(ExitStatus.FATAL))


def typed_text(arg: str) -> str:
    """A command-line word as the text the user typed. Under a locale that is
    not UTF-8, Python hands over the bytes it could not decode as lone
    surrogates, which SQLite cannot take; terminals send UTF-8, so decode them
    as that (a file name, by contrast, stays as it is: it names bytes)."""
    try:
        arg.encode("utf-8")
        return arg
    except UnicodeEncodeError:
        from indexer.names import raw_bytes

        return raw_bytes(arg).decode("utf-8", "replace")
