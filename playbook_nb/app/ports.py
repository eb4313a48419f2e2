"""What the application needs from the outside, as interfaces: an executor runs one prepared node call, a
clock tells the time and waits. The faces compose the real ones (playbook_nb.adapters.executors.LocalExecutor,
SystemClock); rehearsal and replay pass in their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from playbook_nb.adapters.executors.result import AttemptResult
from playbook_nb.adapters.plugins.base import StepContext
from playbook_nb.domain.model import Node

OutputCallback = Callable[[str, str], None]  # (stream, text), secrets already masked


@dataclass
class NodeCall:
    """One attempt of one node, with every template rendered: what an executor needs and nothing else."""

    node: Node
    on_output: OutputCallback | None = None
    timeout: float | None = None  # Command and Function
    command: str | None = None  # Command: rendered, values shell-quoted
    env: dict[str, str] = field(default_factory=dict)  # Command: the whole environment
    stdin_tty: bool = False  # Command: `interactive = true` in a terminal
    params: dict[str, Any] = field(default_factory=dict)  # Function: rendered, not yet converted
    plugin_config: dict[str, Any] = field(default_factory=dict)  # Function: runbook's merged with the node's
    step_context: StepContext | None = None  # Function: files, rehearsal stand-ins
    code: str | None = None  # Python: the code (a notebook cell may have edited it)
    namespace: dict[str, Any] | None = None  # Python: the kernel namespace it runs in
    # a fleet node (targets, Ansible): its hosts planned and recorded when the call was built; this runs them
    fleet: Callable[[], AttemptResult] | None = None


class Executor(Protocol):
    """Runs one prepared node call and says what happened; never raises for a failure of the node itself."""

    def run(self, call: NodeCall) -> AttemptResult: ...


class Clock(Protocol):
    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time and real waiting."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
