"""A small W3C WebDriver client for tests: drives Debian's headless Chromium
through chromedriver (the chromium-driver package) with plain HTTP calls on
127.0.0.1, no selenium. `Browser.start()` runs chromedriver on a free port
(waiting for its readiness line), opens one session with downloads going to a
directory of its own; `stop()` ends the session and the chromedriver process
(by pid)."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from typing import Any

from shoal.errors import ShoalError
from shoal.testing.wait import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


class WebDriverError(ShoalError):
    """chromedriver answered an error (its `error` and `message`)."""


def available() -> bool:
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


class Browser:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, profile: str, downloads: str) -> None:
        self.proc = proc
        self.base = f"http://127.0.0.1:{port}"
        self.profile = profile
        self.downloads = downloads
        self.session = ""

    @classmethod
    def start(cls, width: int = 1280, height: int = 900, timeout: float = 60) -> "Browser":
        profile = tempfile.mkdtemp(prefix="shoal-chromium-")
        downloads = tempfile.mkdtemp(prefix="shoal-downloads-")
        proc = subprocess.Popen([CHROMEDRIVER, "--port=0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lines: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.append(raw.decode("utf-8", "replace"))

        threading.Thread(target=read, daemon=True).start()

        def port() -> int | None:
            if proc.poll() is not None:
                raise WebDriverError(f"chromedriver exited: {''.join(lines)[-500:]}")
            for line in lines:
                if "started successfully on port" in line:
                    return int(line.rsplit("port", 1)[1].strip(" .\n"))
            return None

        browser = cls(proc, wait_until(port, timeout, "chromedriver's readiness line"), profile, downloads)
        try:
            caps = {"browserName": "chrome", "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
                         f"--window-size={width},{height}"],
                "prefs": {"download.default_directory": downloads, "download.prompt_for_download": False,
                          "download.directory_upgrade": True, "safebrowsing.enabled": False},
            }}
            answer = browser._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
            browser.session = answer["sessionId"]
        except BaseException:
            browser.stop()
            raise
        return browser

    def stop(self) -> None:
        try:
            if self.session:
                self._call("DELETE", f"/session/{self.session}")
        except (OSError, WebDriverError):
            pass
        finally:
            self.session = ""
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(20)
            shutil.rmtree(self.profile, ignore_errors=True)
            shutil.rmtree(self.downloads, ignore_errors=True)

    # -- the protocol ------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                answer = json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                value = json.loads(e.read()).get("value", {})
            except ValueError:
                value = {}
            raise WebDriverError(f"{method} {path}: {value.get('error', e.code)}: "
                                 f"{str(value.get('message', ''))[:300]}") from None
        if "sessionId" in answer:  # the new-session answer (older shape)
            return answer
        value = answer.get("value")
        if isinstance(value, dict) and "sessionId" in value:
            return value
        return value

    def _s(self, path: str) -> str:
        return f"/session/{self.session}{path}"

    def get(self, url: str) -> None:
        self._call("POST", self._s("/url"), {"url": url})

    @property
    def url(self) -> str:
        return str(self._call("GET", self._s("/url")))

    @property
    def source(self) -> str:
        return str(self._call("GET", self._s("/source")))

    def run(self, script: str, *args: Any) -> Any:
        """Run JavaScript in the page (its `return` value comes back)."""
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def find(self, css: str) -> str:
        """The element a CSS selector matches (an error if none)."""
        return str(self._call("POST", self._s("/element"), {"using": "css selector", "value": css})[ELEMENT])

    def find_all(self, css: str) -> list[str]:
        found = self._call("POST", self._s("/elements"), {"using": "css selector", "value": css})
        return [str(e[ELEMENT]) for e in found]

    def click(self, element: str) -> None:
        self._call("POST", self._s(f"/element/{element}/click"), {})

    def type(self, element: str, text: str, clear: bool = True) -> None:
        if clear:
            self._call("POST", self._s(f"/element/{element}/clear"), {})
        self._call("POST", self._s(f"/element/{element}/value"), {"text": text})

    def text(self, element: str) -> str:
        return str(self._call("GET", self._s(f"/element/{element}/text")))

    def screenshot(self, path: str) -> bytes:
        png = base64.b64decode(self._call("GET", self._s("/screenshot")))
        with open(path, "wb") as f:
            f.write(png)
        return png
