"""indexer/launch.py: what the command does before the CLI is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.launch import may_extract
from tests.conftest import FIXTURES, REPO


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["index", "docs"], True),
        (["index", "docs", "--db", "x.db", "--workers", "1"], True),
        (["index", "docs", "--dry-run"], False),
        (["index", "--help"], False),
        (["index", "-h"], False),
        (["search", "index"], False),  # "index" as a query word
        (["config"], False),
        ([], False),
    ],
)
def test_may_extract(argv: list[str], expected: bool) -> None:
    assert may_extract(argv) is expected


# Run as the console script runs: indexer.main(). An import hook notes whether
# a fork server (a child process running multiprocessing.forkserver) exists at
# the moment the CLI module is imported.
WATCH = """
import atexit, importlib.abc, sys
import psutil
import time
seen = {}
def is_forkserver(child):
    # a child forked a moment ago may not have run exec yet: it shows our
    # command line, or none while exec runs, so wait for its own
    mine = psutil.Process().cmdline()
    deadline = time.monotonic() + 5
    while True:
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            return False
        if (cmdline and cmdline != mine) or time.monotonic() > deadline:
            return "multiprocessing.forkserver" in " ".join(cmdline)
        time.sleep(0.01)
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "indexer.cli" and "cli" not in seen:
            seen["cli"] = any(is_forkserver(c) for c in psutil.Process().children())
        return None
sys.meta_path.insert(0, Watch())
atexit.register(lambda: print("fork server before the CLI:", seen.get("cli")))
sys.argv = ["indexer", *sys.argv[1:]]
from indexer import main
main()
"""


@pytest.mark.parametrize(
    ("args", "started"),
    [
        (["index", str(FIXTURES / "good"), "-q"], True),
        (["index", str(FIXTURES / "good"), "-q", "--dry-run"], False),
        (["config"], False),
    ],
)
def test_an_index_run_starts_the_fork_server_before_the_cli(
    args: list[str], started: bool, tmp_path: Path
) -> None:
    """The fork server imports the extractors (pymupdf) while the main process
    imports the CLI, instead of after it; other commands never start it."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            WATCH,
            *args,
            *(["--db", str(tmp_path / "i.db")] * (args[0] != "config")),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"fork server before the CLI: {started}"


def test_child_interpreters_do_not_import_from_the_current_directory(tmp_path: Path) -> None:
    """Run from a folder holding an ``indexer`` package (a folder being
    indexed, an old checkout), as the installed script runs: the fork server,
    started with ``python -c``, would put that folder first on its path and
    import it instead of the real package."""
    work = tmp_path / "work"
    (work / "indexer").mkdir(parents=True)
    marker = tmp_path / "shadow-imported"
    (work / "indexer" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise ImportError('not the real indexer')\n"
    )
    script = tmp_path / "indexer-script.py"  # what pip writes to bin/indexer
    script.write_text(
        "import sys\nfrom indexer import main\nif __name__ == '__main__':\n    sys.exit(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "index",
            str(FIXTURES / "good"),
            "--db",
            str(tmp_path / "i.db"),
            "-q",
        ],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        cwd=work,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
