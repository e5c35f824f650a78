"""indexer: folders of documents into one searchable SQLite FTS5 file.

Library entry points: ``indexer.run.index`` and ``indexer.search.search``;
the command line (``indexer.cli``) is a thin layer over them.
"""

__version__ = "0.1.0"


def main() -> None:
    """The ``indexer`` command, the console script's entry point (and
    ``python -m indexer``'s). It does what must come first (``launch.start``:
    standard streams, and the fork server of an ``index`` run), then the CLI.
    The CLI is imported only when it is called: a worker forked by
    multiprocessing re-runs the console script first, and must not import
    typer and the CLI for nothing."""
    import sys

    from indexer import launch

    launch.start(sys.argv[1:])
    from indexer.cli import main as cli_main

    cli_main()
