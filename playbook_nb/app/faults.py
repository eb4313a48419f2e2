"""Fault injection for the reliability suite and the chaos benchmark: a process kills itself with SIGKILL at a
named point, so a test can cut a run exactly where it wants (between a command's end and its record, in the
middle of a notebook save) instead of guessing a delay.

`PLAYBOOK_NB_FAULT=POINT` arms one point, e.g. `after-command:step_03` (the command of node step_03 has
ended, nothing of it is recorded yet) or `during-save:4` (the 4th notebook save of a headless run, half
written). Unset (always, outside tests), `point()` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "PLAYBOOK_NB_FAULT"
_counts: dict[str, int] = {}


def armed(name: str) -> bool:
    """True when the point `name` is the one armed now (for `NAME:N`, at its Nth passage)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return False
    if wanted == name:
        return True
    base, _, count = wanted.rpartition(":")
    if base == name and count.isdigit():
        _counts[name] = _counts.get(name, 0) + 1
        return _counts[name] == int(count)
    return False


def point(name: str) -> None:
    """SIGKILL this process if `name` is armed: no cleanup, no flush, as the OOM killer would."""
    if armed(name):
        kill_now()


def kill_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
