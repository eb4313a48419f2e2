"""The executor every face composes for real runs: a node call goes to the executor of its node's type."""

from __future__ import annotations

from playbook_nb.adapters.executors.command import run_command
from playbook_nb.adapters.executors.function import run_function
from playbook_nb.adapters.executors.python import run_python
from playbook_nb.adapters.executors.result import AttemptResult
from playbook_nb.app.ports import NodeCall
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.model import NodeType


class LocalExecutor:
    """Command in its own process group, Function through its plugin, Python in the kernel namespace."""

    def run(self, call: NodeCall) -> AttemptResult:
        node = call.node
        if call.fleet is not None:
            return call.fleet()
        if node.type is NodeType.COMMAND:
            return run_command(
                call.command or "",
                timeout=call.timeout,
                env=call.env,
                on_output=call.on_output,
                stdin_tty=call.stdin_tty,
            )
        if node.type is NodeType.FUNCTION:
            return run_function(
                node.plugin or "",
                node.function or "",
                call.params,
                plugin_config=call.plugin_config,
                timeout=call.timeout,
                on_output=call.on_output,
                context=call.step_context,
            )
        if node.type is NodeType.PYTHON:
            namespace = call.namespace if call.namespace is not None else {}
            return run_python(call.code or "", namespace, filename=node.id)
        raise PlaybookError(f"node '{node.id}' of type {node.type} cannot be executed")
