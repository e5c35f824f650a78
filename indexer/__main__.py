"""``python -m indexer`` runs the same CLI as the ``indexer`` command."""

from indexer.cli import main

if __name__ == "__main__":
    main()
