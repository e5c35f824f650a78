"""``python -m indexer`` runs the same command as the installed ``indexer``."""

from indexer import main

if __name__ == "__main__":
    main()
