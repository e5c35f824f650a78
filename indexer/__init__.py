"""indexer: folders of documents into one searchable SQLite FTS5 file.

Library entry points: ``indexer.run.index`` and ``indexer.search.search``;
the command line (``indexer.cli``) is a thin layer over them.
"""

__version__ = "0.1.0"
