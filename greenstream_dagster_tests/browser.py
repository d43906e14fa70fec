"""Headless Chromium driven over the DevTools protocol, for the UI test.

Debian's `chromium` package rather than Playwright: Playwright downloads its own
browser from the internet, the distribution package only needs apt
(`scripts/install-chromium`). The flags keep Chromium off the network: without
them it stalls on a closed one (sync, component updates, QUIC probes).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from websockets.sync.client import connect

__all__ = ["Browser", "find_chromium", "chromium_unavailable_reason"]

OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """GREENSTREAM_CHROMIUM if set, else the first Chromium on PATH."""
    configured = os.environ.get("GREENSTREAM_CHROMIUM")
    if configured:
        return shutil.which(configured)
    return next(filter(None, map(shutil.which, CANDIDATES)), None)


def chromium_unavailable_reason() -> str:
    return f"no Chromium on PATH (looked for $GREENSTREAM_CHROMIUM, {', '.join(CANDIDATES)})"


class Browser:
    """One headless Chromium with one tab, a fresh profile and a fixed viewport."""

    def __init__(self, executable: str, profile_dir: Path, width: int = 1400, height: int = 900):
        self.executable, self.profile_dir = executable, Path(profile_dir)
        self.width, self.height = width, height
        self._ids = itertools.count(1)
        self._process: subprocess.Popen | None = None
        self._socket = None

    def __enter__(self) -> Browser:
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        (self.profile_dir / "DevToolsActivePort").unlink(missing_ok=True)  # a reused profile's old port
        self._log = open(self.profile_dir.parent / "chromium.log", "wb")
        self._process = subprocess.Popen(
            [self.executable, *OFFLINE_FLAGS, f"--user-data-dir={self.profile_dir}",
             f"--window-size={self.width},{self.height}", "--remote-debugging-port=0", "about:blank"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self._socket = connect(self._page_socket_url(timeout=30), max_size=None, open_timeout=10)
            self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._process is not None and self._process.poll() is None:
            # Chromium forks renderer and helper processes into its own session: end them all.
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._log.close()

    def _page_socket_url(self, timeout: float) -> str:
        # With port 0 Chromium picks a free port and writes it into the profile.
        port_file = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Chromium exited with code {self._process.returncode}: {self._log_tail()}")
            if port_file.exists() and port_file.read_text().strip():
                port = port_file.read_text().split()[0]
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                        pages = [t for t in json.load(response) if t["type"] == "page"]
                except urllib.error.URLError:
                    pages = []  # the file is written just before the port listens
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise TimeoutError(f"Chromium's DevTools port did not appear within {timeout:.0f} s: {self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result (events in between are dropped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=30))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def double_click(self, x: int, y: int) -> None:
        for clicks in (1, 2):
            for kind in ("mousePressed", "mouseReleased"):
                self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=clicks)

    def open(self, url: str, expect: Iterable[str | re.Pattern], timeout: float = 30, settle: float = 1.0) -> str:
        """Load url and wait until the page shows every expected text; return the page's text.

        `settle` gives the page a moment after the texts appear, for the data that
        follows them (graph edges, status tags) to be drawn before a screenshot.
        """
        # A mark on the old document: its text must not pass for the new page's.
        self.evaluate("window.__leaving = true")
        navigation = self.call("Page.navigate", url=url)
        if navigation.get("errorText"):
            raise RuntimeError(f"{url}: {navigation['errorText']}")
        deadline = time.monotonic() + timeout
        while self.evaluate("window.__leaving === true") and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.wait_for(expect, max(deadline - time.monotonic(), 0), settle, what=url)

    def wait_for(self, expect: Iterable[str | re.Pattern], timeout: float = 30, settle: float = 1.0,
                 what: str = "the page") -> str:
        """Wait until the page shows every expected text (a string or a pattern); return the page's text."""
        expected = list(expect)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if not _missing(expected, text):
                time.sleep(settle)
                return self.text()
            time.sleep(0.25)
        missing = [getattr(e, "pattern", e) for e in _missing(expected, text)]
        raise TimeoutError(f"{what} did not show {missing} within {timeout:.0f} s; the page shows:\n{text[:2000]}")

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data


def _missing(expected: list[str | re.Pattern], text: str) -> list[str | re.Pattern]:
    return [e for e in expected if (e.search(text) is None if isinstance(e, re.Pattern) else e not in text)]
