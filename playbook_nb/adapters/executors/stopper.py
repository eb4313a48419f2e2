"""Stopping Python code (Python nodes, Function plugins) after a timeout or on Abort.

A thread cannot be killed; the code running in it can be made to raise. `Stopper` watches a deadline and a
cancel event from a small thread of its own and, when either comes, raises `NodeStopped` in the thread that
runs the node's code:

- on the main thread (a Python node in a kernel cell or the terminal), through a signal: SIGALRM sent to
  that thread, whose handler (installed for the duration) raises. A signal also cuts a blocking
  `time.sleep()` or a wait on a socket short, as a kernel interrupt does;
- on any other thread (Function plugins run in a worker), through CPython's asynchronous exception
  (`PyThreadState_SetAsyncExc`), raised at the thread's next bytecode.

Code that swallows the exception (a bare `except:`) gets it again every `REPEAT` seconds. Code blocked in C
for good cannot be stopped in-process; the caller then reports that it kept running.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading
import time
from typing import Any

REPEAT = 0.5  # seconds between two deliveries of NodeStopped to code that did not stop


class NodeStopped(BaseException):
    """Raised in a node's code when its timeout expires or the run is aborted (reason on the Stopper)."""


def _async_raise(ident: int, exc_type: type[BaseException]) -> bool:
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
    return done == 1


class Stopper:
    """`with Stopper(timeout, cancel) as stopper:` around code run on the current thread. After the block,
    `stopper.reason` is "timeout", "cancelled" or None (the code ended by itself)."""

    def __init__(self, timeout: float | None, cancel: threading.Event | None, ident: int | None = None):
        self.timeout = timeout if timeout and timeout > 0 else None
        self.cancel = cancel
        self.ident = threading.get_ident() if ident is None else ident
        self.reason: str | None = None
        self._done = threading.Event()
        self._watcher: threading.Thread | None = None
        self._old_handler: Any = None
        self._use_signal = False
        self._armed = False
        self._lock = threading.Lock()

    @property
    def needed(self) -> bool:
        return self.timeout is not None or self.cancel is not None

    def __enter__(self) -> Stopper:
        if not self.needed:
            return self
        main = threading.main_thread().ident
        self._use_signal = self.ident == main and threading.get_ident() == main
        if self._use_signal:
            self._old_handler = signal.signal(signal.SIGALRM, self._on_signal)
        self._armed = True
        self._watcher = threading.Thread(target=self._watch, name="playbook-node-stopper", daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.needed:
            return
        with self._lock:
            self._armed = False
            if not self._use_signal:  # forget a delivery not raised yet
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.ident), None)
        self._done.set()
        if self._watcher is not None:
            self._watcher.join()
        if self._use_signal:
            signal.signal(signal.SIGALRM, self._old_handler)

    def stopped(self, exc: BaseException) -> bool:
        """True when `exc` is the NodeStopped this stopper raised."""
        return isinstance(exc, NodeStopped) and self.reason is not None

    def _on_signal(self, signum, frame) -> None:
        if self._armed and self.reason is not None:
            raise NodeStopped(self.reason)

    def _watch(self) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while not self._done.is_set():
            if self.cancel is not None and self.cancel.is_set():
                self.reason = "cancelled"
                break
            if deadline is not None and time.monotonic() >= deadline:
                self.reason = "timeout"
                break
            self._done.wait(0.05)
        while self.reason is not None and not self._done.is_set():
            self._deliver()
            self._done.wait(REPEAT)

    def _deliver(self) -> None:
        with self._lock:
            if not self._armed:
                return
            if self._use_signal:
                with contextlib.suppress(OSError, ValueError):
                    signal.pthread_kill(self.ident, signal.SIGALRM)
            else:
                _async_raise(self.ident, NodeStopped)
