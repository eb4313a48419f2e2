"""The executor every face composes for real runs: a node call goes to the executor of its node's type."""

from __future__ import annotations

from playbook_nb.adapters.executors.command import run_command
from playbook_nb.adapters.executors.function import run_function
from playbook_nb.adapters.executors.python import run_python
from playbook_nb.adapters.plugins.registry import INSTALLED
from playbook_nb.app.plugin_api import PluginCatalog
from playbook_nb.app.ports import AttemptResult, FleetAttemptResult, FleetCall, NodeCall
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.model import NodeType


class LocalExecutor:
    """Command in its own process group, Function through its plugin, Python in the kernel namespace."""

    plugins: PluginCatalog = INSTALLED  # the plugins installed here (entry points)

    def run(self, call: NodeCall) -> AttemptResult:
        node = call.node
        if call.fleet is not None:
            return run_fleet_call(call.fleet)
        if node.type is NodeType.COMMAND:
            return run_command(
                call.command or "",
                timeout=call.timeout,
                env=call.env,
                on_output=call.on_output,
                stdin_tty=call.stdin_tty,
                cancel=call.cancel,
                on_spawn=call.on_spawn,
                idle=call.idle,
                token=call.process_token,
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
                cancel=call.cancel,
                idle=call.idle,
            )
        if node.type is NodeType.PYTHON:
            namespace = call.namespace if call.namespace is not None else {}
            return run_python(
                call.code or "", namespace, filename=node.id, timeout=call.timeout, cancel=call.cancel
            )
        raise PlaybookError(f"node '{node.id}' of type {node.type} cannot be executed")


def run_fleet_call(call: FleetCall) -> FleetAttemptResult:
    """A fleet node's planned attempt: with ansible-runner when it names a playbook, else over SSH."""
    # imported here, not at the top: the SSH executor loads asyncssh (about 0.4 s at every start), and only
    # fleet nodes need it
    if call.playbook is not None:
        from playbook_nb.adapters.executors.ansible import run_ansible

        return run_ansible(
            call.playbook,
            inventory=call.inventory,
            targets=call.targets,
            limit=call.limit,
            extra_vars=call.extra_vars,
            env=call.env,
            batch=call.batch,
            timeout=call.timeout,
            options=call.options,
            done=call.done,
            on_host=call.on_host,
            on_output=call.on_output,
        )
    from playbook_nb.adapters.executors.fleet import run_fleet

    assert call.targets is not None
    return run_fleet(
        call.command or "",
        call.targets,
        batch=call.batch,
        max_fail=call.max_fail,
        timeout=call.timeout,
        options=call.options,
        env=call.env,
        done=call.done,
        on_host=call.on_host,
        on_output=call.on_output,
    )
