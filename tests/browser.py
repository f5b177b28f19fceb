"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

For tests of the pages we write (``review.html``): load a page from disk, collect its console errors,
uncaught exceptions and failed loads, evaluate JavaScript in it and take screenshots. The protocol
messages are JSON, NUL-terminated, on file descriptors 3 (to the browser) and 4 (from it), so no port,
no websocket and no extra package is needed.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Flags for a quiet, sandbox-free, offline headless browser (CI containers run as root).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--mute-audio", "--remote-debugging-pipe")


def find_chromium() -> str | None:
    """The Chromium executable (``RENDER_TEST_CHROMIUM`` overrides), or None when absent."""
    override = os.environ.get("RENDER_TEST_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    pass


@dataclass
class PageLoad:
    """What happened while a page loaded: console errors, uncaught exceptions, failed loads (messages)."""

    session: str
    errors: list[str] = field(default_factory=list)


class Browser:
    """One browser process; :meth:`open` gives each page its own tab."""

    def __init__(self, executable: str, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="render-test-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # the child reads commands on fd 3 and writes replies on fd 4
            reads, writes = os.dup(to_browser_r), os.dup(from_browser_w)  # above 4: dup2 cannot clobber them
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        self._process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire_fds,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------ protocol
    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its reply (events that arrive meanwhile are queued)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self._events.append(reply)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("the browser did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise BrowserError("the browser closed the pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def _wait_event(self, method: str, session: str, deadline: float) -> None:
        while True:
            for event in self._events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self._events.remove(event)
                    return
            self._events.append(self._receive(deadline))

    # ------------------------------------------------------------------------------ pages
    def open(self, path: Path, settle_s: float = 0.3) -> PageLoad:
        """Open a file in a new tab, wait for its load event (plus ``settle_s``), return what went wrong."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.send(domain, session=session)
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=session)
        self._wait_event("Page.loadEventFired", session, time.monotonic() + self.timeout_s)
        time.sleep(settle_s)
        self.evaluate(session, "0")  # drains the events that arrived while settling
        return PageLoad(session=session, errors=self._errors(session))

    def _errors(self, session: str) -> list[str]:
        errors, keep = [], []
        for event in self._events:
            if event.get("sessionId") != session:
                keep.append(event)
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                words = (str(a.get("value", a.get("description", ""))) for a in params["args"])
                errors.append("console: " + " ".join(words))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append("exception: " + str(details.get("exception", {}).get("description", details.get("text"))))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        self._events = keep
        return errors

    def evaluate(self, session: str, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=session)
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def screenshot(self, session: str, path: Path, width: int = 1100) -> Path:
        """A PNG of the whole page at ``width`` CSS pixels."""
        height = int(self.evaluate(session, "document.documentElement.scrollHeight") or 800)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": min(height, 6000), "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)


#: JavaScript: every <audio> element's source and state once its metadata loaded (or failed).
AUDIO_STATES_JS = """
Promise.all(Array.from(document.querySelectorAll('audio')).map(function (a) {
  return new Promise(function (resolve) {
    function report(kind) { resolve({src: a.currentSrc || a.src, state: kind, duration: a.duration,
                                     error: a.error ? a.error.code : null}); }
    if (a.error) { report('error'); return; }
    if (a.readyState >= 1) { report('loaded'); return; }
    a.addEventListener('loadedmetadata', function () { report('loaded'); });
    a.addEventListener('error', function () { report('error'); });
    setTimeout(function () { report('timeout'); }, 10000);
    a.load();
  });
}))
"""
