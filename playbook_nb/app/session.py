"""RunSession: one run of one runbook, driven by any face.

The terminal runner, the notebook cells, the widget buttons and papermill all call this class. It is a small
front over parts with one job each: the pure engine (rules), the node-call builder (templates, `when`, the
call an executor runs), the executor (doing, passed in), the recorder (events, snapshots and attempts to the
store, secrets masked), the worker pool (parallel branches) and the gate policy (who decides a gate nobody is
at, passed in or built from the options). Executor, gate policy and clock are given at construction, so
rehearsal and replay plug in their own.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbook_nb.adapters.store import Store
from playbook_nb.adapters.store.owner import Owner
from playbook_nb.app import faults
from playbook_nb.app.abort import AbortSwitch
from playbook_nb.app.identity import local_identity
from playbook_nb.app.node_calls import NodeCallBuilder, OutputListener, render_critical
from playbook_nb.app.ownership import LeaseKeeper, recover_run
from playbook_nb.app.plugin_checks import check_plugins
from playbook_nb.app.ports import SYSTEM_CLOCK, AttemptResult, Clock, Executor
from playbook_nb.app.recorder import EventListener, Recorder, load_outputs
from playbook_nb.app.step_files import collect_artifacts
from playbook_nb.app.worker_pool import WorkerPool
from playbook_nb.constants import NOTIFY_FAILED_EVENT
from playbook_nb.domain import templating
from playbook_nb.domain.decisions import (
    DecisionRefused,
    GateDecision,
    GatePolicy,
    check_gate_policy,
    decision_refusal,
    parse_approvals,
)
from playbook_nb.domain.engine import AttemptOutcome, Decision, Engine, NodeState, RunState
from playbook_nb.domain.errors import PlaybookError, RunbookError, RunOwned, StorageFault, StoreError, where
from playbook_nb.domain.lifecycle import (
    changed_variables,
    check_resumable,
    check_variables,
    resume_snapshot,
)
from playbook_nb.domain.model import Node, NodeType, Runbook
from playbook_nb.domain.redact import Redactor, mask_variables
from playbook_nb.domain.validation import check_timeouts

if TYPE_CHECKING:
    from playbook_nb.app.fleet_calls import HostListener

__all__ = ["EventListener", "NodeReport", "OutputListener", "RunOptions", "RunSession", "SessionError"]


class SessionError(PlaybookError):
    """A run cannot be started as asked (bad options, unknown node); a refused resume is a LifecycleError."""


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
    # a gate nobody decides (no approval, no policy) waits this many seconds for a decision from anywhere
    # (`playbook-nb approve`, the REST API) before the run stops ABORTED; 0: fail closed at once
    gate_wait: float = 0.0
    # from the configuration ([groups], [notify]): who belongs to the groups a gate's approvers name, and
    # where the run's messages go (an app.notify.NotifySettings, or None)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notify: Any = None

    def __post_init__(self) -> None:
        self.actor = self.actor or local_identity()
        check_gate_policy(self.gate_policy)
        if float(self.gate_wait) < 0:
            raise SessionError(f"gate wait must be 0 or more seconds, not {self.gate_wait}")
        if int(self.max_retries) < 0:  # checked before a run row exists (the engine would refuse it later)
            raise SessionError(f"max retries must be 0 or more, not {self.max_retries}")

    def public_params(self) -> dict[str, Any]:
        return {
            "headless": self.headless,
            "max_retries": self.max_retries,
            "gate_policy": self.gate_policy,
            "approvals": dict(self.approvals),
            **({"parallel": int(self.parallel)} if int(self.parallel) > 1 else {}),
            **({"gate_wait": float(self.gate_wait)} if self.gate_wait else {}),
            **({"runbook_dir": self.runbook_dir} if self.runbook_dir else {}),
            **({"update_baselines": True} if self.update_baselines else {}),
            **self.extra_params,
        }

    def gate_policy_for(self, runbook: Runbook) -> GatePolicy:
        """The gate policy these options describe (approvals checked against the runbook's gates)."""
        gates = {n.id for n in runbook.nodes.values() if n.is_gate}
        return GatePolicy(
            parse_approvals(self.approvals, gates), self.gate_policy, actor=self.actor, comment=self.comment
        )


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
    # files the attempt left in the run's artifacts ({name, url, type}: a screenshot, its pixelmatch diff image)
    artifacts: list[dict[str, Any]] = field(default_factory=list)


Decider = Callable[["RunSession", str, str], GateDecision | None]
# how a face allows a resume with changed variables (the refusal names both)
CHANGED_VARIABLES_HINT = "--allow-changed-vars, or allow_changed_vars = True in a notebook's parameters"
STORAGE_RETRY = 3.0  # seconds a run that met a storage fault keeps trying to record itself ABORTED


class RunSession:
    def __init__(
        self,
        runbook: Runbook,
        values: dict[str, Any],
        store: Store,
        run_id: int,
        options: RunOptions,
        *,
        executor: Executor,
        gate_policy: GatePolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        namespace: dict[str, Any] | None = None,
    ):
        self.runbook = runbook
        self.values = values
        self.store = store
        self.run_id = run_id
        self.options = options
        self.gate_policy = gate_policy or options.gate_policy_for(runbook)
        self.clock = clock
        self.redactor = Redactor(
            (values[name] for name in runbook.secret_names if values.get(name)), shapes=True
        )  # declared secrets, and well-known shapes a command prints (cloud keys, tokens, private keys)
        self.namespace = namespace if namespace is not None else {}
        self.namespace.update(values)
        self.recorder = Recorder(store, run_id, self.redactor, clock)
        self.calls = NodeCallBuilder(
            runbook,
            values,
            run_id=run_id,
            executor=executor,
            redactor=self.redactor,
            clock=clock,
            namespace=self.namespace,
            store=store,
            runbook_dir=_runbook_dir(runbook, options),
            update_baselines=options.update_baselines,
        )
        self.pool = WorkerPool(options.parallel, clock)
        # replaced by start() / resume(); a templated `critical` needs its rendered value even here
        self.engine = Engine(runbook, headless=options.headless, critical=render_critical(runbook, values))
        self._last_results: dict[str, AttemptResult] = {}
        self._background_reports: dict[str, NodeReport] = {}
        # Abort means stop now (issue 13): the switch every face throws, from any thread or a signal handler;
        # `idle` is called while an attempt waits on the driving thread (the terminal watches its output
        # pipe there); the process group of each command now running, as its executor reported it.
        self.abort_switch = AbortSwitch()
        self.idle: Callable[[], None] | None = None
        self._driver = threading.current_thread()  # engine and store calls happen on this thread
        self.process_groups: dict[str, int] = {}
        # gates decided from elsewhere while this run waited (node -> gate wait id), closed 'applied' with the
        # decision; and why a wait ended without one (node -> reason), for the abort that follows
        self._decided_waits: dict[str, int] = {}
        self._expired_waits: dict[str, str] = {}
        self._started_by: str | None = None  # the run's recorded actor (four_eyes), read when first needed
        self.notifications: Any = None  # app.notify.Notifications, with [notify] targets
        # ownership (issue 13): the owner this session drives the run as, and its lease; a watch-only session
        # (another session owns the run) shows the record and refuses every action
        self.owner: Owner | None = None
        self.lease: LeaseKeeper | None = None
        self.watch_only = False

    @property
    def event_listeners(self) -> list[EventListener]:
        return self.recorder.event_listeners

    @property
    def output_listeners(self) -> list[OutputListener]:
        return self.calls.output_listeners

    @property
    def host_listeners(self) -> list[HostListener]:
        return self.calls.host_listeners

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return self.calls.outputs

    # ----------------------------------------------------------------- creation
    @classmethod
    def start(
        cls,
        runbook: Runbook,
        values: dict[str, Any],
        store: Store,
        options: RunOptions,
        *,
        executor: Executor,
        gate_policy: GatePolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        namespace: dict[str, Any] | None = None,
    ) -> RunSession:
        gate_policy = gate_policy or options.gate_policy_for(runbook)  # bad approvals: refused before a row
        # an unknown plugin or function, a bad parameter: refused before a row
        check_plugins(runbook, executor.plugins, values)
        check_timeouts(runbook, values)  # a templated timeout that is not a number with these values, too
        critical = render_critical(runbook, values)
        _refuse_skipped_critical(runbook, critical)
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
            owner=(owner := Owner.this_process(options.actor)),
        )
        session = cls(
            runbook, values, store, run.id, options,
            executor=executor, gate_policy=gate_policy, clock=clock, namespace=namespace,
        )  # fmt: skip
        session._own(owner, run.version)
        session.engine = Engine(
            runbook,
            headless=options.headless,
            max_retries=options.max_retries,
            when=session.calls.evaluate_when,
            critical=critical,
        )
        session.recorder.save_whole(session.engine)  # the first flush then writes only what changed
        session._attach_notifications()
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
        executor: Executor,
        gate_policy: GatePolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        allow_changed: bool = False,
        allow_changed_variables: bool = False,
        namespace: dict[str, Any] | None = None,
        decisions: Mapping[str, Decision] | None = None,
        take_over: bool = False,
    ) -> RunSession:
        """Continue an ABORTED run, or a RUNNING one whose owner is gone (orphaned) or that `take_over` takes
        from its live owner: its recorded process groups are killed first (see app.ownership). Variable
        values other than the recorded ones are refused unless `allow_changed_variables`: then the change is
        a `variables_changed` event and every gate approved before waits for a decision again (an approval
        is for what the approver saw). `decisions`: what to do with nodes that wait for a decision after
        their failure (Retry, or Skip for a non-critical node), taken at once, so a resume without a
        terminal can finish such a run (`resume --retry NODE`); a decision the rules refuse is refused
        before the run is resumed."""
        owner = Owner.this_process(options.actor)
        run = store.get_run(run_id)
        if run.status == "RUNNING" and run.workflow == runbook.meta.title:
            recover_run(store, run_id, owner, take_over=take_over)
            run = store.get_run(run_id)
        check_resumable(
            run_id,
            status=run.status,
            workflow=run.workflow,
            title=runbook.meta.title,
            recorded_sha256=run.runbook_sha256,
            sha256=runbook.sha256,
            allow_changed=allow_changed,
        )
        masked = mask_variables(values, runbook)
        changes = changed_variables(run.variables or {}, masked)
        check_variables(run_id, changes, allow=allow_changed_variables, hint=CHANGED_VARIABLES_HINT)
        critical = render_critical(runbook, values)
        snapshot = store.load_snapshot(run_id)
        if snapshot is None:  # killed before its first transition: nothing ran yet
            snapshot = Engine(runbook, headless=options.headless, critical=critical).snapshot()
        snapshot = resume_snapshot(snapshot, run.status_reason)
        if decisions:
            _check_resume_decisions(runbook, snapshot, options, critical, decisions)
        claimed = store.claim_run(run_id, owner)
        store.mark_interrupted(run_id)
        session = cls(
            runbook, values, store, run_id, options,
            executor=executor, gate_policy=gate_policy, clock=clock, namespace=namespace,
        )  # fmt: skip
        session._own(owner, claimed.version)
        session.engine = Engine.restore(
            runbook,
            snapshot,
            headless=options.headless,
            max_retries=options.max_retries,
            when=session.calls.evaluate_when,
            critical=critical,
        )
        session.recorder.event(
            "run_resumed", {"actor": options.actor, "trigger": options.trigger, "sha256": runbook.sha256}
        )
        if run.runbook_sha256 != runbook.sha256:  # allowed (--allow-changed): the record keeps every text
            revision = store.add_revision(run_id, runbook.source_text, runbook.sha256, options.actor)
            session.recorder.event(
                "runbook_revised",
                {
                    "revision": revision,
                    "from": run.runbook_sha256,
                    "sha256": runbook.sha256,
                    "actor": options.actor,
                },
            )
        if changes:
            session._variables_changed(changes, masked)
        for node_id, outputs in load_outputs(store, run_id).items():  # secrets stay masked there
            if node_id in runbook.nodes and session.engine.state(node_id) is NodeState.OK:
                session.outputs[node_id] = outputs
        if session.engine.run_state is RunState.RUNNING:
            # orphaned: its process was killed mid-run and the run was marked ABORTED afterwards (set-status,
            # or a dead papermill kernel), so the saved engine state never saw the abort
            session.engine.abort(options.actor, run.status_reason or "marked ABORTED after its process died")
        session.engine.resume(options.actor)
        session._attach_notifications()
        session._flush()
        for node_id, decision in (decisions or {}).items():
            session.decide(  # given as arguments (resume --retry/--skip), as --approve's are: "parameter"
                node_id, decision, options.actor, options.comment or "decided at resume", source="parameter"
            )
        return session

    @classmethod
    def watch(
        cls,
        runbook: Runbook,
        values: dict[str, Any],
        store: Store,
        run_id: int,
        options: RunOptions,
        *,
        executor: Executor,
        namespace: dict[str, Any] | None = None,
    ) -> RunSession:
        """A watch-only view of a run another session drives: its states as recorded (`sync()` brings them
        up to date), every action refused; nothing is written."""
        session = cls(runbook, values, store, run_id, options, executor=executor, namespace=namespace)
        session.watch_only = True
        session.recorder.watch_only = True
        session.sync(force=True)
        return session

    def sync(self, *, force: bool = False) -> bool:
        """A watch-only view: reload the engine from the record when the run moved on. True if it did."""
        run = self.store.get_run(self.run_id)
        if not force and run.version == self.recorder.version:
            return False
        snapshot = run.snapshot
        critical = render_critical(self.runbook, self.values)
        if snapshot is None:
            engine = Engine(self.runbook, headless=self.options.headless, critical=critical)
        else:
            engine = Engine.restore(
                self.runbook,
                snapshot,
                headless=self.options.headless,
                max_retries=self.options.max_retries,
                when=self.calls.evaluate_when,
                critical=critical,
            )
        engine.pop_events()
        self.engine = engine
        self.recorder.version = run.version
        return True

    def owner_line(self) -> str:
        """Who drives the run now, as recorded ("driven by ...", "orphaned (owner gone since ...)", "")."""
        return self.store.owner_status(self.run_id).describe()

    def _own(self, owner: Owner, version: int) -> None:
        self.owner = owner
        self.recorder.owner_token = owner.token
        self.recorder.version = version
        self.lease = LeaseKeeper(self.store, self.run_id, owner).start()

    def _check_driving(self) -> None:
        if self.watch_only:
            raise RunOwned(
                f"run {self.run_id} is {self.owner_line() or 'not driven from here'}; this view is watch-only"
            )
        self._check_thread()

    def _check_thread(self) -> None:
        if not self._on_driver_thread():
            # the engine and the index connection are this thread's: a second thread would write into the
            # transaction the first has open (a face's handler delivered elsewhere: kernel_ext.kernel_thread)
            raise SessionError(
                f"run {self.run_id} is driven from thread '{self._driver.name}', "
                f"not from '{threading.current_thread().name}': nothing was done"
            )

    def _on_driver_thread(self) -> bool:
        return threading.current_thread() is self._driver

    def _variables_changed(self, changes: dict[str, tuple[Any, Any]], masked: dict[str, Any]) -> None:
        """A resume explicitly allowed other variable values: the run records the new values, the change is an
        event with its actor, and every approved gate is open again."""
        reopened = self.engine.reopen_gates(
            f"open again: variables changed ({', '.join(changes)}) after it was approved"
        )
        self.recorder.event(
            "variables_changed",
            {
                "actor": self.options.actor,
                "changes": {name: {"from": old, "to": new} for name, (old, new) in changes.items()},
                "gates_reopened": reopened,
            },
        )
        self.store.set_variables(self.run_id, masked)

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

    def running_in_background(self, node_id: str) -> bool:
        """An attempt of this node runs in a worker (a parallel branch started by another cell)."""
        return node_id in self.pool

    def explain(self, node_id: str) -> str:
        """Why a node is where it is, in words for a cell or a panel."""
        self._check_node(node_id)
        state = self.engine.state(node_id)
        reason = self.engine.reason(node_id)
        if self.engine.run_state is RunState.ABORTED and state in (NodeState.PENDING, NodeState.WAITING):
            interrupted = f"{reason}; " if reason and reason.startswith("interrupted") else ""
            return f"{interrupted}run {self.run_id} is ABORTED ({self._run_reason()}); resume it to continue"
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

    def report(
        self, node_id: str, *, ran: bool, result: AttemptResult | None = None, attempt: int | None = None
    ) -> NodeReport:
        """The node as it is now, for its cell or the terminal."""
        return NodeReport(
            node_id=node_id,
            state=self.engine.state(node_id),
            ran=ran,
            message=self.explain(node_id),
            result=result,
            attempt=attempt,
        )

    def rendered(self, node_id: str) -> dict[str, Any]:
        """The node's fields with variables substituted (secrets masked), for panels and docs."""
        return self.calls.rendered(self.engine, self._check_node(node_id))

    # ----------------------------------------------------------------- actions
    def run_node(self, node_id: str, *, code: str | None = None) -> NodeReport:
        """Run one node if it is ready now; otherwise say why not. Never raises for a node failure."""
        self._check_driving()
        self._check_node(node_id)
        if node_id in self.pool:  # started in the background by an earlier cell: wait for it here
            report = self._collect(node_id, wait=True)
            report.background = True
            return report
        if node_id in self._background_reports:
            return self._background_reports.pop(node_id)
        self._apply_abort_request()
        if self.engine.run_state is not RunState.RUNNING or node_id not in self.ready():
            return self.report(node_id, ran=False)
        if self.options.parallel > 1 and code is None and self._parallelizable(node_id):
            self._submit(node_id)
            self._submit_siblings()
            report = self._collect(node_id, wait=True)
            self._harvest()
            return report
        return self._execute(node_id, code=code)

    def run_until_gate(self) -> list[NodeReport]:
        """Run every ready node, in order, until nothing is ready: a gate waits, a failure needs a decision,
        or the run has ended. Command/Function attempts run in workers, up to `options.parallel` at once;
        gates and Python nodes run here, one at a time. Every engine call and store write happens here."""
        self._check_thread()
        if self.options.parallel <= 1 and not len(self.pool):
            return self._run_sequentially()
        reports: list[NodeReport] = []
        try:
            while True:
                self._apply_abort_request()
                node_id = self._next_inline()
                if node_id is not None:
                    self._wait_retry_backoff(node_id)
                    reports.append(self._execute(node_id))
                    continue  # readiness changed: look again
                if not len(self.pool):
                    break
                finished = self.pool.wait_any(timeout=0.05)
                if not finished:
                    self._idle_on_driver()
                for node_id in finished:
                    reports.append(self._collect(node_id, wait=False))
        except KeyboardInterrupt:
            self._interrupt_inflight()
            raise
        return reports

    def _run_sequentially(self) -> list[NodeReport]:
        reports = []
        while self._apply_abort_request() is RunState.RUNNING:
            ready = self.ready()
            if not ready:
                break
            for node_id in ready:
                if self._apply_abort_request() is not RunState.RUNNING:
                    break
                if self.engine.state(node_id) is not NodeState.PENDING:
                    continue
                self._wait_retry_backoff(node_id)
                reports.append(self._execute(node_id))
        return reports

    def _next_inline(self) -> str | None:
        """Start ready parallel branches in workers; the first ready node to run on this thread, if any."""
        if self.engine.run_state is not RunState.RUNNING:
            return None
        for node_id in self.ready():
            if self.engine.run_state is not RunState.RUNNING:
                return None
            if self.engine.state(node_id) is not NodeState.PENDING or node_id in self.pool:
                continue
            if self._parallelizable(node_id):
                if not self.pool.full:
                    self._submit(node_id)
                continue
            return node_id
        return None

    def drive(self, decide: Decider) -> RunState:
        """Run to the end, asking `decide(session, node_id, kind)` whenever a human decision is needed.
        `decide` returning None means nobody can decide: the run is aborted (fail closed)."""
        while self._apply_abort_request() is RunState.RUNNING:
            self.run_until_gate()
            if self._apply_abort_request() is not RunState.RUNNING:
                break
            awaiting = self.awaiting()
            if not awaiting:
                if not self.ready():
                    break
                continue
            for node_id, kind in awaiting:
                choice = decide(self, node_id, kind)
                if self._apply_abort_request() is not RunState.RUNNING:
                    break
                if choice is None:
                    what = "approval" if kind == "gate" else "a decision after its failure"
                    reason = self._expired_waits.pop(node_id, None)
                    self.abort(
                        self.options.actor,
                        reason or f"'{node_id}' awaits {what}; nobody could decide (fail closed)",
                    )
                    break
                self.decide(node_id, choice.decision, choice.actor, choice.comment, source=choice.source)
                if self.engine.run_state is not RunState.RUNNING:
                    break
        return self.engine.run_state

    def decide_waiting_gates(self, *, parameters_only: bool = False, comment: str | None = None) -> None:
        """Decide every waiting gate the gate policy can decide (only the approvals parameters when
        `parameters_only`, as at resume); the others keep waiting."""
        for node_id, kind in self.awaiting():
            if kind != "gate":
                continue
            choice = (
                self.gate_policy.approval(node_id) if parameters_only else self.gate_policy.decide(node_id)
            )
            if choice is None:
                continue
            refusal = self.decision_refusal(node_id, choice.actor)
            if refusal is not None:  # the gate keeps waiting; the run stops there with this reason
                self._expired_waits[node_id] = refusal
                continue
            self.decide(
                node_id, choice.decision, choice.actor, comment or choice.comment, source=choice.source
            )

    def decision_refusal(self, node_id: str, actor: str) -> str | None:
        """Why `actor` may not decide gate `node_id` (its approvers, four_eyes), or None when they may."""
        node = self._check_node(node_id)
        if node.approvers is None and not node.four_eyes:
            return None
        if self._started_by is None:
            self._started_by = self.store.get_run(self.run_id).actor or ""
        return decision_refusal(
            node_id, node.approvers, node.four_eyes, actor, self._started_by, self.options.groups
        )

    def unattended_decision(self, node_id: str) -> GateDecision | None:
        """The decision for a gate nobody is at: the gate policy's (recorded, parameters, policy); else, with
        `options.gate_wait`, one made from anywhere before the deadline (the run stays RUNNING, the node
        WAITING meanwhile); else None: fail closed."""
        choice = self.gate_policy.decide(node_id)
        if choice is not None:
            refusal = self.decision_refusal(node_id, choice.actor)
            if refusal is None and choice.source == "policy" and self.runbook.node(node_id).four_eyes:
                refusal = f"gate '{node_id}' needs four eyes: a gate policy does not decide it"
            if refusal is None:
                return choice
            self.recorder.event(
                "decision_refused",
                {"node": node_id, "actor": choice.actor, "source": choice.source, "reason": refusal},
            )
            self._expired_waits[node_id] = f"{refusal} (resume with --approve {node_id} as an approver)"
        if not self.options.gate_wait:
            return None
        from playbook_nb.app.gate_wait import format_seconds, wait_at_gate

        seconds = float(self.options.gate_wait)

        def opened(deadline: float) -> None:
            self.recorder.event(
                "gate_waiting",
                {"node": node_id, "seconds": seconds, "until": deadline},
            )

        outcome = wait_at_gate(
            self.store,
            self.run_id,
            node_id,
            seconds,
            stopped=lambda: self.abort_switch.requested,
            on_open=opened,
        )
        if outcome.decision is not None:
            self._decided_waits[node_id] = outcome.wait_id
            return outcome.decision
        self._expired_waits[node_id] = (
            f"gate '{node_id}' waited {format_seconds(seconds)} for approval: {outcome.reason} "
            f"(resume with --approve {node_id})"
        )
        return None

    def decide(
        self,
        node_id: str,
        decision: Decision | str,
        actor: str | None = None,
        comment: str | None = None,
        *,
        source: str | None = None,
    ) -> None:
        self._check_thread()  # before the compare-and-set reads the index
        node = self._check_node(node_id)
        decision = Decision(decision)
        if self.watch_only or decision in self.engine.allowed_decisions(node_id):
            # compare-and-set: the run still at the version this view knows, the node still in its state
            self.store.check_decision(
                self.run_id, node_id, version=self.recorder.version, states=(str(self.engine.state(node_id)),)
            )
        self._check_driving()
        if decision is Decision.ABORT:
            self.abort(actor or self.options.actor, f"aborted at '{node_id}'", comment=comment)
            return
        if node.is_gate and source != "replay":  # a replay re-enacts decisions already allowed once
            refusal = self.decision_refusal(node_id, actor or self.options.actor)
            if refusal is not None:
                self._decided_waits.pop(node_id, None)
                raise DecisionRefused(refusal)
        self.engine.decided(node_id, decision, actor or self.options.actor, comment, source=source)
        if decision is Decision.SKIP and self.runbook.node(node_id).is_fleet:
            from playbook_nb.app.fleet_calls import skip_failed_hosts  # asyncssh: see NodeCallBuilder.build

            skip_failed_hosts(self.store, self.run_id, node_id, actor or self.options.actor)
        wait_id = self._decided_waits.pop(node_id, None)
        if wait_id is None:
            self._flush()
            return
        with self.store.batch():  # the decision and the closing of the wait it came through: one transaction
            self._flush()
            self.store.close_gate_wait(wait_id, "applied", expected="decided")

    def abort(self, actor: str | None, reason: str, *, comment: str | None = None) -> None:
        """Abort the run now: every attempt in flight is stopped (its process group killed) and recorded
        INTERRUPTED when it has ended; the run is ABORTED (resumable). From another thread than the driver's,
        the abort switch alone: what runs stops now, and the driver records the abort at its next safe point."""
        on_driver = self._on_driver_thread()
        if on_driver or self.watch_only:
            self._check_driving()
        if self.engine.run_state is not RunState.RUNNING:
            return
        self.abort_switch.request(
            reason if not comment else f"{reason} ({comment})", actor or self.options.actor
        )
        if on_driver:
            self._apply_abort_request()

    def _apply_abort_request(self) -> RunState:
        """At a safe point (never inside a store write): an abort asked for by a signal, a click or a fault
        is applied to the engine and the index. Returns the run state."""
        switch = self.abort_switch
        if switch.requested and self.engine.run_state is RunState.RUNNING:
            self.engine.abort(switch.actor or self.options.actor, switch.reason or "aborted")
            self._flush()
        return self.engine.run_state

    def storage_fault(self, err: StorageFault) -> bool:
        """The run record failed under this run: stop every attempt in flight, then record the run ABORTED,
        retrying for a few seconds; if the index still refuses, leave the note that the next opening of the
        index applies (playbook_nb.adapters.store.pending). True when ABORTED is recorded now."""
        from playbook_nb.adapters.store import pending

        reason = f"storage fault: {err}"
        self.abort_switch.request(reason)
        while (node_id := self.pool.first()) is not None:
            with contextlib.suppress(Exception):
                self.pool.collect(node_id, wait=True)
        self.pool.shutdown()
        deadline = time.monotonic() + STORAGE_RETRY
        while True:
            try:
                pending.record_aborted(self.store, self.run_id, reason)
                return True
            except StoreError:
                if time.monotonic() >= deadline:
                    pending.remember(self.store, self.run_id, reason)
                    return False
                time.sleep(0.25)

    def close(self) -> None:
        """Nothing left to run: make sure the run's final status is written (idempotent)."""
        if self.watch_only:
            return
        while (node_id := self.pool.first()) is not None:  # attempts still in workers end and are recorded
            self._collect(node_id, wait=True)
        self.pool.shutdown()
        self.ready()
        self._flush()
        if self.notifications is not None:  # messages still queued get a few seconds, then the run is done
            self.notifications.close()
            for problem in self.notifications.problems():  # on record: a headless run's log may go nowhere
                with contextlib.suppress(PlaybookError):
                    self.recorder.event(NOTIFY_FAILED_EVENT, problem)
            self.notifications.failed.clear()
            self.notifications.unsent = 0

    def _attach_notifications(self) -> None:
        """With `[notify]` targets: tell them, from a worker thread, when a gate waits, a node fails, the run
        ends (app.notify); secrets masked."""
        if self.options.notify is None:
            return
        from playbook_nb.app.notify import Notifications, RunFacts

        run = self.store.get_run(self.run_id)
        prompts = {}
        for node_id in self.gate_ids:
            try:
                prompts[node_id] = str(self.rendered(node_id).get("prompt") or "")
            except PlaybookError:
                prompts[node_id] = self.runbook.node(node_id).prompt_after
        facts = RunFacts(run.id, run.number, run.workflow, run.title, run.actor, prompts)
        self.notifications = Notifications(self.options.notify, facts, self.redactor)
        self.event_listeners.append(self.notifications.on_event)

    # ----------------------------------------------------------------- attempts
    def _parallelizable(self, node_id: str) -> bool:
        return self.runbook.node(node_id).type in (NodeType.COMMAND, NodeType.FUNCTION, NodeType.ANSIBLE)

    def _wait_retry_backoff(self, node_id: str) -> None:
        """Before an automatic retry: record the backoff, then wait it out."""
        delay = self.engine.retry_delay(node_id)
        if delay:
            self.recorder.retry_wait(node_id, delay)
            self.clock.sleep(delay)

    def _begin(
        self, node_id: str, delay: float = 0.0, code: str | None = None
    ) -> tuple[Node, int, float, Callable[[], AttemptResult]]:
        """Start an attempt: the transition, the attempt's row and what it runs (`_prepare`, templates
        rendered against the engine now) in one transaction (issue 18.2). A gate gets no attempt row and
        a call that is never made."""
        node = self.runbook.node(node_id)
        with self.store.batch():
            attempt = self.engine.started(node_id)
            self._flush()
            started = self.clock.time() + delay
            if node.is_gate:
                return node, attempt, started, _no_call
            # a command's processes carry this token from their start: recorded now, it lets a recovery find
            # them before the command's process group is recorded (a command that ends within 50 ms never is)
            process_token = (
                secrets.token_hex(16) if node.type is NodeType.COMMAND and not node.is_fleet else None
            )
            host = self.owner.host if process_token and self.owner is not None else None
            self.recorder.attempt_started(node_id, attempt, started, process_token=process_token, host=host)
            call = self._prepare(node, attempt, started, code, process_token)
        return node, attempt, started, call

    def _execute(self, node_id: str, *, code: str | None = None) -> NodeReport:
        node, attempt, started, call = self._begin(node_id, code=code)
        if node.is_gate:
            if self.options.headless:
                self._decide_gate_headless(node_id)
            return self.report(node_id, ran=False, attempt=attempt)
        result = self._call(node, attempt, started, call)
        faults.point(f"after-command:{node_id}")  # the reliability suite cuts a run here
        return self._end(node, attempt, result)

    async def run_node_async(self, node_id: str, *, code: str | None = None) -> NodeReport:
        """`run_node` for a kernel's event loop: a Command or Function attempt runs in a worker thread while
        this coroutine awaits it, so the kernel keeps dispatching widget messages (an Abort click stops the
        command at once). Python nodes, gates, fleet nodes and parallel runs take the synchronous path."""
        import asyncio

        node = self._check_node(node_id)
        self._check_driving()
        if (
            node_id in self.pool
            or node_id in self._background_reports
            or self.options.parallel > 1
            or node.is_fleet
            or node.type not in (NodeType.COMMAND, NodeType.FUNCTION)
        ):
            return self.run_node(node_id, code=code)
        self._apply_abort_request()
        if self.engine.run_state is not RunState.RUNNING or node_id not in self.ready():
            return self.report(node_id, ran=False)
        node, attempt, started, call = self._begin(node_id, code=code)
        result = await asyncio.to_thread(self._call, node, attempt, started, call)
        return self._end(node, attempt, result)

    def _prepare(
        self,
        node: Node,
        attempt: int,
        started: float,
        code: str | None = None,
        process_token: str | None = None,
    ) -> Callable[[], AttemptResult]:
        """The call of an attempt, with its cancel event (Abort), its idle hook and its process-group report;
        a failed attempt for a template or plugin problem found at run time. What the call runs is recorded
        with the attempt (`attempt_ran`), so reports show what ran, never a later re-rendering."""
        try:
            call, ran = self.calls.prepare(
                self.engine,
                node,
                code,
                cancel=self.abort_switch.cancel_event(node.id),
                idle=self._idle_on_driver,
                on_spawn=lambda pgid, attempt=self.engine.attempts(node.id): self._command_started(
                    node.id, attempt, pgid
                ),
                process_token=process_token,
            )
        except PlaybookError as err:
            failed = AttemptResult(ok=False, error=str(err), started_at=started, ended_at=self.clock.time())
            return lambda: failed
        self.recorder.attempt_ran(node.id, attempt, ran)
        return call

    def _call(
        self, node: Node, attempt: int, started: float, call: Callable[[], AttemptResult]
    ) -> AttemptResult:
        """Run an attempt's call (on any thread). A KeyboardInterrupt (the executor has stopped what it ran)
        is recorded as an interrupted attempt and an abort, then propagates."""
        try:
            return call()
        except PlaybookError as err:
            return AttemptResult(ok=False, error=str(err), started_at=started, ended_at=self.clock.time())
        except KeyboardInterrupt:
            self.abort_switch.request("interrupted (KeyboardInterrupt)")
            if self._on_driver_thread():
                stopped = AttemptResult(ok=False, error="interrupted", started_at=started, interrupted=True)
                self._end(node, attempt, stopped)
            raise

    def _end(self, node: Node, attempt: int, result: AttemptResult) -> NodeReport:
        report = self._finish_attempt(node, attempt, result)
        self._apply_abort_request()
        return report

    def _idle_on_driver(self) -> None:
        """While an attempt waits on the driving thread (never in a worker): the face's `idle` hook."""
        if self.idle is not None and self._on_driver_thread():
            self.idle()

    def _command_started(self, node_id: str, attempt: int, pgid: int) -> None:
        """The executor's report of a command's process group (on the thread that started it): kept here
        for Abort, and in the index, so whoever recovers an orphaned run can make sure it is gone."""
        self.process_groups[node_id] = pgid
        if self.lease is not None:
            self.lease.command_started(node_id, attempt, pgid)

    def _submit(self, node_id: str) -> None:
        """Start an attempt (engine and store, here) and hand only the executor call to a worker."""
        delay = self.engine.retry_delay(node_id) or 0.0
        if delay:
            self.recorder.retry_wait(node_id, delay)
        # the templates are rendered here, against the engine
        node, attempt, started, call = self._begin(node_id, delay)
        self.pool.submit(node_id, attempt, call, delay=delay)

    def _submit_siblings(self) -> None:
        """Notebook cells: also start the other ready Command/Function nodes, so their cells find them done."""
        for other in self.ready():
            if self.pool.full:
                break
            if (
                other not in self.pool
                and self._parallelizable(other)
                and self.engine.state(other) is NodeState.PENDING
            ):
                self._submit(other)

    def _collect(self, node_id: str, *, wait: bool) -> NodeReport:
        try:
            attempt, result = self.pool.collect(node_id, wait=wait)
        except KeyboardInterrupt:
            self._interrupt_inflight()
            raise
        return self._finish_attempt(self.runbook.node(node_id), attempt, result)

    def _harvest(self) -> None:
        """Record attempts that ended in the background; their cells show the reports later."""
        for node_id in self.pool.done():
            report = self._collect(node_id, wait=False)
            report.background = True
            self._background_reports[node_id] = report

    def _interrupt_inflight(self) -> None:
        """A KeyboardInterrupt while branches run: stop them all, wait for them, record them INTERRUPTED."""
        self.abort_switch.request("interrupted (KeyboardInterrupt)")
        while (node_id := self.pool.first()) is not None:
            attempt, result = self.pool.collect(node_id, wait=True)  # stopped by the switch: quick
            self._finish_attempt(self.runbook.node(node_id), attempt, result)
        self.pool.shutdown(cancel=True)
        self._apply_abort_request()

    def _finish_attempt(self, node: Node, attempt: int, result: AttemptResult) -> NodeReport:
        """Files, outputs, masking, the index and the engine, for an attempt that has ended."""
        self.abort_switch.done(node.id)
        self.process_groups.pop(node.id, None)
        step_context = self.calls.step_contexts.pop(node.id, None)
        if result.interrupted:
            self.calls.host_recorders.pop(node.id, None)
            return self._interrupted_attempt(node, attempt, result)
        stored = (
            collect_artifacts(self.store, self.run_id, node.id, attempt, step_context, result)
            if step_context is not None
            else []
        )
        outputs = self.recorder.take_outputs(node, attempt, result, self.namespace)
        if outputs is not None:
            self.outputs[node.id] = outputs
        hosts = self.calls.host_recorders.pop(node.id, None)
        if hosts is not None and getattr(result, "hosts", None) is not None:
            hosts.finish(result)  # type: ignore[arg-type]
        with self.store.batch():  # the attempt's end and the transition it makes: one transaction
            result = self.recorder.attempt_finished(node.id, attempt, result)
            self._last_results[node.id] = result
            self.engine.finished(node.id, AttemptOutcome(ok=result.ok, error=result.error))
            self._flush()
        report = self.report(node.id, ran=True, result=result, attempt=attempt)
        report.artifacts = stored
        return report

    def _interrupted_attempt(self, node: Node, attempt: int, result: AttemptResult) -> NodeReport:
        """An attempt stopped from outside: INTERRUPTED in the index, PENDING with the reason in the engine."""
        why = self.abort_switch.reason or "stopped"
        result.error = f"interrupted: {why}"
        result = self.recorder.attempt_interrupted(node.id, attempt, result)
        self._last_results[node.id] = result
        self.engine.interrupted(node.id, why)
        self._flush()
        return self.report(node.id, ran=True, result=result, attempt=attempt)

    def _decide_gate_headless(self, node_id: str) -> None:
        choice = self.unattended_decision(node_id)
        if choice is None:
            reason = self._expired_waits.pop(node_id, None) or self.gate_policy.fail_closed_reason(node_id)
            self.abort(self.options.actor, reason)
        else:
            self.decide(node_id, choice.decision, choice.actor, choice.comment, source=choice.source)

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
            return self.recorder.run_reason()
        except StoreError:
            return "no reason recorded"

    def _flush(self) -> None:
        self.recorder.flush(self.engine)


def _no_call() -> AttemptResult:
    raise AssertionError("a gate is decided, never called")


def _check_resume_decisions(
    runbook: Runbook,
    snapshot: dict[str, Any],
    options: RunOptions,
    critical: dict[str, bool],
    decisions: Mapping[str, Decision],
) -> None:
    """Try the decisions on a scratch engine restored from the same snapshot: the engine's own refusal
    (not waiting for a decision, critical nodes cannot be skipped, max retries reached) in one line."""
    trial = Engine.restore(
        runbook, snapshot, headless=options.headless, max_retries=options.max_retries, critical=critical
    )
    if trial.run_state is RunState.RUNNING:
        trial.abort(options.actor, "trial")
    trial.resume(options.actor)
    for node_id, decision in decisions.items():
        if node_id not in runbook.nodes:
            raise SessionError(f"unknown node '{node_id}' (nodes: {', '.join(runbook.nodes)})")
        if trial.pending_decision(node_id) != "failure":
            raise SessionError(
                f"cannot {decision} '{node_id}': it does not wait for a decision after a failure "
                f"(it is {trial.state(node_id)})"
            )
        trial.decided(node_id, decision, options.actor)


def _refuse_skipped_critical(runbook: Runbook, critical: dict[str, bool]) -> None:
    """`skip = true` on a node whose templated `critical` renders true (a literal one is refused by parsing)."""
    for node_id, is_critical in critical.items():
        if is_critical and runbook.nodes[node_id].skip:
            raise RunbookError(
                f"node '{node_id}' is critical and cannot be skipped", where(runbook.path, node_id, "skip")
            )


def _runbook_dir(runbook: Runbook, options: RunOptions) -> Path | None:
    """Where a step's relative files are: the option, else the folder of the runbook file (if it is one)."""
    if options.runbook_dir:
        return Path(options.runbook_dir)
    if runbook.path and Path(runbook.path).is_file():
        return Path(runbook.path).resolve().parent
    return None
