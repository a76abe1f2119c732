"""A small Chrome DevTools Protocol driver for the ComfyUI frontend (headless Chromium, websocket-client only).

`Browser(url).start()` launches chromium-headless-shell with a temporary profile, opens `url` and waits until
the frontend has set up `window.app`. `evaluate(js)` runs JavaScript in the page (awaiting promises) and
returns the value as JSON; `screenshot(path)` writes a PNG; `close()` ends the browser and its child
processes (they share one process group) and removes the profile. Install the browser with
scripts/install_browser.sh.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import websocket

logger = logging.getLogger(__name__)

CHROMIUM_CANDIDATES = (
    # The real binary: /usr/bin/chromium-headless-shell is a sh wrapper, and killing a wrapper can leave the browser.
    "/usr/lib/chromium/chromium-headless-shell",
)
APP_READY_JS = "!!(window.app && window.app.vueAppReady && window.app.graph && window.app.canvas && window.LiteGraph)"
# Run before the frontend's own scripts: hide the "Introducing Nodes 2.0" banner (a localStorage flag).
QUIET_FRONTEND_JS = "localStorage.setItem('vueNodesBannerDismissed', 'true');"


class BrowserError(RuntimeError):
    pass


class JavaScriptError(BrowserError):
    pass


def find_chromium() -> Path:
    """The headless Chromium binary: $CHROMIUM_BIN, else the Debian chromium-headless-shell package's."""
    candidates = [os.environ["CHROMIUM_BIN"]] if os.environ.get("CHROMIUM_BIN") else list(CHROMIUM_CANDIDATES)
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise BrowserError(
        f"headless Chromium not found (looked for {', '.join(candidates)}); "
        "install it with scripts/install_browser.sh or point $CHROMIUM_BIN at a chromium-headless-shell binary"
    )


class Browser:
    """One headless Chromium with one page, driven over CDP. Use as a context manager or call close()."""

    def __init__(
        self,
        url: str,
        width: int = 1600,
        height: int = 1000,
        timeout: float = 30.0,
        init_scripts: tuple[str, ...] = (QUIET_FRONTEND_JS,),
    ):
        self.url = url
        self.init_scripts = init_scripts
        self.width = width
        self.height = height
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.profile: Path | None = None
        self.ws: websocket.WebSocket | None = None
        self.console: list[str] = []  # console messages and uncaught exceptions, for failure reports
        self._ids = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> Browser:
        binary = find_chromium()
        self.profile = Path(tempfile.mkdtemp(prefix="comfy-chromium-"))
        command = [
            str(binary), "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
            f"--window-size={self.width},{self.height}", f"--user-data-dir={self.profile}",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
        ]  # fmt: skip
        log_path = self.profile / "chromium.log"
        with open(log_path, "wb") as log:
            # Own process group: close() signals the group, so renderer/GPU/zygote children go with the browser.
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        logger.info("chromium pid %d, profile %s", self.process.pid, self.profile)
        try:
            port = self._wait_for_devtools_port()
            self._connect(port)
            self.navigate(self.url)
        except BaseException:
            self.close()
            raise
        return self

    def _wait_for_devtools_port(self) -> int:
        # --remote-debugging-port=0 lets Chromium pick a free port and write it to DevToolsActivePort: no races.
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited with {self.process.returncode}:\n{self._log_tail()}")
            if port_file.exists():
                lines = port_file.read_text().splitlines()
                if lines and lines[0].strip().isdigit():
                    return int(lines[0])
            time.sleep(0.05)
        raise BrowserError(f"chromium wrote no DevToolsActivePort within {self.timeout} s:\n{self._log_tail()}")

    def _connect(self, port: int) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                    targets = json.loads(response.read())
                pages = [target for target in targets if target.get("type") == "page"]
                if pages:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise BrowserError("chromium lists no page target")
            time.sleep(0.05)
        # suppress_origin: Chromium refuses websocket clients that send an Origin it was not told to allow.
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=self.timeout, suppress_origin=True
        )
        for method in ("Page.enable", "Runtime.enable"):
            self.send(method)
        for script in self.init_scripts:
            self.send("Page.addScriptToEvaluateOnNewDocument", source=script)

    def navigate(self, url: str, ready_js: str = APP_READY_JS) -> None:
        """Open `url` and wait until `ready_js` is true (by default: the ComfyUI frontend's app is set up)."""
        self.send("Page.navigate", url=url)
        self.wait_for(ready_js, timeout=self.timeout, what="the ComfyUI frontend (window.app)")

    def close(self) -> None:
        """End the browser and everything it started. Safe to call twice."""
        if self.ws is not None:
            try:
                self.send("Browser.close", timeout=5)
            except Exception:  # the browser may already be gone; the kill below is what counts
                pass
            try:
                self.ws.close()
            except Exception:
                pass
            self.ws = None
        if self.process is not None:
            self._kill_group()
            self.process = None
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    def _kill_group(self) -> None:
        pid = self.process.pid
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)  # the group id is the browser's pid (start_new_session)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _group_alive(pid):
                time.sleep(0.05)
            if not _group_alive(pid):
                break
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        logger.info("chromium pid %d ended", pid)

    def __enter__(self) -> Browser:
        return self.start() if self.process is None else self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- CDP ---------------------------------------------------------------------------------------------------

    def send(self, method: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        """Send one CDP command and return its result; events that arrive meanwhile are recorded."""
        if self.ws is None:
            raise BrowserError("the browser is not connected")
        message_id = next(self._ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no CDP answer to {method} within {timeout or self.timeout} s")
            self.ws.settimeout(remaining)
            try:
                message = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if message.get("id") == message_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._on_event(message)

    def _on_event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")

    def evaluate(self, js: str, await_promise: bool = True, timeout: float | None = None) -> Any:
        """Evaluate a JavaScript expression in the page and return its value (JSON-serialisable values only).

        Wrap statements in an async arrow function: `(async () => { ...; return x; })()`."""
        result = self.send(
            "Runtime.evaluate",
            timeout=timeout,
            expression=js,
            awaitPromise=await_promise,
            returnByValue=True,
            userGesture=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise JavaScriptError(f"{description}\n--- while evaluating:\n{js[:2000]}")
        return result.get("result", {}).get("value")

    def wait_for(self, js: str, timeout: float = 10.0, interval: float = 0.05, what: str | None = None) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(js)
            except JavaScriptError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                console = "\n".join(self.console[-20:])
                raise BrowserError(f"timed out after {timeout} s waiting for {what or js}\nconsole:\n{console}")
            time.sleep(interval)

    def screenshot(self, path: str | os.PathLike) -> Path:
        """Write a PNG of the page to `path`."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def _log_tail(self) -> str:
        log_path = self.profile / "chromium.log" if self.profile else None
        return log_path.read_text(errors="replace")[-4000:] if log_path and log_path.exists() else ""


def open_frontend(url: str, **browser_args: Any) -> Browser:
    """A browser on the ComfyUI frontend at `url`, ready to drive through `window.app`.

    Marks the tutorial as done first: on a fresh user directory a Templates dialog would cover the canvas."""
    request = urllib.request.Request(
        url + "/api/settings/Comfy.TutorialCompleted", data=b"true", method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise BrowserError(f"POST /api/settings/Comfy.TutorialCompleted answered {response.status}")
    return Browser(url, **browser_args).start()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
