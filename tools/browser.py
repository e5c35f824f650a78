"""A real browser for the web page's tests and screenshots: Debian's Chromium
driven through selenium and ChromeDriver, headless.

    from tools.browser import chromium, pdf_viewer_page

Why this module exists: the browser test (tests/test_serve.py) and the
screenshots in docs/ (tools/screenshots.py) start the same browser the same
way. ``pdf_viewer_page`` reads the page number Chromium's own PDF viewer
shows: the viewer is an extension page in a frame of its own, out of
WebDriver's reach, so it is asked through the DevTools protocol, on the
target ChromeDriver lists for it (selenium brings ``websocket-client``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PDF_VIEWER = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"
# the viewer's page box: <pdf-viewer> > <viewer-toolbar> > <viewer-page-selector> > <input>
_PAGE_SHOWN = """(() => {
  const viewer = document.querySelector('pdf-viewer');
  const toolbar = viewer && viewer.shadowRoot.querySelector('viewer-toolbar');
  const selector = toolbar && toolbar.shadowRoot.querySelector('viewer-page-selector');
  const box = selector && selector.shadowRoot.querySelector('input');
  return box ? [box.value, selector.docLength] : null;
})()"""


@contextmanager
def chromium(
    width: int = 1100, height: int = 1300, *, javascript: bool = True, phone: bool = False
) -> Iterator[Any]:
    """A headless Chromium (a WebDriver); ``phone``: a phone's screen of
    ``width`` CSS pixels (desktop windows are not made narrower than ~500;
    a phone's page grows wider than its screen where something overflows,
    which ``window.innerWidth`` then says). Without ``javascript``,
    WebDriver's clicks wait forever: use the keyboard (send_keys)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    if not javascript:
        options.add_argument("--blink-settings=scriptEnabled=false")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    if phone:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        yield driver
    finally:
        driver.quit()


def pdf_viewer_page(
    driver: Any, expect: int | None = None, wait: float = 15.0
) -> tuple[int, int] | None:
    """The page Chromium's PDF viewer shows and the document's page count;
    None where no PDF viewer opened within ``wait`` seconds. ``expect``: wait
    as long for the viewer to show that page (it opens at page 1, then goes
    to the page the URL names), and say what it shows at the end."""
    import websocket

    last = None
    address = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
    end = time.monotonic() + wait
    while time.monotonic() < end:
        with urllib.request.urlopen(f"http://{address}/json/list", timeout=5) as r:
            targets = json.load(r)
        for target in targets:
            if not target["url"].startswith(PDF_VIEWER):
                continue
            ws = websocket.create_connection(
                target["webSocketDebuggerUrl"], suppress_origin=True, timeout=5
            )
            try:
                ws.send(
                    json.dumps(
                        {
                            "id": 1,
                            "method": "Runtime.evaluate",
                            "params": {"expression": _PAGE_SHOWN, "returnByValue": True},
                        }
                    )
                )
                while (reply := json.loads(ws.recv())).get("id") != 1:
                    pass
            finally:
                ws.close()
            shown = reply.get("result", {}).get("result", {}).get("value")
            if shown and shown[0] and shown[1]:
                last = int(shown[0]), int(shown[1])
                if expect is None or last[0] == expect:
                    return last
        time.sleep(0.2)
    return last
