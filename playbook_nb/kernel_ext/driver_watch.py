"""A command never outlives the kernel's driver, and a run never outlives it unrecorded.

The driver is the process that started this kernel: a plain `papermill` run, the Jupyter server, nbclient in a
script. When it ends, the current run's command is stopped at once and the run is recorded ABORTED, by the cell
that runs it or, when no cell runs, on the kernel's own event loop. A kernel asked to shut down or restart
(papermill after a Ctrl-C, Kernel > Restart) aborts the run the same way. The commands' watchdog kills them
anyway if the kernel itself dies.

ipykernel's parent poller ends the kernel (`os._exit`) within a second of seeing its parent change, which can
be before the run is recorded: a kernel stopped or starved while its driver died wakes to both at once. So,
while a run is being recorded, the poller is told the parent is unchanged; it is released as soon as the
record is written, and after `RECORD_WITHIN` seconds in any case, so the kernel still ends as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

RECORD_WITHIN = 10.0  # seconds the kernel may outlive its driver to record the run it had open

_installed = False


class _HeldParent(int):
    """The parent pid ipykernel's poller compares `os.getppid()` with: reports "unchanged" until released."""

    released: threading.Event

    def __new__(cls, pid: int, released: threading.Event) -> _HeldParent:
        held = super().__new__(cls, pid)
        held.released = released
        return held

    def __ne__(self, other: object) -> bool:
        return self.released.is_set() and int(self) != other

    def __eq__(self, other: object) -> bool:
        return not self.__ne__(other)

    __hash__ = int.__hash__


def install(kernel: Any, current: Callable[[], Any]) -> None:
    """Watch this kernel's driver and its shutdown requests, once per kernel. `kernel`: the ipykernel
    Kernel (None outside one); `current()` returns the run open in this kernel (a NotebookRun) or None."""
    global _installed
    if _installed:
        return
    _installed = True
    parent = os.environ.get("JPY_PARENT_PID", "")
    if parent.isdigit() and int(parent) > 1 and int(parent) == os.getppid():
        _watch_driver(int(parent), current)
    handlers = getattr(kernel, "control_handlers", None)
    if isinstance(handlers, dict) and "shutdown_request" in handlers:
        original = handlers["shutdown_request"]

        async def shutdown_request(stream, ident, parent_msg):
            restart = bool((parent_msg.get("content") or {}).get("restart"))
            _request_abort(current, "kernel restarted" if restart else "kernel shut down")
            return await original(stream, ident, parent_msg)

        handlers["shutdown_request"] = shutdown_request


def _watch_driver(pid: int, current: Callable[[], Any]) -> None:
    try:
        pidfd = os.pidfd_open(pid)
        loop = asyncio.get_running_loop()
    except (OSError, AttributeError, RuntimeError):
        return  # no pidfd (not Linux), or no event loop to record on: ipykernel's poller alone, as before
    released = threading.Event()
    poller = _poller()
    if poller is not None and getattr(poller, "parent_pid", None) == pid:
        poller.parent_pid = _HeldParent(pid, released)
    reason = f"the kernel's driver (process {pid}) ended"

    def record_when_idle(recorded: threading.Event) -> None:
        run = current()
        if run is not None and run.cell_running:
            loop.call_later(0.1, record_when_idle, recorded)  # that cell records the abort as it returns
            return
        try:
            if run is not None and not run.session.watch_only:
                run.session.abort(None, reason)
        except Exception:  # the index refused: the run stays RUNNING there and is seen as orphaned
            pass
        finally:
            recorded.set()

    def watch() -> None:
        import select

        select.select([pidfd], [], [])
        _request_abort(current, reason)  # stops a command in flight at once
        recorded = threading.Event()
        with contextlib.suppress(RuntimeError):  # the loop is closed: the kernel is ending anyway
            loop.call_soon_threadsafe(record_when_idle, recorded)
            recorded.wait(RECORD_WITHIN)
        released.set()

    threading.Thread(target=watch, name="playbook-driver-watch", daemon=True).start()


def _request_abort(current: Callable[[], Any], reason: str) -> None:
    run = current()
    if run is not None:
        run.session.abort_switch.request(reason)


def _poller() -> Any:
    try:
        from ipykernel.kernelapp import IPKernelApp
    except ImportError:
        return None
    if not IPKernelApp.initialized():
        return None
    return getattr(IPKernelApp.instance(), "poller", None)
