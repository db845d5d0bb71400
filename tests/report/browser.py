"""A real headless Chromium (Debian's ``chromium``), driven over the DevTools protocol with ``websockets``.

Each :class:`Browser` runs its own Chromium with a fresh profile directory, on a DevTools port the browser
picks itself (read back from its ``DevToolsActivePort`` file), and stops it by its process group, which
it created. Only ``file://`` pages are opened; background networking is off.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.waiting import wait_for

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--remote-debugging-port=0")
TIMEOUT = 60.0


def chromium() -> str:
    """The Chromium binary, or a skip naming what to install."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return found


class Browser:
    """One Chromium and a DevTools connection to its first page."""

    def __init__(self, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self._log = (profile.parent / "chromium.log").open("wb")
        self.process = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._connection = contextlib.ExitStack()
        try:
            self.socket = self._connection.enter_context(self._connect(profile))
            for domain in ("Runtime", "Log", "Page"):
                self.call(f"{domain}.enable")
        except BaseException:
            self._connection.close()
            self._stop()
            raise

    def _connect(self, profile: Path) -> ClientConnection:
        active = profile / "DevToolsActivePort"
        wait_for(lambda: self.process.poll() is not None or (active.exists() and active.read_text().count("\n")),
                 TIMEOUT, "Chromium to write DevToolsActivePort")
        if self.process.poll() is not None:
            pytest.fail(f"chromium exited with {self.process.returncode}")
        port = int(active.read_text().split("\n")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as answer:
            targets = json.load(answer)
        page = next(target for target in targets if target["type"] == "page")
        return connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=TIMEOUT)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept in order."""
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=TIMEOUT))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def wait_event(self, method: str) -> dict[str, Any]:
        """The next event named ``method`` (earlier ones are kept in :attr:`events`)."""
        while True:
            message = json.loads(self.socket.recv(timeout=TIMEOUT))
            self.events.append(message)
            if message.get("method") == method:
                return message

    def open(self, page: Path, width: int = 1280, height: int = 900) -> None:
        """Load a local page and wait for its load event."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.call("Page.navigate", url=page.resolve().as_uri())
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (CSP violations, failed loads) so far."""
        self.evaluate("0")
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}"
                             f" {params['exceptionDetails'].get('exception', {}).get('description', '')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return found

    def screenshot(self, full_page: bool = True) -> bytes:
        """A PNG of the page (the whole page by default)."""
        result = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        return base64.b64decode(result["data"])

    def close(self) -> None:
        """Close the connection and stop the browser's process group (which this object started)."""
        try:
            self._connection.close()
        finally:
            self._stop()

    def _stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process.wait()
        self._log.close()
