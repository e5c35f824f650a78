"""``indexer serve`` (indexer/serve.py) as a real process, and the page in a
real browser: headless Chromium (Debian's chromium and chromium-driver)
through selenium types a query, follows a hit and finds its PDF viewer at
the hit's page.

Needs ../shared/corpus for the browser test, and Chromium (both skipped
with the reason when missing, failures in CI)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from indexer import serve
from indexer.errors import UsageError
from tests.conftest import REPO, read_manifest, require_programs, run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``indexer serve`` in a session of its own, until stopped."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "indexer", "serve", "--db", str(db), "--port", str(self.port)]
            + list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.proc.communicate()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("serve did not start listening")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            _, err = self.proc.communicate()
            raise AssertionError("serve did not stop on Ctrl-C") from None
        return self.proc.returncode, err


def small_index(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir(exist_ok=True)
    (tmp_path / "docs" / "notes.txt").write_text("the lighthouse keeper's log\n")
    db = tmp_path / "library.db"
    proc = run_cli("index", tmp_path / "docs", "--db", db)
    assert proc.returncode == 0, proc.stderr
    return db


def test_serve_answers_on_localhost_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    server = Server(small_index(tmp_path))
    try:
        server.wait()
        with urllib.request.urlopen(server.url + "/library/-/search?q=lighthouse") as r:
            assert r.status == 200 and b"notes.txt" in r.read()
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(server.url + "/-/search?q=keeper")
        assert e.value.code == 302 and e.value.headers["location"] == "/library/-/search?q=keeper"
    finally:
        code, err = server.stop()
    assert code == 0, err
    assert f"Searching {tmp_path / 'library.db'} at {server.url}/library/-/search" in err
    assert "warning" not in err and "Traceback" not in err


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_a_host_other_machines_reach_gets_a_warning(tmp_path: Path) -> None:
    server = Server(small_index(tmp_path), "--host", "0.0.0.0")
    try:
        server.wait()
    finally:
        code, err = server.stop()
    assert code == 0
    assert "warning: serving on 0.0.0.0: anyone who can reach it" in err
    assert "auth plugin" in err


def test_what_stops_serve_is_said_in_one_line(tmp_path: Path) -> None:
    proc = run_cli("serve", "--db", tmp_path / "none.db", timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: no index at {tmp_path / 'none.db'}\n")
    db = small_index(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", "--db", db, "--port", port, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "choose another with --port" in proc.stderr and "Traceback" not in proc.stderr
    # without the extra: a shadowing package stands in for a missing Datasette
    shadow = tmp_path / "shadow" / "datasette"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named datasette')\n")
    proc = run_cli(
        "serve", "--db", db, env={"PYTHONPATH": f"{tmp_path / 'shadow'}{os.pathsep}{REPO}"}
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: indexer serve needs Datasette, which is not installed\n"
        "hint: pip install 'indexer[serve]'\n"
    )


def test_urls_and_hosts() -> None:
    assert serve.loopback("127.0.0.1") and serve.loopback("::1") and serve.loopback("localhost")
    assert not serve.loopback("0.0.0.0") and not serve.loopback("192.168.1.5")
    assert not serve.loopback("example.org")
    assert serve.search_url("0.0.0.0", 8001, Path("/x/my library.v2.db")) == (
        "http://127.0.0.1:8001/my+library~2Ev2/-/search"
    )
    assert serve.search_url("::1", 80, Path("a.db")) == "http://[::1]:80/a/-/search"
    with pytest.raises(UsageError, match="cannot listen on 203.0.113.9:8001"):
        serve.check_port("203.0.113.9", 8001)  # (an address this machine does not have)


# --- a real browser -------------------------------------------------------


@pytest.fixture(scope="module")
def browser_library(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_programs("chromium chromium-driver", "chromium", "chromedriver")
    top = tmp_path_factory.mktemp("browser")
    docs = top / "docs"
    docs.mkdir()
    (docs / "<img src=x onerror=alert('name')>.txt").write_text(
        "harmless words <script>alert('text')</script>\n"
    )
    db = top / "library.db"
    proc = run_cli("index", corpus / "pdf" / "text", corpus / "epub", docs, "--db", db)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    return db


@pytest.fixture(scope="module")
def server(browser_library: Path) -> Iterator[Server]:
    s = Server(browser_library)
    s.wait()
    yield s
    s.stop()


def has_results(driver: Any) -> bool:
    """(A WebDriverWait condition) the page shows results."""
    return bool(driver.find_elements(By.CLASS_NAME, "indexer-doc"))


def probe(corpus: Path) -> dict[str, str]:
    """A PDF's probe phrase, on a page well inside it."""
    rows = read_manifest(corpus / "MANIFEST.tsv")
    return next(
        r
        for r in rows
        if r["path"] == "pdf/text/pymupdf-mupdf_explored.pdf" and int(r["probe_page"]) > 1
    )


def test_a_browser_searches_follows_a_hit_and_sees_the_pdf_at_its_page(
    server: Server, corpus: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tools.browser import chromium, pdf_viewer_page

    row = probe(corpus)
    page = int(row["probe_page"])
    with chromium() as driver:
        driver.get(server.url + "/library/-/search")
        box = driver.find_element(By.ID, "indexer-q")
        box.send_keys(f'"{row["probe_phrase"]}"' + Keys.ENTER)
        WebDriverWait(driver, 15).until(
            ec.presence_of_element_located((By.CLASS_NAME, "indexer-doc"))
        )
        assert "q=%22" in driver.current_url  # the query is in the URL: a bookmark
        first = driver.find_element(By.CSS_SELECTOR, ".indexer-doc")
        assert "mupdf_explored" in first.text
        link = first.find_element(By.CSS_SELECTOR, "a.indexer-page")
        assert link.get_attribute("href").endswith(f"#page={page}")
        driver.save_screenshot(str(tmp_path / "search.png"))
        link.click()
        shown = pdf_viewer_page(driver, expect=page)
        assert shown is not None, "no PDF viewer opened"
        assert shown[0] == page and shown[1] == 285
        # the stored text of the same page, the phrase marked
        driver.back()
        WebDriverWait(driver, 15).until(
            ec.presence_of_element_located((By.CLASS_NAME, "indexer-doc"))
        )
        driver.find_element(By.CSS_SELECTOR, ".indexer-doc a.indexer-text-link").click()
        WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.TAG_NAME, "mark")))
        marks = " ".join(m.text for m in driver.find_elements(By.TAG_NAME, "mark"))
        assert row["probe_phrase"].split()[0].lower() in marks.lower()
        assert f"{page} of 285" in driver.find_element(By.TAG_NAME, "h2").text


def test_the_page_works_without_javascript_at_a_phone_width(server: Server) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tools.browser import chromium

    with chromium(390, 844, javascript=False, phone=True) as driver:
        driver.get(server.url + "/library/-/search")
        driver.find_element(By.ID, "indexer-q").send_keys("solution" + Keys.ENTER)
        WebDriverWait(driver, 15).until(
            ec.presence_of_element_located((By.CLASS_NAME, "indexer-doc"))
        )
        docs = driver.find_elements(By.CSS_SELECTOR, ".indexer-doc")
        assert docs, driver.page_source[-2000:]
        width, viewport = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert viewport == 390 and width <= viewport  # nothing wider than the phone
        # the filters open and narrow without a script: <details> and a form
        driver.find_element(By.CSS_SELECTOR, ".indexer-filters summary").send_keys(Keys.ENTER)
        driver.find_element(By.CSS_SELECTOR, "input[name=format][value=epub]").send_keys(Keys.SPACE)
        driver.find_element(By.ID, "indexer-q").send_keys(Keys.ENTER)
        WebDriverWait(driver, 15).until(ec.url_contains("format=epub"))
        kinds = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".indexer-kind")}
        assert kinds == {"epub"}
        assert "format=epub" in driver.current_url


def test_markup_in_names_and_text_is_shown_not_run(server: Server) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tools.browser import chromium

    with chromium() as driver:
        driver.get(server.url + "/library/-/search?q=harmless")
        with pytest.raises(TimeoutException):
            WebDriverWait(driver, 1).until(ec.alert_is_present())
        text = driver.find_element(By.CSS_SELECTOR, ".indexer-doc").text
        assert "<img src=x onerror=alert('name')>.txt" in text
        assert "<script>alert('text')</script>" in text
        assert not driver.find_elements(By.CSS_SELECTOR, ".indexer-doc img, .indexer-doc script")
