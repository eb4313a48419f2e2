"""One headless Chromium per process, shared by every screenshot step (launching it costs a second or two).

Playwright's sync API must stay on the thread that started it, while Function steps run in a fresh worker
thread each, so the browser lives on a thread of its own and jobs are handed to it through a queue. It is
started on first use and closed at interpreter exit (its driver process also ends when ours does). The browser
is Debian's system Chromium (`PLAYBOOK_NB_CHROMIUM`, default /usr/bin/chromium): nothing is downloaded.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from playbook_nb.domain.errors import PluginError

CHROMIUM_ENV = "PLAYBOOK_NB_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def chromium_path() -> str:
    return os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM


class SharedBrowser:
    """A Chromium owned by one thread; `run(job)` calls `job(browser)` there and returns its result."""

    def __init__(self, executable: str):
        self.executable = executable
        self._jobs: queue.Queue = queue.Queue()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="playbook-browser", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self._error = PluginError("ui_screenshot needs Playwright: pip install playwright")
            self._started.set()
            return
        if not os.path.exists(self.executable):
            self._error = PluginError(f"ui_screenshot: no Chromium at {self.executable} (set {CHROMIUM_ENV})")
            self._started.set()
            return
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=self.executable, args=CHROMIUM_ARGS, headless=True
                )
                self._started.set()
                while True:
                    job = self._jobs.get()
                    if job is None:
                        break
                    fn, future = job
                    try:
                        future.set_result(fn(browser))
                    except BaseException as exc:  # handed back to the caller's thread
                        future.set_exception(exc)
                browser.close()
        except Exception as exc:  # the launch failed
            if not self._started.is_set():
                self._error = PluginError(
                    f"ui_screenshot: Chromium did not start: {' '.join(str(exc).split())[:300]}"
                )
                self._started.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def run(self, job: Callable[[Any], Any], timeout: float | None = None) -> Any:
        future: Future = Future()
        self._jobs.put((job, future))
        return future.result(timeout)

    def close(self, timeout: float = 10) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout)


_lock = threading.Lock()
_shared: SharedBrowser | None = None


def shared_browser() -> SharedBrowser:
    """The process's browser, started on first call (and again if it died)."""
    global _shared
    with _lock:
        if _shared is None or not _shared.alive:
            _shared = SharedBrowser(chromium_path())
        return _shared


@atexit.register
def close_shared_browser() -> None:
    global _shared
    with _lock:
        if _shared is not None:
            _shared.close()
            _shared = None
