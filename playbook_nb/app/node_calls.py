"""The node-call builder: a node's templates rendered against the run (variables, `steps`, `execution`,
has_succeeded/has_failed), its `when` evaluated, and the call an executor runs prepared from them.

Templates are rendered on the driving thread, against the engine's state at the moment the attempt starts.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbook_nb.app.fleet_calls import prepare_fleet_call
from playbook_nb.app.plugin_api import merge_plugin_config
from playbook_nb.app.ports import AttemptResult, Clock, CommandEnv, Executor, NodeCall, StepContext

if TYPE_CHECKING:
    from playbook_nb.app.fleet_calls import HostListener, HostRecorder
from playbook_nb.app.step_files import new_step_context, secret_values
from playbook_nb.domain import templating
from playbook_nb.domain.engine import Engine
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.model import Node, NodeType, Runbook
from playbook_nb.domain.redact import Redactor
from playbook_nb.domain.template_fields import template_fields

OutputListener = Callable[[str, str, str], None]  # (node_id, stream, text)


class NodeCallBuilder:
    def __init__(
        self,
        runbook: Runbook,
        values: dict[str, Any],
        *,
        run_id: int,
        executor: Executor,
        redactor: Redactor,
        clock: Clock,
        namespace: dict[str, Any],
        store: Any,
        runbook_dir: Path | None = None,
        update_baselines: bool = False,
    ):
        self.runbook = runbook
        self.store = store  # fleet nodes record their planned hosts as the call is built
        self.values = values
        self.run_id = run_id
        self.executor = executor
        self.redactor = redactor
        self.clock = clock
        self.namespace = namespace
        self.runbook_dir = runbook_dir
        self.update_baselines = update_baselines
        self.started_at = clock.time()
        self.output_listeners: list[OutputListener] = []
        self.host_listeners: list[HostListener] = []  # (node_id, HostResult): fleet progress
        self.host_recorders: dict[str, HostRecorder] = {}  # fleet attempts in flight: their host rows
        # step outputs (real values, for templates of this run; the index holds them masked)
        self.outputs: dict[str, dict[str, Any]] = {}
        self.step_contexts: dict[str, StepContext] = {}  # Function attempts in flight: their files
        # nodes with a template that can read `steps` (the others render without building it)
        self._reads_steps = {
            node_id for node_id, _field, text in template_fields(runbook) if node_id and "steps" in text
        }

    # -- template contexts ---------------------------------------------------------------------
    def context(self, engine: Engine, node_id: str | None = None) -> dict[str, Any]:
        return templating.make_context(
            self.values,
            has_succeeded=engine.has_succeeded,
            has_failed=engine.has_failed,
            steps=self._steps(engine, node_id),
            execution=self._execution(),
        )

    def _steps(self, engine: Engine, node_id: str | None) -> dict[str, Any]:
        """`steps` for the templates of `node_id` (of any node when None): every node's outputs and state,
        or nothing at all for a node whose templates never name `steps` (it would only cost time)."""
        if node_id is not None and node_id not in self._reads_steps:
            return {}
        return {
            other: {"outputs": dict(self.outputs.get(other, {})), "state": str(engine.state(other))}
            for other in self.runbook.nodes
        }

    def _execution(self) -> dict[str, Any]:
        """`execution` in templates: the run's id, start (ISO, UTC) and seconds since it started."""
        return {
            "id": self.run_id,
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            "duration": round(self.clock.time() - self.started_at, 3),
        }

    def evaluate_when(self, node: Node, engine: Engine) -> bool:
        """The engine's `when` callback."""
        if not node.when:
            return True
        return templating.render_bool(
            node.when, self.context(engine, node.id), f"node '{node.id}', field 'when'"
        )

    def rendered(self, engine: Engine, node: Node) -> dict[str, Any]:
        """The node's fields with variables substituted (secrets masked), for panels and docs."""
        context = self.context(engine, node.id)
        where = f"node '{node.id}'"
        shown: dict[str, Any] = {}
        with contextlib.suppress(PlaybookError):
            if node.type is NodeType.COMMAND and node.command_name:
                shown["command"] = self._command(node, context)[0]
            elif node.type is NodeType.FUNCTION:
                shown["function"] = f"{node.plugin}.{node.function}"
                shown["params"] = templating.render_params(node.function_params, context, where)
            elif node.type is NodeType.MANUAL:
                shown["prompt"] = templating.render(node.prompt_after, context, where)
                if node.prompt_before:
                    shown["prompt_before"] = templating.render(node.prompt_before, context, where)
            elif node.type is NodeType.PYTHON:
                shown["code"] = node.code
        return self.redactor.redact_obj(shown)

    # -- calls ---------------------------------------------------------------------------------
    def prepare(
        self, engine: Engine, node: Node, code: str | None = None, **control: Any
    ) -> tuple[Callable[[], AttemptResult], dict[str, Any]]:
        """Render the node's templates now (they read the engine's state) and return the call that runs it
        (on this thread or a worker's) with what it runs (`ran`: secrets masked, for the record).
        `control`: the NodeCall's cancel / idle / on_spawn. Raises PlaybookError for a template or parameter
        problem."""
        call = self.build(engine, node, code)
        for name, value in control.items():
            setattr(call, name, value)
        ran = self.ran(engine, call)
        if node.type is NodeType.PYTHON:

            def python_call() -> AttemptResult:
                with self._redacted_std_streams():
                    return self.executor.run(call)

            return python_call, ran
        return (lambda: self.executor.run(call)), ran

    def ran(self, engine: Engine, call: NodeCall) -> dict[str, Any]:
        """What an attempt runs, as the record keeps it (secrets masked): the rendered command, the plugin
        function and its rendered parameters, or the Python code. Reports read this, never a re-rendering."""
        node = call.node
        if node.is_fleet:
            ran: dict[str, Any] = dict(self.rendered(engine, node))
        elif node.type is NodeType.COMMAND:
            ran = {"command": call.command}
        elif node.type is NodeType.FUNCTION:
            ran = {"function": f"{node.plugin}.{node.function}", "params": call.params}
        elif node.type is NodeType.PYTHON:
            ran = {"code": call.code}
        else:
            ran = {}
        return self.redactor.redact_obj(ran)

    def build(self, engine: Engine, node: Node, code: str | None = None) -> NodeCall:
        context = self.context(engine, node.id)
        where = f"node '{node.id}'"
        call = NodeCall(node=node, on_output=self._output_callback(node.id))
        if node.is_fleet:
            call.fleet, self.host_recorders[node.id] = prepare_fleet_call(
                node,
                self.runbook,
                values=self.values,
                context=context,
                timeout=_as_timeout(node.timeout, context, where),
                store=self.store,
                run_id=self.run_id,
                attempt=engine.attempts(node.id),
                redact=self.redactor.redact,
                env={"PLAYBOOK_RUN_ID": str(self.run_id), "PLAYBOOK_NODE_ID": node.id},
                on_output=call.on_output,
                host_listeners=self.host_listeners,
            )
        elif node.type is NodeType.COMMAND:
            call.command, secret_env = self._command(node, context)
            call.timeout = _as_timeout(node.timeout, context, where)
            call.env = CommandEnv(
                {"PLAYBOOK_RUN_ID": str(self.run_id), "PLAYBOOK_NODE_ID": node.id, **secret_env}
            )
            call.stdin_tty = node.interactive and sys.stdin.isatty()
        elif node.type is NodeType.FUNCTION:
            call.params = templating.render_params(node.function_params, context, where)
            call.plugin_config = merge_plugin_config(
                self.runbook.meta.plugin_config.get(node.plugin or "", {}), node.plugin_config
            )
            call.timeout = _as_timeout(node.timeout, context, where)
            # secret plugin parameters (an Authorization header, ...) are masked from now on
            plugins = self.executor.plugins
            self.redactor.add(secret_values(plugins, node.plugin or "", node.function or "", call.params))
            call.step_context = self.step_contexts[node.id] = new_step_context(
                run_id=self.run_id,
                node_id=node.id,
                attempt=engine.attempts(node.id),
                runbook_dir=self.runbook_dir,
                update_baselines=self.update_baselines,
                started_at=self.started_at,
            )
        elif node.type is NodeType.PYTHON:
            call.code = code if code is not None else node.code or ""
            call.namespace = self.namespace
            call.timeout = _as_timeout(node.timeout, context, where)
        return call

    def _command(self, node: Node, context: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """(the command line, the environment its secrets come through). A secret variable is written into
        the command as a quoted "$NAME" reference, never as its value: the process list shows every local
        user a command's arguments, its environment only to the same user."""
        context, secret_env = templating.secret_command_context(context, self.runbook.secret_names)
        where = f"node '{node.id}', field 'command_name'"
        command = templating.render_command(node.command_name or "", context, where)
        used = {
            name: value
            for name, value in secret_env.items()
            if f"${name}" in command or "${" + name in command
        }
        return command, used

    def _output_callback(self, node_id: str) -> Callable[[str, str], None]:
        def on_output(stream: str, text: str) -> None:
            text = self.redactor.redact(text)
            for listener in self.output_listeners:
                listener(node_id, stream, text)

        return on_output

    @contextlib.contextmanager
    def _redacted_std_streams(self) -> Iterator[None]:
        """Python nodes print straight to the kernel's streams: mask secrets on the way."""
        if not self.redactor:
            yield
            return
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = (
            _RedactingStream(old_out, self.redactor),
            _RedactingStream(old_err, self.redactor),
        )
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old_out, old_err


def render_critical(runbook: Runbook, values: dict[str, Any]) -> dict[str, bool]:
    """Each node's `critical`, templates rendered with the run's variables (the engine takes plain booleans)."""
    context = templating.make_context(values)
    return {
        node.id: templating.render_bool(node.critical, context, f"node '{node.id}', field 'critical'")
        if isinstance(node.critical, str)
        else bool(node.critical)
        for node in runbook.nodes.values()
    }


def _as_timeout(value: int | str, context: dict[str, Any], where: str) -> float | None:
    if isinstance(value, str):
        value = templating.render_int(value, context, f"{where}, field 'timeout'")
    return float(value) if value and value > 0 else None


class _RedactingStream:
    def __init__(self, stream: Any, redactor: Redactor):
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        return self._stream.write(self._redactor.redact(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
