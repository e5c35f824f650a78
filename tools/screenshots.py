"""The screenshots of the web page in docs/ (shown in the README).

    python -m tools.screenshots [--corpus ../shared/corpus] [--out docs]

Indexes the shared corpus's text PDFs and EPUBs into a temporary index,
starts ``indexer serve`` on it and has headless Chromium (tools/browser.py)
take the search page for a query, a document's page and the search page at
a phone's width. Needs the ``serve`` and ``test`` extras and Debian's
chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.browser import chromium  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
QUERY = "solution"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "library.db"
        subprocess.run(
            [sys.executable, "-m", "indexer", "index", "--quiet", "--db", str(db)]
            + [str(args.corpus / "pdf" / "text"), str(args.corpus / "epub")],
            check=False,
            capture_output=True,
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "indexer", "serve", "--db", str(db), "--port", str(port)],
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.1)
            base = f"http://127.0.0.1:{port}/library/-"
            with chromium(1000, 1100) as driver:
                driver.get(f"{base}/search?q={QUERY}")
                driver.save_screenshot(str(args.out / "web-search.png"))
                link = driver.find_element("css selector", ".indexer-doc h2 a")
                link.click()
                driver.save_screenshot(str(args.out / "web-document.png"))
            with chromium(390, 844, phone=True) as driver:
                driver.get(f"{base}/search?q={QUERY}")
                driver.save_screenshot(str(args.out / "web-phone.png"))
        finally:
            server.terminate()
            server.wait()
    for name in ("web-search.png", "web-document.png", "web-phone.png"):
        print(args.out / name, f"{(args.out / name).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
