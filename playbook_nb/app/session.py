"""RunSession: one run of one runbook, driven by any face.

The terminal runner, the notebook cells, the widget buttons and papermill all call this class; it joins the pure
engine (rules), the executors (doing), the store (recording) and the redactor (secrets). Every engine event is
written to the store when it happens, so a killed process loses at most the attempt in flight.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbook_nb.adapters.executors.command import run_command
from playbook_nb.adapters.executors.function import run_function
from playbook_nb.adapters.executors.python import run_python
from playbook_nb.adapters.executors.result import AttemptResult
from playbook_nb.adapters.plugins.base import StepContext
from playbook_nb.adapters.plugins.registry import merge_plugin_config
from playbook_nb.adapters.store import Store
from playbook_nb.adapters.store.models import to_json
from playbook_nb.app.step_files import collect_artifacts, new_step_context, secret_values
from playbook_nb.domain import templating
from playbook_nb.domain.decisions import (
    GateDecision,
    check_gate_policy,
    default_actor,
    headless_gate_decision,
    parse_approvals,
)
from playbook_nb.domain.engine import AttemptOutcome, Decision, Engine, EngineEvent, NodeState, RunState
from playbook_nb.domain.errors import PlaybookError, StoreError
from playbook_nb.domain.model import Node, NodeType, Runbook
from playbook_nb.domain.redact import Redactor, mask_variables
from playbook_nb.domain.template_fields import template_fields

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

OutputListener = Callable[[str, str, str], None]  # (node_id, stream, text)
EventListener = Callable[[EngineEvent], None]


class SessionError(PlaybookError):
    """A run cannot be started or resumed as asked (wrong status, changed runbook, unknown node)."""


@dataclass
class RunOptions:
    headless: bool
    trigger: str = "terminal"
    actor: str = ""
    max_retries: int = 3
    gate_policy: str = "fail-closed"
    approvals: dict[str, str] = field(default_factory=dict)
    comment: str | None = None
    parallel: int = 1  # independent Command/Function nodes run at the same time, up to this many
    extra_params: dict[str, Any] = field(default_factory=dict)  # recorded with the run (replay_of, rehearsal)
    # Function steps: where relative files (schemas, baselines) are (default: the runbook file's folder), and
    # whether screenshot steps write their captures as the new baselines (`test --update-baselines`)
    runbook_dir: str | None = None
    update_baselines: bool = False

    def __post_init__(self) -> None:
        self.actor = self.actor or default_actor()
        check_gate_policy(self.gate_policy)
        if int(self.max_retries) < 0:  # checked before a run row exists (the engine would refuse it later)
            raise SessionError(f"max retries must be 0 or more, not {self.max_retries}")

    def public_params(self) -> dict[str, Any]:
        return {
            "headless": self.headless,
            "max_retries": self.max_retries,
            "gate_policy": self.gate_policy,
            "approvals": dict(self.approvals),
            **({"parallel": int(self.parallel)} if int(self.parallel) > 1 else {}),
            **({"runbook_dir": self.runbook_dir} if self.runbook_dir else {}),
            **({"update_baselines": True} if self.update_baselines else {}),
            **self.extra_params,
        }


@dataclass
class NodeReport:
    """What happened when a face asked to run a node: shown under its cell or on the terminal."""

    node_id: str
    state: NodeState
    ran: bool
    message: str
    result: AttemptResult | None = None
    attempt: int | None = None
    background: bool = False  # ran in a worker started by an earlier cell (its output was not streamed)


class RunSession:
    def __init__(
        self,
        runbook: Runbook,
        values: dict[str, Any],
        store: Store,
        run_id: int,
        engine: Engine,
        options: RunOptions,
        namespace: dict[str, Any] | None = None,
    ):
        self.runbook = runbook
        self.values = values
        self.store = store
        self.run_id = run_id
        self.engine = engine
        self.options = options
        self._secrets = [str(values[name]) for name in runbook.secret_names if values.get(name)]
        self.redactor = Redactor(self._secrets)
        self.namespace = namespace if namespace is not None else {}
        self.namespace.update(values)
        self.output_listeners: list[OutputListener] = []
        self.host_listeners: list[Callable[[str, Any], None]] = []  # (node_id, HostResult): fleet progress
        self._host_recorders: dict[str, Any] = {}
        self.event_listeners: list[EventListener] = []
        self._approvals = parse_approvals(options.approvals, self.gate_ids)
        self._last_results: dict[str, AttemptResult] = {}
        # issue 9: step outputs (real values, for templates of this run; the index holds them masked) ...
        self.outputs: dict[str, dict[str, Any]] = {}
        # ... a replacement executor (rehearsal: `executor(node) -> AttemptResult`, nothing really runs) ...
        self.executor: Callable[[Node], AttemptResult] | None = None
        # ... who decides a gate in headless mode before approvals/policy (replay: the recorded decisions) ...
        self.gate_decider: Callable[[str], GateDecision | None] | None = None
        # ... and parallel branches: attempts in worker threads (engine and store stay on this thread)
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[str, tuple[int, Future]] = {}
        self._background_reports: dict[str, NodeReport] = {}
        # nodes with a template that can read `steps` (the others render without building it)
        self._reads_steps = {
            node_id for node_id, _field, text in template_fields(runbook) if node_id and "steps" in text
        }
        self._snapshot: _SnapshotText | None = None
        self._step_contexts: dict[str, StepContext] = {}  # Function attempts in flight: their files
        self.runbook_dir = _runbook_dir(runbook, options)
        self.started_at = time.time()

    # ----------------------------------------------------------------- creation
    @classmethod
    def start(
        cls,
        runbook: Runbook,
        values: dict[str, Any],
        store: Store,
        options: RunOptions,
        *,
        namespace: dict[str, Any] | None = None,
    ) -> RunSession:
        parse_approvals(options.approvals, {n.id for n in runbook.nodes.values() if n.is_gate})
        critical = _render_critical(runbook, values)
        title = templating.render(runbook.meta.title, templating.make_context(values), "runbook title")
        run = store.create_run(
            workflow=runbook.meta.title,
            title=title,
            runbook_text=runbook.source_text,
            runbook_sha256=runbook.sha256,
            runbook_version=runbook.meta.version,
            variables=mask_variables(values, runbook),
            params={
                **options.public_params(),
                **({"legal_basis": runbook.meta.legal_basis} if runbook.meta.legal_basis else {}),
                **({"runbook_id": runbook.meta.id} if runbook.meta.id else {}),
            },
            trigger=options.trigger,
            actor=options.actor,
            host=socket.gethostname(),
            mode="headless" if options.headless else "interactive",
            node_ids=list(runbook.nodes),
        )
        session = cls(runbook, values, store, run.id, None, options, namespace)  # type: ignore[arg-type]
        session.engine = Engine(
            runbook,
            headless=options.headless,
            max_retries=options.max_retries,
            when=session._evaluate_when,
            critical=critical,
        )
        store.save_snapshot(run.id, session.engine.snapshot())
        session._flush()
        return session

    @classmethod
    def resume(
        cls,
        runbook: Runbook,
        values: dict[str, Any],
        store: Store,
        run_id: int,
        options: RunOptions,
        *,
        allow_changed: bool = False,
        namespace: dict[str, Any] | None = None,
    ) -> RunSession:
        run = store.get_run(run_id)
        if run.workflow != runbook.meta.title:
            raise SessionError(f"run {run_id} belongs to '{run.workflow}', not to '{runbook.meta.title}'")
        if run.status == "RUNNING":
            raise SessionError(
                f"run {run_id} is RUNNING; if its process is gone, mark it first: "
                f"playbook-nb set-status FILE {run_id} ABORTED"
            )
        if run.status != "ABORTED":
            raise SessionError(f"only ABORTED runs can be resumed (run {run_id} is {run.status})")
        if run.runbook_sha256 != runbook.sha256 and not allow_changed:
            raise SessionError(
                f"runbook changed since run {run_id} started (sha256 {run.runbook_sha256[:12]} -> "
                f"{runbook.sha256[:12]}); pass --allow-changed to resume with the new text"
            )
        critical = _render_critical(runbook, values)
        snapshot = store.load_snapshot(run_id)
        if snapshot is None:  # killed before its first transition: nothing ran yet
            snapshot = Engine(runbook, headless=options.headless, critical=critical).snapshot()
        if snapshot.get("run_state") == "RUNNING":
            # The process died mid-run and `set-status` marked the run ABORTED after the fact.
            snapshot = {**snapshot, "run_state": "ABORTED", "run_reason": run.status_reason}
        store.mark_interrupted(run_id)
        session = cls(runbook, values, store, run_id, None, options, namespace)  # type: ignore[arg-type]
        session.engine = Engine.restore(
            runbook,
            snapshot,
            headless=options.headless,
            max_retries=options.max_retries,
            when=session._evaluate_when,
            critical=critical,
        )
        store.append_event(
            run_id,
            "run_resumed",
            payload={"actor": options.actor, "trigger": options.trigger, "sha256": runbook.sha256},
        )
        session._reload_outputs()
        if session.engine.run_state is RunState.RUNNING:
            # orphaned: its process was killed mid-run and the run was marked ABORTED afterwards (set-status,
            # or a dead papermill kernel), so the saved engine state never saw the abort
            session.engine.abort(options.actor, run.status_reason or "marked ABORTED after its process died")
        session.engine.resume(options.actor)
        session._flush()
        return session

    # ----------------------------------------------------------------- queries
    @property
    def gate_ids(self) -> set[str]:
        return {n.id for n in self.runbook.nodes.values() if n.is_gate}

    @property
    def status(self) -> RunState:
        return self.engine.run_state

    def state(self, node_id: str) -> NodeState:
        return self.engine.state(node_id)

    def states(self) -> dict[str, str]:
        return {node_id: str(self.engine.state(node_id)) for node_id in self.runbook.nodes}

    def awaiting(self) -> list[tuple[str, str]]:
        """Nodes that need a human decision now, with the kind of decision: "gate" or "failure"."""
        return [
            (node_id, kind)
            for node_id in self.engine.awaiting_decision()
            if (kind := self.engine.pending_decision(node_id)) is not None
        ]

    def ready(self) -> list[str]:
        ids = self.engine.get_ready()
        self._flush()
        return ids

    def last_result(self, node_id: str) -> AttemptResult | None:
        return self._last_results.get(node_id)

    def explain(self, node_id: str) -> str:
        """Why a node is where it is, in words for a cell or a panel."""
        self._check_node(node_id)
        state = self.engine.state(node_id)
        reason = self.engine.reason(node_id)
        if self.engine.run_state is RunState.ABORTED and state in (NodeState.PENDING, NodeState.WAITING):
            return f"run {self.run_id} is ABORTED ({self._run_reason()}); resume it to continue"
        pending = self.engine.pending_decision(node_id)
        if pending == "gate":
            return f"gate '{node_id}' waits for a decision: Approve or Reject"
        if pending == "failure":
            return f"'{node_id}' failed; decide: Retry, Skip (non-critical only) or Abort"
        if state is NodeState.PENDING:
            blockers = self._blockers(node_id)
            if blockers:
                return "waits for " + ", ".join(blockers)
            return "pending"
        return f"{state}" + (f": {reason}" if reason else "")

    def rendered(self, node_id: str) -> dict[str, Any]:
        """The node's fields with variables substituted (secrets masked), for panels and docs."""
        node = self._check_node(node_id)
        context = self._context(node_id)
        where = f"node '{node_id}'"
        shown: dict[str, Any] = {}
        with contextlib.suppress(PlaybookError):
            if node.type is NodeType.COMMAND and node.command_name:
                shown["command"] = templating.render_command(node.command_name, context, where)
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

    # ----------------------------------------------------------------- actions
    def run_node(self, node_id: str, *, code: str | None = None) -> NodeReport:
        """Run one node if it is ready now; otherwise say why not. Never raises for a node failure."""
        self._check_node(node_id)
        if node_id in self._inflight:  # started in the background by an earlier cell: wait for it here
            report = self._collect(node_id, wait=True)
            report.background = True
            return report
        if node_id in self._background_reports:
            return self._background_reports.pop(node_id)
        if self.engine.run_state is not RunState.RUNNING:
            return self._report(node_id, ran=False)
        if node_id not in self.ready():
            return self._report(node_id, ran=False)
        if self.options.parallel > 1 and code is None and self._parallelizable(node_id):
            self._submit(node_id)
            self._submit_siblings()
            report = self._collect(node_id, wait=True)
            self._harvest()
            return report
        return self._execute(node_id, code=code)

    def run_until_gate(self, *, sleep: Callable[[float], None] = time.sleep) -> list[NodeReport]:
        """Run every ready node, in order, until nothing is ready: a gate waits, a failure needs a decision,
        or the run has ended."""
        if self.options.parallel > 1 or self._inflight:
            return self._run_parallel_until_gate(sleep)
        reports = []
        while self.engine.run_state is RunState.RUNNING:
            ready = self.ready()
            if not ready:
                break
            for node_id in ready:
                if self.engine.run_state is not RunState.RUNNING:
                    break
                if self.engine.state(node_id) is not NodeState.PENDING:
                    continue
                self._wait_retry_backoff(node_id, sleep)
                reports.append(self._execute(node_id))
        return reports

    def _wait_retry_backoff(self, node_id: str, sleep: Callable[[float], None]) -> None:
        """Before an automatic retry: record the backoff, then wait it out."""
        delay = self.engine.retry_delay(node_id)
        if delay:
            self.store.append_event(self.run_id, "retry_wait", node_id=node_id, payload={"seconds": delay})
            sleep(delay)

    def drive(self, decide: Callable[[RunSession, str, str], GateDecision | None]) -> RunState:
        """Run to the end, asking `decide(session, node_id, kind)` whenever a human decision is needed.
        `decide` returning None means nobody can decide: the run is aborted (fail closed)."""
        while self.engine.run_state is RunState.RUNNING:
            self.run_until_gate()
            if self.engine.run_state is not RunState.RUNNING:
                break
            awaiting = self.awaiting()
            if not awaiting:
                if not self.ready():
                    break
                continue
            for node_id, kind in awaiting:
                choice = decide(self, node_id, kind)
                if choice is None:
                    what = "approval" if kind == "gate" else "a decision after its failure"
                    self.abort(
                        self.options.actor, f"'{node_id}' awaits {what}; nobody could decide (fail closed)"
                    )
                    break
                self.decide(node_id, choice.decision, choice.actor, choice.comment)
                if self.engine.run_state is not RunState.RUNNING:
                    break
        return self.engine.run_state

    def decide(
        self, node_id: str, decision: Decision | str, actor: str | None = None, comment: str | None = None
    ):
        self._check_node(node_id)
        decision = Decision(decision)
        if decision is Decision.ABORT:
            self.abort(actor or self.options.actor, f"aborted at '{node_id}'", comment=comment)
            return
        self.engine.decided(node_id, decision, actor or self.options.actor, comment)
        if decision is Decision.SKIP:
            self._skip_failed_hosts(node_id, actor or self.options.actor)
        self._flush()

    def abort(self, actor: str | None, reason: str, *, comment: str | None = None) -> None:
        if self.engine.run_state is not RunState.RUNNING:
            return
        self.engine.abort(actor or self.options.actor, reason if not comment else f"{reason} ({comment})")
        self._flush()

    def close(self) -> None:
        """Nothing left to run: make sure the run's final status is written (idempotent)."""
        while self._inflight:  # attempts still running in workers end and are recorded first
            self._collect(next(iter(self._inflight)), wait=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        self.ready()
        self._flush()

    # ----------------------------------------------------------------- parallel branches (issue 9)
    def _parallelizable(self, node_id: str) -> bool:
        return self.runbook.node(node_id).type in (NodeType.COMMAND, NodeType.FUNCTION, NodeType.ANSIBLE)

    def _run_parallel_until_gate(self, sleep: Callable[[float], None]) -> list[NodeReport]:
        """run_until_gate with up to `options.parallel` Command/Function attempts in worker threads. Gates and
        Python nodes run here, one at a time. Every engine call and store write happens on this thread."""
        from concurrent.futures import FIRST_COMPLETED, wait

        reports: list[NodeReport] = []
        try:
            while True:
                ran_inline = False
                if self.engine.run_state is RunState.RUNNING:
                    for node_id in self.ready():
                        if self.engine.run_state is not RunState.RUNNING:
                            break
                        if self.engine.state(node_id) is not NodeState.PENDING or node_id in self._inflight:
                            continue
                        if self._parallelizable(node_id):
                            if len(self._inflight) < self.options.parallel:
                                self._submit(node_id)
                            continue
                        self._wait_retry_backoff(node_id, sleep)
                        reports.append(self._execute(node_id))
                        ran_inline = True
                        break  # readiness changed: look again
                if ran_inline:
                    continue
                if not self._inflight:
                    break
                done, _ = wait([future for _, future in self._inflight.values()], return_when=FIRST_COMPLETED)
                for node_id in [n for n, (_, f) in self._inflight.items() if f in done]:
                    reports.append(self._collect(node_id, wait=False))
        except KeyboardInterrupt:
            self._interrupt_inflight()
            raise
        return reports

    def _pool_executor(self) -> ThreadPoolExecutor:
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=max(1, int(self.options.parallel)), thread_name_prefix="playbook-node"
            )
        return self._pool

    def _submit(self, node_id: str) -> None:
        """Start an attempt (engine + store, here) and hand only the executor call to a worker."""
        node = self.runbook.node(node_id)
        delay = self.engine.retry_delay(node_id) or 0.0
        if delay:
            self.store.append_event(self.run_id, "retry_wait", node_id=node_id, payload={"seconds": delay})
        attempt = self.engine.started(node_id)
        self._flush()
        started = time.time() + delay
        self.store.start_attempt(self.run_id, node_id, attempt, started)
        try:
            call = self._prepare_call(node, None)  # templates are rendered here, against the engine's state
        except PlaybookError as err:
            failed = AttemptResult(ok=False, error=str(err), started_at=started, ended_at=time.time())
            call = lambda: failed  # noqa: E731

        def work() -> AttemptResult:
            if delay:
                time.sleep(delay)
            try:
                return call()
            except PlaybookError as err:
                return AttemptResult(ok=False, error=str(err), started_at=started, ended_at=time.time())
            except Exception as err:  # a bug in an executor must not lose the attempt
                return AttemptResult(
                    ok=False, error=f"{type(err).__name__}: {err}", started_at=started, ended_at=time.time()
                )

        self._inflight[node_id] = (attempt, self._pool_executor().submit(work))

    def _submit_siblings(self) -> None:
        """Notebook cells: also start the other ready Command/Function nodes, so their cells find them done."""
        for other in self.ready():
            if len(self._inflight) >= self.options.parallel:
                break
            if (
                other not in self._inflight
                and self._parallelizable(other)
                and self.engine.state(other) is NodeState.PENDING
            ):
                self._submit(other)

    def _collect(self, node_id: str, *, wait: bool) -> NodeReport:
        attempt, future = self._inflight[node_id]
        if not wait and not future.done():
            raise SessionError(f"'{node_id}' is still running")
        try:
            result = future.result()
        except KeyboardInterrupt:
            self._interrupt_inflight()
            raise
        del self._inflight[node_id]
        return self._finish_attempt(self.runbook.node(node_id), attempt, result)

    def _harvest(self) -> None:
        """Record attempts that ended in the background; their cells show the reports later."""
        for node_id in [n for n, (_, f) in self._inflight.items() if f.done()]:
            report = self._collect(node_id, wait=False)
            report.background = True
            self._background_reports[node_id] = report

    def _interrupt_inflight(self) -> None:
        for node_id, (attempt, future) in list(self._inflight.items()):
            future.cancel()
            self.store.finish_attempt(
                self.run_id, node_id, attempt, status="INTERRUPTED", ended_at=time.time(),
                exit_code=None, stdout="", stderr="", result=None, error="interrupted by the operator",
            )  # fmt: skip
        self._inflight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # ----------------------------------------------------------------- step outputs (issue 9)
    def _steps_context(self, node_id: str | None = None) -> dict[str, Any]:
        """`steps` for the templates of `node_id` (of any node when None): every node's outputs and state,
        or nothing at all for a node whose templates never name `steps` (it would only cost time)."""
        if self.engine is None or (node_id is not None and node_id not in self._reads_steps):
            return {}
        return {
            other: {"outputs": dict(self.outputs.get(other, {})), "state": str(self.engine.state(other))}
            for other in self.runbook.nodes
        }

    def _record_outputs(self, node: Node, attempt: int, result: AttemptResult) -> None:
        """Take the declared outputs of a successful attempt (a missing one fails it), keep the real values for
        templates, and write them, secrets masked, to the index as an `outputs` event."""
        from playbook_nb.domain.outputs import OUTPUT_EVENT, OutputError, extract_outputs

        if not result.ok or node.outputs is None:
            return
        try:
            given = getattr(result, "outputs", None)  # a rehearsal fixture may give them directly
            outputs = dict(given) if given is not None else extract_outputs(node, result, self.namespace)
        except OutputError as err:
            result.ok = False
            result.error = str(err)
            return
        self.outputs[node.id] = outputs
        self.store.append_event(
            self.run_id,
            OUTPUT_EVENT,
            node_id=node.id,
            attempt=attempt,
            payload={"outputs": self.redactor.redact_obj(outputs)},
        )

    def _reload_outputs(self) -> None:
        """Resume: outputs of finished (OK) nodes come back from the index (secrets stay masked there)."""
        from playbook_nb.domain.outputs import load_outputs

        for node_id, outputs in load_outputs(self.store, self.run_id).items():
            if node_id in self.runbook.nodes and self.engine.state(node_id) is NodeState.OK:
                self.outputs[node_id] = outputs

    # ----------------------------------------------------------------- internals
    def _check_node(self, node_id: str) -> Node:
        try:
            return self.runbook.node(node_id)
        except KeyError:
            raise SessionError(f"runbook '{self.runbook.meta.title}' has no node '{node_id}'") from None

    def _blockers(self, node_id: str) -> list[str]:
        node = self.runbook.node(node_id)
        blockers = []
        for dep in node.depends_on:
            state = self.engine.state(dep.node)
            if state in (NodeState.PENDING, NodeState.RUNNING, NodeState.WAITING) or (
                self.engine.pending_decision(dep.node) is not None
            ):
                what = "gate" if self.runbook.node(dep.node).is_gate else "node"
                blockers.append(f"{what} '{dep.node}' ({state})")
        return blockers

    def _run_reason(self) -> str:
        try:
            return self.store.get_run(self.run_id).status_reason or "no reason recorded"
        except StoreError:
            return "no reason recorded"

    def _report(
        self, node_id: str, *, ran: bool, result: AttemptResult | None = None, attempt=None
    ) -> NodeReport:
        return NodeReport(
            node_id=node_id,
            state=self.engine.state(node_id),
            ran=ran,
            message=self.explain(node_id),
            result=result,
            attempt=attempt,
        )

    def _context(self, node_id: str | None = None, **extra) -> dict[str, Any]:
        extra.setdefault("steps", self._steps_context(node_id))
        extra.setdefault("execution", self._execution_context())
        return templating.make_context(
            self.values,
            has_succeeded=self.engine.has_succeeded,
            has_failed=self.engine.has_failed,
            **extra,
        )

    def _execution_context(self) -> dict[str, Any]:
        """`execution` in templates: the run's id, start (ISO, UTC) and seconds since it started."""
        from datetime import UTC, datetime

        return {
            "id": self.run_id,
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            "duration": round(time.time() - self.started_at, 3),
        }

    def _evaluate_when(self, node: Node, engine: Engine) -> bool:
        if not node.when:
            return True
        steps = (
            {
                node_id: {"outputs": dict(self.outputs.get(node_id, {})), "state": str(engine.state(node_id))}
                for node_id in self.runbook.nodes
            }
            if "steps" in node.when
            else {}
        )
        context = templating.make_context(
            self.values, has_succeeded=engine.has_succeeded, has_failed=engine.has_failed, steps=steps
        )
        return templating.render_bool(node.when, context, f"node '{node.id}', field 'when'")

    def _execute(self, node_id: str, *, code: str | None = None) -> NodeReport:
        node = self.runbook.node(node_id)
        attempt = self.engine.started(node_id)
        self._flush()
        if node.is_gate:
            if self.options.headless:
                self._decide_gate_headless(node_id)
            return self._report(node_id, ran=False, attempt=attempt)

        started = time.time()
        self.store.start_attempt(self.run_id, node_id, attempt, started)
        try:
            result = self._call_executor(node, code)
        except PlaybookError as err:  # a template or plugin problem found at run time: the attempt fails
            result = AttemptResult(ok=False, error=str(err), started_at=started, ended_at=time.time())
        except KeyboardInterrupt:
            self.store.finish_attempt(
                self.run_id, node_id, attempt, status="INTERRUPTED", ended_at=time.time(),
                exit_code=None, stdout="", stderr="", result=None, error="interrupted by the operator",
            )  # fmt: skip
            raise
        return self._finish_attempt(node, attempt, result)

    def _finish_attempt(self, node: Node, attempt: int, result: AttemptResult) -> NodeReport:
        """Outputs, masking, the index and the engine, for an attempt that has ended (on the driving thread)."""
        node_id = node.id
        step_context = self._step_contexts.pop(node_id, None)
        if step_context is not None:
            collect_artifacts(self.store, self.run_id, node_id, attempt, step_context, result)
        self._record_outputs(node, attempt, result)
        recorder = self._host_recorders.pop(node_id, None)
        if recorder is not None and getattr(result, "hosts", None) is not None:
            recorder.finish(result)  # type: ignore[arg-type]
        result = self._redact_result(result)
        self._last_results[node_id] = result
        self.store.finish_attempt(
            self.run_id,
            node_id,
            attempt,
            status="OK" if result.ok else "NOK",
            ended_at=result.ended_at or time.time(),
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            result=result.to_dict().get("return_value"),
            error=result.error,
        )
        self.engine.finished(node_id, AttemptOutcome(ok=result.ok, error=result.error))
        self._flush()
        return self._report(node_id, ran=True, result=result, attempt=attempt)

    def _decide_gate_headless(self, node_id: str) -> None:
        choice = self.gate_decider(node_id) if self.gate_decider is not None else None
        choice = choice or headless_gate_decision(
            node_id,
            approvals=self._approvals,
            policy=self.options.gate_policy,
            actor=self.options.actor,
            comment=self.options.comment,
        )
        if choice is None:
            self.abort(
                self.options.actor,
                f"gate '{node_id}' awaits approval: no approval given and gate policy is "
                f"{self.options.gate_policy} (resume with --approve {node_id})",
            )
        else:
            self.decide(node_id, choice.decision, choice.actor, choice.comment)

    def _call_executor(self, node: Node, code: str | None) -> AttemptResult:
        return self._prepare_call(node, code)()

    def _prepare_call(self, node: Node, code: str | None) -> Callable[[], AttemptResult]:
        """Render the node's templates now (they read the engine's state) and return the call that runs it."""
        rehearsal = None
        if self.executor is not None:  # rehearsal: a fake executor, nothing runs ...
            fake = self.executor
            rehearsal = getattr(fake, "rehearsal_spec", lambda _node: None)(node)
            if rehearsal is None:
                return lambda: fake(node)
            # ... except a plugin that rehearses with the fixture standing in for the world
        context = self._context(node.id)
        where = f"node '{node.id}'"
        on_output = self._output_callback(node.id)
        if node.is_fleet:
            return self._prepare_fleet_call(node, context, where, on_output)
        if node.type is NodeType.COMMAND:
            command = templating.render_command(
                node.command_name or "", context, f"{where}, field 'command_name'"
            )
            timeout = _as_timeout(node.timeout, context, where)
            return lambda: run_command(
                command,
                timeout=timeout,
                env={**os.environ, "PLAYBOOK_RUN_ID": str(self.run_id), "PLAYBOOK_NODE_ID": node.id},
                on_output=on_output,
                stdin_tty=node.interactive and sys.stdin.isatty(),
            )
        if node.type is NodeType.FUNCTION:
            params = templating.render_params(node.function_params, context, where)
            config = merge_plugin_config(
                self.runbook.meta.plugin_config.get(node.plugin or "", {}), node.plugin_config
            )
            timeout = _as_timeout(node.timeout, context, where)
            self._add_secrets(secret_values(node.plugin or "", node.function or "", params))
            step_context = new_step_context(
                run_id=self.run_id,
                node_id=node.id,
                attempt=self.engine.attempts(node.id),
                runbook_dir=self.runbook_dir,
                update_baselines=self.options.update_baselines,
                rehearsal=rehearsal,
                started_at=self.started_at,
            )
            self._step_contexts[node.id] = step_context
            return lambda: run_function(
                node.plugin or "",
                node.function or "",
                params,
                plugin_config=config,
                timeout=timeout,
                on_output=on_output,
                context=step_context,
            )
        if node.type is NodeType.PYTHON:

            def python_call() -> AttemptResult:
                with self._redacted_std_streams():
                    return run_python(
                        code if code is not None else node.code or "", self.namespace, filename=node.id
                    )

            return python_call
        raise SessionError(f"node '{node.id}' of type {node.type} cannot be executed")

    def _prepare_fleet_call(self, node: Node, context, where: str, on_output) -> Callable[[], AttemptResult]:
        """A node with targets or an Ansible node (issue 21): hosts planned and recorded here."""
        from playbook_nb.app.fleet_calls import prepare_fleet_call

        call, recorder = prepare_fleet_call(
            node,
            self.runbook,
            values=self.values,
            context=context,
            timeout=_as_timeout(node.timeout, context, where),
            store=self.store,
            run_id=self.run_id,
            attempt=self.engine.attempts(node.id),
            redact=self.redactor.redact,
            env={"PLAYBOOK_RUN_ID": str(self.run_id), "PLAYBOOK_NODE_ID": node.id},
            on_output=on_output,
            host_listeners=self.host_listeners,
        )
        self._host_recorders[node.id] = recorder
        return call

    def _skip_failed_hosts(self, node_id: str, actor: str) -> None:
        """Skip after a fleet node failed: its hosts not OK are recorded SKIPPED (the decision says who)."""
        if not self.runbook.node(node_id).is_fleet:
            return
        rows = [
            r
            for r in self.store.latest_hosts(self.run_id, node_id).values()
            if r.state in ("NOK", "PENDING", "ADDED")
        ]
        for row in rows:
            self.store.record_hosts(
                self.run_id, node_id, row.attempt,
                [{"host": row.host, "position": row.position, "state": "SKIPPED", "membership": row.membership,
                  "exit_code": row.exit_code, "stdout": row.stdout, "stderr": row.stderr,
                  "error": f"{row.error + '; ' if row.error else ''}skipped by {actor}",
                  "started_at": row.started_at, "ended_at": row.ended_at}],
            )  # fmt: skip

    def _add_secrets(self, values: list[str]) -> None:
        """Mask these values too from now on (secret plugin parameters, such as an Authorization header)."""
        new = [v for v in values if v and v not in self._secrets]
        if new:
            self._secrets.extend(new)
            self.redactor = Redactor(self._secrets)

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

    def _redact_result(self, result: AttemptResult) -> AttemptResult:
        if not self.redactor:
            return result
        result.stdout = self.redactor.redact(result.stdout)
        result.stderr = self.redactor.redact(result.stderr)
        result.error = self.redactor.redact(result.error) if result.error else result.error
        result.return_value = self.redactor.redact_obj(result.return_value)
        return result

    def _flush(self) -> None:
        """Write every engine event to the store as it happened, then tell the listeners. The events of one
        flush describe one transition: they and the snapshot are written in one transaction."""
        events = self.engine.pop_events()
        if not events:
            return
        if self._snapshot is None or self._snapshot.engine is not self.engine:
            self._snapshot = _SnapshotText(self.engine)
        with self.store.batch():
            self._write_events(events)
            self.store.save_snapshot(self.run_id, self._snapshot.text({e.node for e in events if e.node}))
        for event in events:
            for listener in self.event_listeners:
                listener(event)

    def _write_events(self, events: list[EngineEvent]) -> None:
        for event in events:
            reason = self.redactor.redact(event.reason) if event.reason else event.reason
            payload = self.redactor.redact_obj({**event.data, "state": event.state, "reason": reason})
            if event.kind == "node_state" and event.node:
                self.store.set_node_state(
                    self.run_id,
                    event.node,
                    event.state,
                    reason=reason,
                    attempts=self.engine.attempts(event.node),
                    failed=self.engine.has_failed(event.node),
                )
            elif event.kind == "decision" and event.node:
                self.store.record_decision(
                    self.run_id,
                    event.node,
                    event.data.get("decision"),
                    event.data.get("actor"),
                    event.data.get("comment"),
                    time.time(),
                )
            elif event.kind == "run_state":
                final = event.state != "RUNNING"
                self.store.set_run_status(
                    self.run_id, event.state, reason=reason, ended_at=time.time() if final else None
                )
            self.store.append_event(
                self.run_id, event.kind, node_id=event.node, attempt=event.attempt, payload=payload
            )


class _SnapshotText:
    """The engine snapshot as the JSON text the store saves (the same text as `to_json(engine.snapshot())`),
    kept node by node: a node's entry changes only with an event naming it, so after a flush only those
    nodes are serialised again, and saving the snapshot after every flush stays cheap in a large runbook."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._nodes = {node_id: to_json(data) for node_id, data in engine.snapshot()["nodes"].items()}
        self._keys = {node_id: to_json(node_id) for node_id in sorted(self._nodes)}

    def text(self, changed: set[str]) -> str:
        """The whole snapshot, after the nodes in `changed` (and the run's own fields) are read again."""
        snapshot = self.engine.snapshot(node_ids=changed)
        for node_id, data in snapshot.pop("nodes").items():
            self._nodes[node_id] = to_json(data)
        nodes = ",".join(f"{key}:{self._nodes[node_id]}" for node_id, key in self._keys.items())
        fields = {to_json(key): to_json(value) for key, value in snapshot.items()}
        fields[to_json("nodes")] = "{" + nodes + "}"
        return "{" + ",".join(f"{key}:{fields[key]}" for key in sorted(fields)) + "}"


class _RedactingStream:
    def __init__(self, stream, redactor: Redactor):
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        return self._stream.write(self._redactor.redact(text))

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _render_critical(runbook: Runbook, values: dict[str, Any]) -> dict[str, bool]:
    context = templating.make_context(values)
    return {
        node.id: templating.render_bool(node.critical, context, f"node '{node.id}', field 'critical'")
        if isinstance(node.critical, str)
        else bool(node.critical)
        for node in runbook.nodes.values()
    }


def _runbook_dir(runbook: Runbook, options: RunOptions) -> Path | None:
    """Where a step's relative files are: the option, else the folder of the runbook file (if it is one)."""
    if options.runbook_dir:
        return Path(options.runbook_dir)
    if runbook.path and Path(runbook.path).is_file():
        return Path(runbook.path).resolve().parent
    return None


def _as_timeout(value: int | str, context: dict[str, Any], where: str) -> float | None:
    if isinstance(value, str):
        value = templating.render_int(value, context, f"{where}, field 'timeout'")
    return float(value) if value and value > 0 else None
