"""What the fork server imports before it forks the workers and the writer.

Why this module exists: it is the fork server's only preload
(``launch.PRELOAD``), so every process forked from the server finds these
imported instead of importing them itself: the PDF extractor (pymupdf, the slow
one), the worker module whose task function the workers run, loky's worker loop,
psutil (each worker's memory cap and watchdog), and the store and the messages
the writer needs (about 10 ms of imports it would otherwise make while a run
with nothing to extract waits for it; the writer's own module is left out: in
the preload it delayed the first workers more than it saved). The objects these
imports made are then frozen (``gc.freeze``): the garbage collector of a forked
process skips them. loky collects garbage after each worker's first task, to
measure the worker's memory before any leak, and that collection went over every
one of them: 10-20 ms per worker. Skipped, their memory pages also stay shared
with the server instead of being written to by the collector (copy on write).
"""

import gc

import loky.process_executor  # noqa: F401
import psutil  # noqa: F401

import indexer.extract.pdf  # noqa: F401
import indexer.messages  # noqa: F401
import indexer.repair  # noqa: F401
import indexer.store  # noqa: F401
import indexer.worker  # noqa: F401

gc.freeze()
