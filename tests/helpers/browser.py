"""Headless Chromium driven over the DevTools protocol, for the browser test and bench/js_sampler
(test-only code: not part of the product package).

Why no framework: Selenium needs a matching chromedriver and Playwright/Puppeteer download their
own browser. Chromium's ``--remote-debugging-pipe`` speaks the DevTools protocol as NUL-separated
JSON messages on file descriptors 3 (commands in) and 4 (replies and events out), so a pipe pair
and ``json`` are the whole client: no port, no websocket library, nothing fetched.

    with Browser() as browser:
        page = browser.open(Path("reports/sampler.html").resolve().as_uri())
        page.click("#generate")
        print(page.evaluate("document.querySelector('#output').textContent"))
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

log = logging.getLogger(__name__)

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--disable-default-apps", "--disable-extensions",
         "--mute-audio", "--remote-debugging-pipe")


_TRAMPOLINE = """
import fcntl, os, sys
r, w = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(r, 3)
os.dup2(w, 4)
os.execvp(sys.argv[3], sys.argv[3:])
"""


class BrowserError(RuntimeError):
    """Chromium could not start, a DevTools command failed, or the page threw."""


def find_chromium() -> str | None:
    """``$KOPITIAM_CHROMIUM`` if set, else the first Chromium/Chrome on PATH, else None."""
    explicit = os.environ.get("KOPITIAM_CHROMIUM")
    if explicit:
        return shutil.which(explicit) or explicit
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium process with a fresh profile; a context manager."""

    def __init__(self, executable: str | None = None, timeout: float = 120.0) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError(f"no Chromium found (tried {', '.join(CANDIDATES)}; or set KOPITIAM_CHROMIUM): "
                               "install it with `apt-get install chromium`")
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="kopitiam-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Chromium wants commands on fd 3 and writes replies on fd 4. A fresh Python (no threads)
        # moves the pipe ends there and execs it: preexec_fn is unsafe in a threaded process such as
        # one running TensorFlow, and /bin/sh (dash) cannot redirect from fds above 9.
        cmd = [sys.executable, "-c", _TRAMPOLINE, str(to_child_r), str(from_child_w), self.executable, *FLAGS,
               f"--user-data-dir={self._profile.name}", "about:blank"]
        self.process = subprocess.Popen(cmd, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    # -- protocol -----------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no reply from Chromium within {self.timeout:.0f} s")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed the DevTools pipe (exit code {self.process.poll()})")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            time.sleep(0.5)
            raise BrowserError(f"Chromium ({self.executable}) is not running (exit code {self.process.poll()}): "
                               "run it by hand with --headless --no-sandbox to see why") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        for i, ev in enumerate(self.events):
            if ev.get("method") == method and ev.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method and ev.get("sessionId") == session:
                return ev
            self.events.append(ev)

    # -- pages --------------------------------------------------------------------------------
    def open(self, url: str) -> "Page":
        """A new tab showing ``url``, returned once its load event has fired."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_event("Page.loadEventFired", session)
        return Page(self, session)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("Browser.close", timeout=10)
            except (BrowserError, OSError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One tab: evaluate JavaScript, click elements with real mouse events, read page errors."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """The JSON value of ``expression`` (promises awaited); a thrown error raises BrowserError."""
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                        "returnByValue": True}, self.session, timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page threw: {text}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """Press and release the left mouse button over the centre of ``selector``."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
                            " e.scrollIntoView(); const r = e.getBoundingClientRect();"
                            f" return [r.left + r.width / 2, r.top + r.height / 2]; }})()")
        if box is None:
            raise BrowserError(f"no element matches {selector!r}")
        for kind in ("mousePressed", "mouseReleased"):
            self.browser.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                           "clickCount": 1}, self.session)

    def set_file(self, selector: str, path: str) -> None:
        """Choose ``path`` in the file input ``selector``, as the user's file dialog would."""
        root = self.browser.send("DOM.getDocument", {"depth": 0}, self.session)["root"]["nodeId"]
        node = self.browser.send("DOM.querySelector", {"nodeId": root, "selector": selector}, self.session)["nodeId"]
        if not node:
            raise BrowserError(f"no element matches {selector!r}")
        self.browser.send("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": node}, self.session)

    def errors(self) -> list[str]:
        """Uncaught exceptions the page reported so far."""
        return [ev["params"]["exceptionDetails"].get("exception", {}).get("description", "")
                or ev["params"]["exceptionDetails"].get("text", "")
                for ev in self.browser.events
                if ev.get("method") == "Runtime.exceptionThrown" and ev.get("sessionId") == self.session]
