"""``indexer serve``: Datasette with the search page, started with the right settings.

Why this module exists: the web page is a Datasette plugin (``indexer/web``),
so ``datasette library.db`` shows it too; this is the thin wrapper that
checks what a user gets wrong before Datasette starts (the extra not
installed, no index at ``--db``, the port taken, a host other machines
reach) and says it in one line, then runs Datasette's own ``serve``. The
index is opened as Datasette opens a mutable file: read-only connections
(``mode=ro``), so a cron run can write to it while it is served, and each
page shows what the last committed transaction holds.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
import webbrowser
from pathlib import Path

from indexer import store
from indexer.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
NO_AUTH_WARNING = (
    "warning: serving on {host}: anyone who can reach it can search and download every "
    "indexed document, and there is no login; add a Datasette auth plugin "
    "(README, Sharing the page)"
)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def search_url(host: str, port: int, db: Path) -> str:
    """Where the search page of ``db`` is (Datasette names a database by its
    file's stem, tilde-encoded in URLs)."""
    from datasette.utils import tilde_encode

    shown = DEFAULT_HOST if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/{tilde_encode(db.stem)}/-/search"


def check_port(host: str, port: int) -> None:
    """A one-line error now for a port that is taken, rather than uvicorn's
    log lines after start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise UsageError(
                f"cannot listen on {host}:{port}: {e.strerror or e}",
                hint="choose another with --port" if port else None,
            ) from None


def serve(
    db: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
) -> None:
    """Serve ``db`` until interrupted."""
    try:
        from datasette.cli import cli as datasette_cli
    except ImportError:
        raise UsageError(
            "indexer serve needs Datasette, which is not installed",
            hint="pip install 'indexer[serve]'",
        ) from None
    store.connect(db).close()  # (no index there, or not one: its one-line reason)
    check_port(host, port)
    url = search_url(host, port, db)
    if not loopback(host):
        print(NO_AUTH_WARNING.format(host=host), file=sys.stderr)
    print(f"Searching {db} at {url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    if open_browser:
        threading.Thread(target=_open_when_up, args=(host, port, url), daemon=True).start()
    args = ["serve", str(db), "--host", host, "--port", str(port)]
    # standalone_mode: click's own handling of its errors and Ctrl-C
    datasette_cli.main(args, prog_name="indexer serve", standalone_mode=True)


def _open_when_up(host: str, port: int, url: str, wait: float = 20.0) -> None:
    connect_to = DEFAULT_HOST if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            socket.create_connection((connect_to, port), timeout=0.5).close()
        except OSError:
            time.sleep(0.1)
            continue
        webbrowser.open(url)
        return
