"""Executors: each runs one node attempt and returns an `AttemptResult`."""

from playbook_nb.adapters.executors.command import run_command
from playbook_nb.adapters.executors.function import run_function
from playbook_nb.adapters.executors.manual import GateRequest, gate_request
from playbook_nb.adapters.executors.python import run_python
from playbook_nb.app.ports import AttemptResult

__all__ = ["AttemptResult", "GateRequest", "gate_request", "run_command", "run_function", "run_python"]
