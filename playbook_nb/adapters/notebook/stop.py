"""Stopping a headless (papermill) run from its driver: SIGTERM (a CI job cancelled) or SIGINT (Ctrl-C).

The kernel runs in a session of its own, so a terminal's Ctrl-C or a SIGTERM reaches only the driver. On the
first signal the driver writes why in the kernel's stop-reason file (`STOP_REASON_FILE_ENV`) and interrupts
the kernel (SIGINT): the cell that runs a node stops the node's command at once (the kernel face turns SIGINT
into an Abort with that reason, see `playbook_nb.app.abort`), the attempt is recorded INTERRUPTED and the run
ABORTED ("terminated (SIGTERM)" for a cancelled CI job, as the terminal face says); no further cell starts
(`papermill_engine.STOP`), and papermill writes the notebook as it is, which the driver files. A kernel
that does not end its cell within `ESCALATE` seconds, or a second signal, gets SIGKILL; its commands die with
it (their watchdog), and the driver records the run ABORTED itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from playbook_nb.app.abort import signal_reason

ESCALATE = 10.0  # seconds a kernel has to end its interrupted cell before it is killed


class _Stop:
    """Set when the driver is told to stop; read by the papermill engine before each cell (no further cell
    starts). papermill imports the engine module early: this module imports nothing of papermill."""

    reason: str | None = None


STOP = _Stop()


def _children_kernels(pid: int) -> list[int]:
    """Kernel processes started by process `pid` (direct children whose command line names ipykernel)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            if int(stat[stat.rfind(b")") + 2 :].split()[1]) != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if b"ipykernel" in fh.read():
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _signal_kernels(sig: int) -> None:
    for pid in _children_kernels(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


@contextlib.contextmanager
def stop_on_signals(reason_file: Path | None = None) -> Iterator[None]:
    """While papermill runs in this (main) thread: SIGTERM / SIGINT stop the run as the module says; the
    reason is written to `reason_file` (the kernel's STOP_REASON_FILE_ENV) before the kernel is interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    STOP.reason = None
    timer: list[threading.Timer] = []

    def handler(signum, _frame) -> None:
        if STOP.reason is not None:  # asked twice: no more waiting
            _signal_kernels(signal.SIGKILL)
            return
        STOP.reason = signal_reason(signum)
        if reason_file is not None:
            with contextlib.suppress(OSError):  # then the kernel says what it was sent
                reason_file.write_text(STOP.reason)
        _signal_kernels(signal.SIGINT)
        timer.append(threading.Timer(ESCALATE, _signal_kernels, (signal.SIGKILL,)))
        timer[-1].daemon = True
        timer[-1].start()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        for t in timer:
            t.cancel()


def stop_reason() -> str | None:
    """Why the last headless run was told to stop, or None."""
    return STOP.reason
