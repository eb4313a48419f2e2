"""Output capture shared by the executors.

- `BoundedCapture`: keeps the head and the tail of a stream within a byte bound, with a truncation marker.
- `capture_thread_output()`: captures what the *current thread* writes to `sys.stdout` / `sys.stderr`
  (print, warnings, tracebacks) while still showing it. `sys.stdout` and `sys.stderr` are replaced once by a
  router that sends each write to the capture registered for the writing thread, or to the stream it replaced.
  Unlike `contextlib.redirect_stdout`, other threads (the kernel's own, parallel nodes) are not captured, and
  concurrent captures in several threads may start and end in any order.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

OutputCallback = Callable[[str, str], None]

DEFAULT_MAX_OUTPUT_BYTES = 1_000_000


def truncation_marker(dropped: int) -> str:
    return f"[... output truncated: {dropped} bytes dropped ...]"


class BoundedCapture:
    """Keeps the first and the last `limit // 2` bytes of a stream and counts what falls in between."""

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT_BYTES):
        self.head_limit = max(0, limit) // 2
        self.tail_limit = max(0, limit) - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - self.tail_limit
            if excess > 0:
                del self.tail[:excess]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        head, tail = bytes(self.head), bytes(self.tail)
        if not self.truncated:
            return (head + tail).decode("utf-8", "replace")
        # Cut at line boundaries when one is near, so the marker sits on a line of its own.
        cut = head.rfind(b"\n")
        if cut >= len(head) // 2:
            head = head[: cut + 1]
        cut = tail.find(b"\n")
        if 0 <= cut < len(tail) // 2:
            tail = tail[cut + 1 :]
        dropped = self.total - len(head) - len(tail)
        head_text = head.decode("utf-8", "replace")
        if head_text and not head_text.endswith("\n"):
            head_text += "\n"
        return f"{head_text}{truncation_marker(dropped)}\n{tail.decode('utf-8', 'replace')}"


def safe_callback(on_output: OutputCallback | None) -> OutputCallback | None:
    """A callback that cannot break the executor: after its first exception it is no longer called."""
    if on_output is None:
        return None
    broken = False

    def emit(stream: str, text: str) -> None:
        nonlocal broken
        if broken:
            return
        try:
            on_output(stream, text)
        except Exception:
            broken = True

    return emit


class ThreadCapture:
    """What one thread wrote to stdout and stderr.

    Each write is captured (bounded) and shown: handed to `on_output` line by line when given, else written
    to the stream that was `sys.stdout` / `sys.stderr` before the router (a terminal, the kernel's stream).
    """

    def __init__(self, on_output: OutputCallback | None, max_output_bytes: int):
        self.parent: ThreadCapture | None = None  # an enclosing capture of the same thread
        self.captures = {
            "stdout": BoundedCapture(max_output_bytes),
            "stderr": BoundedCapture(max_output_bytes),
        }
        self.emit = safe_callback(on_output)
        self.pending = {"stdout": "", "stderr": ""}
        self.lock = threading.RLock()
        self.closed = False
        self.emitting = False  # on_output itself printing (same thread, lock held): show, do not recapture

    def write(self, stream: str, text: str) -> None:
        with self.lock:
            if self.closed or self.emitting:
                self._show(stream, text)
                return
            self.captures[stream].add(text.encode("utf-8", "replace"))
            if self.emit is None:
                self._show(stream, text)
                return
            *lines, self.pending[stream] = (self.pending[stream] + text).split("\n")
            self._emit_all([(stream, line + "\n") for line in lines])

    def _emit_all(self, items: list[tuple[str, str]]) -> None:
        assert self.emit is not None
        self.emitting = True
        try:
            for stream, text in items:
                self.emit(stream, text)
        finally:
            self.emitting = False

    def _show(self, stream: str, text: str) -> None:
        if self.parent is not None:
            self.parent.write(stream, text)
        else:
            _ROUTERS[stream].original.write(text)

    def close(self) -> None:
        """Flush a last partial line; later writes (a timed-out thread still running) go to the original."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if self.emit is not None:
                self._emit_all([(stream, rest) for stream, rest in self.pending.items() if rest])
            self.pending = {"stdout": "", "stderr": ""}

    def text(self, stream: str) -> str:
        with self.lock:
            return self.captures[stream].text()

    @property
    def truncated(self) -> bool:
        with self.lock:
            return any(c.truncated for c in self.captures.values())


class _Router:
    """Stands in for sys.stdout / sys.stderr; a write goes to the writing thread's capture if it has one."""

    def __init__(self, name: str, original: TextIO):
        self._name = name
        self.original = original

    def write(self, text: str) -> int:
        capture = _ACTIVE.get(threading.get_ident())
        if capture is None:
            return self.original.write(text)
        capture.write(self._name, text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.original.flush()

    def __getattr__(self, attr: str) -> Any:  # encoding, isatty, fileno, ... of the real stream
        return getattr(self.original, attr)


_LOCK = threading.Lock()
_ACTIVE: dict[int, ThreadCapture] = {}
_ROUTERS: dict[str, _Router] = {}


def _install() -> None:
    for name in ("stdout", "stderr"):
        current = getattr(sys, name)
        if isinstance(current, _Router):
            _ROUTERS[name] = current
            continue
        router = _Router(name, current)
        _ROUTERS[name] = router
        setattr(sys, name, router)


def _uninstall() -> None:
    for name in ("stdout", "stderr"):
        router = _ROUTERS.get(name)
        # Someone replaced the stream after us (pytest, another redirect): leave theirs alone.
        if router is not None and getattr(sys, name) is router:
            setattr(sys, name, router.original)


@contextlib.contextmanager
def capture_thread_output(
    on_output: OutputCallback | None = None, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
) -> Iterator[ThreadCapture]:
    """Capture the current thread's writes to sys.stdout / sys.stderr for the duration of the block."""
    capture = ThreadCapture(on_output, max_output_bytes)
    ident = threading.get_ident()
    with _LOCK:
        previous = _ACTIVE.get(ident)
        capture.parent = previous
        if not _ACTIVE:
            _install()
        _ACTIVE[ident] = capture
    try:
        yield capture
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with _LOCK:
            if previous is not None:
                _ACTIVE[ident] = previous
            else:
                _ACTIVE.pop(ident, None)
            if not _ACTIVE:
                _uninstall()
        capture.close()
