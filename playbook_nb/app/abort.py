"""Abort means stop now: one switch a run's session holds, that any face can throw from any thread.

`AbortSwitch.request(reason)` is safe from a signal handler, a widget callback processed while a command runs,
a watchdog thread or a storage fault: it only records the reason and sets the cancel event of every attempt
in flight, so the executors stop their command's process group (or raise in a Python node's code) within
their poll interval. The session applies the abort to the engine and the index at its next safe point (never
from inside a signal handler, which could land in the middle of a store transaction).

`on_signals(switch, ...)` installs handlers for SIGINT / SIGTERM that throw the switch; while a face waits
for a human (a terminal prompt), `switch.prompting()` lets SIGINT raise KeyboardInterrupt as usual.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator

SIGNAL_REASONS: dict[int, str] = {
    signal.SIGINT: "interrupted (SIGINT)",
    signal.SIGTERM: "terminated (SIGTERM)",
}


class AbortSwitch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancels: dict[str, threading.Event] = {}
        self.reason: str | None = None
        self.actor: str | None = None
        self._prompting = 0

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str, actor: str | None = None) -> None:
        """Stop every attempt in flight now; the first reason given is the one recorded."""
        with self._lock:
            if self.reason is None:
                self.reason, self.actor = reason, actor
            events = list(self._cancels.values())
        for event in events:
            event.set()

    def cancel_event(self, node_id: str) -> threading.Event:
        """The event an attempt of `node_id` watches (already set when an abort was requested)."""
        with self._lock:
            event = self._cancels[node_id] = threading.Event()
            if self.reason is not None:
                event.set()
        return event

    def done(self, node_id: str) -> None:
        with self._lock:
            self._cancels.pop(node_id, None)

    @property
    def in_flight(self) -> list[str]:
        with self._lock:
            return list(self._cancels)

    @contextlib.contextmanager
    def prompting(self) -> Iterator[None]:
        """While a face waits for a human, SIGINT raises KeyboardInterrupt (nothing is being written)."""
        self._prompting += 1
        try:
            yield
        finally:
            self._prompting -= 1

    def on_signal(self, signum: int, _frame, reason: str | None = None) -> None:
        self.request(reason or signal_reason(signum))
        if self._prompting:
            raise KeyboardInterrupt


def signal_reason(signum: int) -> str:
    return SIGNAL_REASONS.get(signum, f"signal {signum}")


@contextlib.contextmanager
def on_signals(
    switch: AbortSwitch,
    signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
    reason: Callable[[int], str] | None = None,
) -> Iterator[None]:
    """Throw `switch` on these signals for the duration (main thread only; elsewhere a no-op); `reason(signum)`
    says why, when the signal is a messenger (a kernel interrupted by its driver), else the signal's name."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def throw(signum: int, frame) -> None:
        switch.on_signal(signum, frame, reason(signum) if reason else None)

    previous = {}
    for signum in signals:
        previous[signum] = signal.signal(signum, throw)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
