"""indexer: folders of documents into one searchable SQLite FTS5 file.

Library entry points: ``indexer.run.index`` and ``indexer.search.search``;
the command line (``indexer.cli``) is a thin layer over them.
"""

__version__ = "0.1.0"


def main() -> None:
    """The ``indexer`` command, the console script's entry point. The CLI is
    imported only when it is called: a worker forked by multiprocessing re-runs
    the console script first, and must not import typer and the CLI for nothing."""
    from indexer.cli import main as cli_main

    cli_main()
