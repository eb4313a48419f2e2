"""The run engine: a pure state machine owning every rule of a run (DESIGN.md, "Rules the engine owns").

No I/O, no clock, no threads. Shaped like `graphlib.TopologicalSorter`: ask what is ready, tell it what
happened, ask for the run status. Every face (terminal, notebook cells, widget, papermill) drives this one
engine; each transition is recorded as an `EngineEvent` for the store (`pop_events()`).

Typical loop (the caller owns executors, the clock and the decisions)::

    engine = Engine(runbook, headless=True, when=evaluate_when)
    while not engine.is_done():
        for node_id in engine.get_ready():
            delay = engine.retry_delay(node_id)      # sleep this long first, if not None
            engine.started(node_id)                  # Manual nodes now WAIT for decided()/abort()
            if not runbook.node(node_id).is_gate:
                engine.finished(node_id, AttemptOutcome(ok=run_it(node_id)))
        ...                                          # answer pending decisions (gates, failures)
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.lifecycle import interrupted_reason
from playbook_nb.domain.model import DepCondition, Dependency, Node, Runbook
from playbook_nb.domain.values import bool_word

SNAPSHOT_VERSION = 1


class EngineError(PlaybookError):
    """An operation the engine refuses (invalid decision, node not ready, run finished); one clear line."""


class NodeState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    WAITING = "WAITING"  # needs a decision (a gate waiting for approval)
    OK = "OK"
    NOK = "NOK"
    SKIPPED = "SKIPPED"


class RunState(StrEnum):
    RUNNING = "RUNNING"
    OK = "OK"
    NOK = "NOK"
    ABORTED = "ABORTED"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    RETRY = "retry"
    SKIP = "skip"
    ABORT = "abort"


class PendingDecision(StrEnum):
    """What a node waiting for a decision waits for."""

    GATE = "gate"  # a Manual node: approve or reject
    FAILURE = "failure"  # a failed node (interactive): retry, skip or abort


GATE = PendingDecision.GATE
FAILURE = PendingDecision.FAILURE


class EventKind(StrEnum):
    NODE_STATE = "node_state"
    DECISION = "decision"
    RUN_STATE = "run_state"
    RETRY_SCHEDULED = "retry_scheduled"


REASON_SKIP_IN_RUNBOOK = "skip = true in runbook"
REASON_SKIPPED_BY_OPERATOR = "skipped by operator"
REASON_SKIPPED_BY_POLICY = "skipped by policy (non-critical failure)"
REASON_FAILURE_CONTINUED = "failed; run continues (on_failure = continue)"


def _text(value: PendingDecision | None) -> str | None:
    """A pending decision as the plain word events carry (their data is JSON for the record)."""
    return None if value is None else str(value)


@dataclass(frozen=True)
class AttemptOutcome:
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class EngineEvent:
    """One transition, in order, for the record (`pop_events()`). `state` is a NodeState for NODE_STATE and
    RETRY_SCHEDULED events, a RunState for RUN_STATE events, None for DECISION events."""

    kind: EventKind
    node: str | None
    attempt: int | None
    state: NodeState | RunState | None
    reason: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeSnapshot:
    """One node's part of an engine snapshot."""

    state: NodeState = NodeState.PENDING
    reason: str | None = None
    attempts: int = 0
    failed: bool = False
    error: str | None = None
    pending: PendingDecision | None = None
    auto_retries: int = 0
    operator_retries: int = 0
    retry_delay: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "reason": self.reason,
            "attempts": self.attempts,
            "failed": self.failed,
            "error": self.error,
            "pending": None if self.pending is None else str(self.pending),
            "auto_retries": self.auto_retries,
            "operator_retries": self.operator_retries,
            "retry_delay": self.retry_delay,
        }

    @classmethod
    def from_json(cls, node_id: str, data: Mapping[str, Any]) -> NodeSnapshot:
        pending = data.get("pending")
        try:
            pending = None if pending is None else PendingDecision(pending)
        except ValueError:
            raise EngineError(
                f"snapshot: node '{node_id}' has unknown pending decision {pending!r}"
            ) from None
        delay = data.get("retry_delay")
        return cls(
            state=NodeState(data["state"]),
            reason=data.get("reason"),
            attempts=int(data.get("attempts", 0)),
            failed=bool(data.get("failed", False)),
            error=data.get("error"),
            pending=pending,
            auto_retries=int(data.get("auto_retries", 0)),
            operator_retries=int(data.get("operator_retries", 0)),
            retry_delay=None if delay is None else float(delay),
        )


@dataclass(frozen=True)
class EngineSnapshot:
    """The engine's state, for the record and `Engine.restore()`; `to_json()` is what the store keeps."""

    run_state: RunState
    run_reason: str | None
    failing: dict[str, str] | None
    nodes: dict[str, NodeSnapshot]
    version: int = SNAPSHOT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "run_state": str(self.run_state),
            "run_reason": self.run_reason,
            "failing": dict(self.failing) if self.failing else None,
            "nodes": {nid: node.to_json() for nid, node in self.nodes.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineSnapshot:
        if data.get("version") != SNAPSHOT_VERSION:
            raise EngineError(f"unsupported engine snapshot version {data.get('version')!r}")
        try:
            failing = data.get("failing")
            return cls(
                run_state=RunState(data["run_state"]),
                run_reason=data.get("run_reason"),
                failing=dict(failing) if failing else None,
                nodes={nid: NodeSnapshot.from_json(nid, node) for nid, node in data["nodes"].items()},
            )
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise EngineError(f"engine snapshot is malformed: {err}") from None


@dataclass
class _NodeRun:
    state: NodeState = NodeState.PENDING
    reason: str | None = None
    attempts: int = 0
    failed: bool = False  # the last attempt failed (kept when the node is then skipped)
    error: str | None = None
    pending: PendingDecision | None = None
    auto_retries: int = 0
    operator_retries: int = 0
    retry_delay: float | None = None
    # not persisted (re-evaluated after restore): dependencies satisfied and `when` passed, so the node may
    # start whenever it is PENDING (again after a retry)
    cleared: bool = False
    when_error: bool = False

    @property
    def final(self) -> bool:
        if self.state in (NodeState.OK, NodeState.SKIPPED):
            return True
        return self.state is NodeState.NOK and self.pending is None


def _parse_critical(node: Node) -> bool:
    value = node.critical
    if isinstance(value, bool):
        return value
    text = str(value)
    flag = bool_word(text) if text.strip() else False
    if flag is not None:
        return flag
    raise EngineError(
        f"node '{node.id}': critical is a template ({value!r}); pass its rendered value through critical="
    )


class Engine:
    """Pure run state machine. See the module docstring for the driving loop."""

    def __init__(
        self,
        runbook: Runbook,
        *,
        headless: bool,
        max_retries: int = 3,
        when: Callable[[Node, Engine], bool] | None = None,
        critical: Mapping[str, bool] | None = None,
        _restoring: bool = False,
    ):
        if max_retries < 0:
            raise EngineError(f"max retries must be 0 or more, not {max_retries}")
        self._runbook = runbook
        self._nodes: dict[str, Node] = dict(runbook.nodes)
        self.headless = headless
        self.max_retries = max_retries
        self._when = when
        self._critical = self._resolve_critical(critical or {})
        self._children: dict[str, list[tuple[str, DepCondition]]] = {nid: [] for nid in self._nodes}
        for node in self._nodes.values():
            for dep in node.depends_on:
                if dep.node not in self._nodes:
                    raise EngineError(f"node '{node.id}' depends on unknown node '{dep.node}'")
                self._children[dep.node].append((node.id, dep.condition))
        sorter = graphlib.TopologicalSorter({nid: n.upstream for nid, n in self._nodes.items()})
        try:
            self._topo = list(sorter.static_order())
        except graphlib.CycleError as err:
            raise EngineError(f"dependency cycle: {' -> '.join(err.args[1])}") from None
        self._topo_index = {nid: i for i, nid in enumerate(self._topo)}
        self._declared_index = {nid: i for i, nid in enumerate(self._nodes)}
        self._runs: dict[str, _NodeRun] = {nid: _NodeRun() for nid in self._nodes}
        self._run_state = RunState.RUNNING
        self._run_reason: str | None = None
        self._failing: dict[str, str] | None = None  # {"node", "cause", "reason"} once in failing mode
        self._events: list[EngineEvent] = []
        self._unsettled = True  # a transition happened since the last `_settle()` (skips may be due)
        # Bookkeeping so that no call scans every node (a run stays linear in its size); all of it follows
        # from `_runs` and is rebuilt by `_reindex()`:
        # - nodes `_settle` must look at, in topological order: every node whose own state or whose
        #   dependency's state changed since it was last evaluated (no other node can have become evaluable);
        self._to_evaluate: list[tuple[int, str]] = []
        self._to_evaluate_ids: set[str] = set()
        # - PENDING and cleared (ready while the run is RUNNING), RUNNING, not yet final, and waiting for a
        #   decision nodes.
        self._ready: set[str] = set()
        self._running: set[str] = set()
        self._unfinished: set[str] = set()
        self._awaiting: set[str] = set()
        self._reindex()
        if not _restoring:  # every transition settles before it returns; construction is the first one
            self._settle()

    def _resolve_critical(self, overrides: Mapping[str, bool]) -> dict[str, bool]:
        for nid in overrides:
            if nid not in self._nodes:
                raise EngineError(f"critical: unknown node '{nid}'")
        return {
            nid: bool(overrides[nid]) if nid in overrides else _parse_critical(node)
            for nid, node in self._nodes.items()
        }

    # ------------------------------------------------------------------ queries

    @property
    def runbook(self) -> Runbook:
        return self._runbook

    @property
    def run_state(self) -> RunState:
        return self._run_state

    @property
    def run_reason(self) -> str | None:
        return self._run_reason

    @property
    def failing(self) -> dict[str, str] | None:
        """Failing-mode info ({"node", "cause", "reason"}), or None while the run has not failed."""
        return dict(self._failing) if self._failing else None

    def is_critical(self, node_id: str) -> bool:
        self._run(node_id)
        return self._critical[node_id]

    def state(self, node_id: str) -> NodeState:
        return self._run(node_id).state

    def reason(self, node_id: str) -> str | None:
        return self._run(node_id).reason

    def error(self, node_id: str) -> str | None:
        return self._run(node_id).error

    def attempts(self, node_id: str) -> int:
        return self._run(node_id).attempts

    def has_succeeded(self, node_id: str) -> bool:
        return self._run(node_id).state is NodeState.OK

    def has_failed(self, node_id: str) -> bool:
        return self._run(node_id).failed

    def is_final(self, node_id: str) -> bool:
        return self._run(node_id).final

    def pending_decision(self, node_id: str) -> PendingDecision | None:
        return self._run(node_id).pending

    def retry_delay(self, node_id: str) -> float | None:
        return self._run(node_id).retry_delay

    def awaiting_decision(self) -> list[str]:
        """Nodes waiting for a decision (gates and failures), in declaration order."""
        return sorted(self._awaiting, key=self._declared_index.__getitem__)

    def allowed_decisions(self, node_id: str) -> set[Decision]:
        run = self._run(node_id)
        if self._run_state is not RunState.RUNNING or run.pending is None:
            return set()
        allowed = {Decision.ABORT}
        if not self._critical[node_id]:
            allowed.add(Decision.SKIP)
        if run.pending == GATE:
            allowed |= {Decision.APPROVE, Decision.REJECT}
        elif run.operator_retries < self.max_retries:
            allowed.add(Decision.RETRY)
        return allowed

    def get_ready(self) -> list[str]:
        """Nodes that may start now, in declaration order.

        Every transition (construction, `started`, `finished`, `interrupted`, `decided`, `resume`) applies
        the skips that became certain and evaluates `when` of nodes whose dependencies are final before it
        returns (both emit events); a restored engine does so on its first `get_ready()`. A node stays ready
        (and is returned again) until `started()` is called. The queries (`state`, `is_done`,
        `allowed_decisions`, `awaiting_decision`, `snapshot`, ...) never change state.
        """
        if self._unsettled:  # only after restore(): every other transition has settled already
            self._settle()
        if self._run_state is not RunState.RUNNING:
            return []
        return sorted(self._ready, key=self._declared_index.__getitem__)

    def is_done(self) -> bool:
        """No node can make progress: the run has ended, or everything left waits for a decision.

        A query: it changes nothing (as `graphlib.TopologicalSorter.is_active`). Every transition applies
        the skips that became certain before it returns, so the answer is exact; only a restored engine
        waits for its first transition (`resume()` or `get_ready()`)."""
        if self._run_state is not RunState.RUNNING:
            return True
        return not self._unsettled and not self._running and not self._ready and bool(self._awaiting)

    # ------------------------------------------------------------------ transitions

    def started(self, node_id: str) -> int:
        """Start an attempt of a ready node; returns its attempt number (1-based). Manual: WAITING."""
        run = self._run(node_id)
        self._settle()
        if self._run_state is not RunState.RUNNING:
            raise EngineError(f"cannot start '{node_id}': run is {self._run_state}")
        if not self._is_ready(node_id):
            raise EngineError(f"cannot start '{node_id}': it is not ready (state {run.state})")
        run.attempts += 1
        run.retry_delay = None
        run.error = None
        if self._nodes[node_id].is_gate:
            run.pending = GATE
            self._set(node_id, NodeState.WAITING, "waiting for a decision")
        else:
            self._set(node_id, NodeState.RUNNING, None)
        self._settle()
        return run.attempts

    def finished(self, node_id: str, outcome: AttemptOutcome) -> None:
        """Record the outcome of a RUNNING node's attempt (also accepted after the run was aborted)."""
        run = self._run(node_id)
        if run.state is not NodeState.RUNNING:
            hint = "; gates are answered with decided()" if run.state is NodeState.WAITING else ""
            raise EngineError(f"cannot finish '{node_id}': it is not running (state {run.state}){hint}")
        if outcome.ok:
            run.failed = False
            run.error = None
            self._set(node_id, NodeState.OK, None)
        else:
            self._attempt_failed(node_id, outcome.error or "attempt failed")
        self._settle()

    def interrupted(self, node_id: str, reason: str) -> None:
        """A RUNNING node's attempt was stopped from outside (Abort, a signal, a dead driver): neither OK nor
        NOK. The node is PENDING again, its reason says why ("interrupted: ..."), and it runs again when the
        run resumes (also accepted after the run was aborted)."""
        run = self._run(node_id)
        if run.state is not NodeState.RUNNING:
            raise EngineError(f"cannot interrupt '{node_id}': it is not running (state {run.state})")
        self._set(node_id, NodeState.PENDING, interrupted_reason(run.attempts, reason))
        self._settle()

    def decided(
        self,
        node_id: str,
        decision: Decision,
        actor: str,
        comment: str | None = None,
        *,
        source: str | None = None,
    ) -> None:
        """Apply an operator's (or a policy's) decision on a node that waits for one. `source` says where it
        came from (server, cli, notebook, parameter, policy), recorded with it."""
        run = self._run(node_id)
        try:
            decision = Decision(decision)
        except ValueError:
            choices = ", ".join(d.value for d in Decision)
            raise EngineError(f"unknown decision {decision!r} for '{node_id}' (one of {choices})") from None
        verb = str(decision)
        if self._run_state is not RunState.RUNNING:
            hint = " (resume it first)" if self._run_state is RunState.ABORTED else ""
            raise EngineError(f"cannot {verb} '{node_id}': run is {self._run_state}{hint}")
        if run.pending is None:
            raise EngineError(
                f"cannot {verb} '{node_id}': it does not wait for a decision (state {run.state})"
            )
        if decision not in self.allowed_decisions(node_id):
            raise EngineError(self._refusal(node_id, decision))
        self._emit(
            EventKind.DECISION,
            node_id,
            run.attempts or None,
            None,
            None,
            {
                "decision": verb,
                "actor": actor,
                "comment": comment,
                "pending": _text(run.pending),
                **({"source": source} if source else {}),
            },
        )
        pending, run.pending = run.pending, None
        if decision is Decision.APPROVE:
            run.failed = False
            self._set(node_id, NodeState.OK, f"approved by {actor}")
        elif decision is Decision.REJECT:
            run.failed = True
            run.error = f"rejected by {actor}"
            self._set(node_id, NodeState.NOK, f"rejected by {actor}")
            self._enter_failing(node_id, "gate_rejected", f"not started: gate {node_id} rejected")
        elif decision is Decision.SKIP:
            self._set(node_id, NodeState.SKIPPED, REASON_SKIPPED_BY_OPERATOR)
        elif decision is Decision.RETRY:
            run.operator_retries += 1
            if run.when_error:
                run.cleared = False
                run.when_error = False
            self._set(
                node_id,
                NodeState.PENDING,
                f"retry by operator ({run.operator_retries} of {self.max_retries})",
            )
        else:  # ABORT: the node keeps waiting for its decision; resume() lets someone answer it
            run.pending = pending
            self.abort(actor, comment or f"aborted at '{node_id}'")
            return
        self._settle()

    def abort(self, actor: str, reason: str) -> None:
        """RUNNING -> ABORTED (resumable). Nothing is ready until `resume()`."""
        if self._run_state is not RunState.RUNNING:
            raise EngineError(f"cannot abort: run is {self._run_state}")
        self._set_run(RunState.ABORTED, reason, {"actor": actor})

    def resume(self, actor: str) -> None:
        """ABORTED -> RUNNING."""
        if self._run_state is not RunState.ABORTED:
            raise EngineError(f"only ABORTED runs can be resumed (run is {self._run_state})")
        self._set_run(RunState.RUNNING, f"resumed by {actor}", {"actor": actor})
        self._settle()

    def reopen_gates(self, reason: str) -> list[str]:
        """Every approved gate waits for a decision again (the run's variables changed after it was approved:
        an approval is for what the approver saw, and it covered everything behind the gate). A gate behind
        another open gate goes back to PENDING, so it is asked only once the gates before it are decided
        again. Returns the approved gates reopened, in declaration order."""
        approved = [
            nid for nid, n in self._nodes.items() if n.is_gate and self._runs[nid].state is NodeState.OK
        ]
        waiting = [
            nid
            for nid, n in self._nodes.items()
            if n.is_gate and self._runs[nid].state is NodeState.WAITING and self._runs[nid].pending == GATE
        ]
        open_gates = set(approved) | set(waiting)
        for node_id in sorted(open_gates, key=self._topo_index.__getitem__):
            run = self._runs[node_id]
            behind = sorted(self._ancestors(node_id) & open_gates, key=self._declared_index.__getitem__)
            if behind:
                run.pending = None
                self._set(node_id, NodeState.PENDING, f"{reason}; waits for gate {behind[-1]} first")
            elif node_id in approved:
                run.pending = GATE
                self._set(node_id, NodeState.WAITING, reason)
        return approved

    def _ancestors(self, node_id: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self._nodes[node_id].upstream)
        while stack:
            upstream = stack.pop()
            if upstream not in seen:
                seen.add(upstream)
                stack.extend(self._nodes[upstream].upstream)
        return seen

    def pop_events(self) -> list[EngineEvent]:
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ persistence

    def snapshot(self, node_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """JSON-serialisable state of the run (`EngineSnapshot.to_json()`), for `restore()`. With `node_ids`,
        only those nodes are in "nodes" (for a caller that keeps the others from an earlier snapshot: a node's
        entry changes only with an event naming that node)."""
        return self.snapshot_of(node_ids).to_json()

    def snapshot_of(self, node_ids: Iterable[str] | None = None) -> EngineSnapshot:
        ids = self._runs if node_ids is None else node_ids
        return EngineSnapshot(
            run_state=self._run_state,
            run_reason=self._run_reason,
            failing=dict(self._failing) if self._failing else None,
            nodes={nid: self._node_snapshot(self._run(nid)) for nid in ids},
        )

    @staticmethod
    def _node_snapshot(run: _NodeRun) -> NodeSnapshot:
        return NodeSnapshot(
            state=run.state,
            reason=run.reason,
            attempts=run.attempts,
            failed=run.failed,
            error=run.error,
            pending=run.pending,
            auto_retries=run.auto_retries,
            operator_retries=run.operator_retries,
            retry_delay=run.retry_delay,
        )

    @classmethod
    def restore(
        cls,
        runbook: Runbook,
        snapshot: Mapping[str, Any] | EngineSnapshot,
        *,
        headless: bool,
        max_retries: int = 3,
        when: Callable[[Node, Engine], bool] | None = None,
        critical: Mapping[str, bool] | None = None,
    ) -> Engine:
        """Rebuild an engine from `snapshot()`. RUNNING nodes become PENDING (their attempt was cut short)."""
        engine = cls(
            runbook, headless=headless, max_retries=max_retries, when=when, critical=critical, _restoring=True
        )
        typed = snapshot if isinstance(snapshot, EngineSnapshot) else EngineSnapshot.from_json(snapshot)
        for nid in typed.nodes:
            if nid not in engine._runs:
                raise EngineError(f"snapshot does not match the runbook: unknown node '{nid}'")
        for nid, node in typed.nodes.items():
            run = engine._runs[nid]
            run.state, run.reason, run.attempts = node.state, node.reason, node.attempts
            run.failed, run.error, run.pending = node.failed, node.error, node.pending
            run.auto_retries, run.operator_retries = node.auto_retries, node.operator_retries
            run.retry_delay = node.retry_delay
        engine._run_state = typed.run_state
        engine._run_reason = typed.run_reason
        engine._failing = dict(typed.failing) if typed.failing else None
        engine._reindex()
        for nid, run in engine._runs.items():
            if run.state is NodeState.RUNNING:
                engine._set(nid, NodeState.PENDING, interrupted_reason(run.attempts, "its process ended"))
        return engine

    # ------------------------------------------------------------------ internals

    def _run(self, node_id: str) -> _NodeRun:
        try:
            return self._runs[node_id]
        except KeyError:
            raise EngineError(f"unknown node '{node_id}'") from None

    def _is_ready(self, node_id: str) -> bool:
        return self._run_state is RunState.RUNNING and node_id in self._ready

    def _reindex(self) -> None:
        """Rebuild the bookkeeping from the node runs (after construction and restore)."""
        self._to_evaluate, self._to_evaluate_ids = [], set()
        self._ready, self._running, self._unfinished, self._awaiting = set(), set(), set(), set()
        for nid in self._topo:
            self._track(nid)
            self._mark_for_evaluation(nid)

    def _track(self, node_id: str) -> None:
        """Keep the ready / running / unfinished sets in step with one node's run."""
        run = self._runs[node_id]
        for members, member in (
            (self._ready, run.state is NodeState.PENDING and run.cleared),
            (self._running, run.state is NodeState.RUNNING),
            (self._unfinished, not run.final),
            (self._awaiting, run.pending is not None),
        ):
            if member:
                members.add(node_id)
            else:
                members.discard(node_id)

    def _mark_for_evaluation(self, node_id: str) -> None:
        if node_id not in self._to_evaluate_ids:
            self._to_evaluate_ids.add(node_id)
            heapq.heappush(self._to_evaluate, (self._topo_index[node_id], node_id))

    def _emit(
        self,
        kind: EventKind,
        node: str | None,
        attempt: int | None,
        state: NodeState | RunState | None,
        reason: str | None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self._events.append(EngineEvent(kind, node, attempt, state, reason, dict(data or {})))

    def _set(self, node_id: str, state: NodeState, reason: str | None) -> None:
        run = self._runs[node_id]
        run.state = state
        run.reason = reason
        self._unsettled = True
        self._track(node_id)
        self._mark_for_evaluation(node_id)
        for child, _condition in self._children[node_id]:
            self._mark_for_evaluation(child)
        self._emit(
            EventKind.NODE_STATE,
            node_id,
            run.attempts or None,
            state,
            reason,
            {"failed": run.failed, "error": run.error, "pending": _text(run.pending)},
        )

    def _set_run(self, state: RunState, reason: str | None, data: dict | None = None) -> None:
        self._run_state = state
        self._run_reason = reason
        self._unsettled = True
        self._emit(EventKind.RUN_STATE, None, None, state, reason, data)

    def _enter_failing(self, node_id: str, cause: str, reason: str) -> None:
        if self._failing is None:
            self._failing = {"node": node_id, "cause": cause, "reason": reason}

    def _attempt_failed(self, node_id: str, error: str, *, from_when: bool = False) -> None:
        node = self._nodes[node_id]
        run = self._runs[node_id]
        run.failed = True
        run.error = error
        run.when_error = from_when
        if not from_when and run.auto_retries < node.retries:
            run.auto_retries += 1
            n = run.auto_retries
            run.retry_delay = float(node.retry_backoff) * 2 ** (n - 1)
            self._set(
                node_id,
                NodeState.PENDING,
                f"automatic retry {n} of {node.retries} in {run.retry_delay:g}s after: {error}",
            )
            self._emit(
                EventKind.RETRY_SCHEDULED,
                node_id,
                run.attempts or None,
                NodeState.PENDING,
                error,
                {"retry": n, "retries": node.retries, "delay": run.retry_delay, "error": error},
            )
            return
        if node.on_failure == "abort":  # stops the run like a critical failure, in every mode, no prompt
            self._set(node_id, NodeState.NOK, error)
            self._enter_failing(
                node_id, "on_failure_abort", f"not started: run failed at node {node_id} (on_failure = abort)"
            )
            return
        if node.on_failure == "continue":  # recorded (x:failure branches run), the run goes on, no prompt
            self._set(node_id, NodeState.SKIPPED, REASON_FAILURE_CONTINUED)
            return
        critical = self._critical[node_id]
        if self.headless:
            if critical:
                self._set(node_id, NodeState.NOK, error)
                self._enter_failing(
                    node_id, "critical_failure", f"not started: run failed at critical node {node_id}"
                )
            else:
                self._set(node_id, NodeState.SKIPPED, REASON_SKIPPED_BY_POLICY)
            return
        if critical and run.operator_retries >= self.max_retries:
            self._set(node_id, NodeState.NOK, error)
            self._enter_failing(
                node_id, "critical_failure", f"not started: run failed at critical node {node_id}"
            )
            return
        run.pending = FAILURE
        self._set(node_id, NodeState.NOK, error)

    def _refusal(self, node_id: str, decision: Decision) -> str:
        run = self._runs[node_id]
        if decision in (Decision.APPROVE, Decision.REJECT):
            return f"cannot {decision} '{node_id}': only a gate awaiting a decision is approved or rejected"
        if decision is Decision.SKIP:
            return f"cannot skip '{node_id}': critical nodes cannot be skipped"
        if decision is Decision.RETRY and run.pending == GATE:
            return f"cannot retry '{node_id}': a gate is approved or rejected, not retried"
        if decision is Decision.RETRY:
            return f"cannot retry '{node_id}': max retries ({self.max_retries}) reached"
        return f"cannot {decision} '{node_id}' now"  # pragma: no cover - every decision is covered above

    def _failure_branch(self) -> set[str]:
        """Nodes that may still run in failing mode: downstream of a `:failure` edge out of a node that failed
        (or that is still running and may fail), and all their descendants."""
        branch: set[str] = set()
        stack: list[str] = []
        for nid, run in self._runs.items():
            if run.failed or run.state is NodeState.RUNNING:
                stack += [child for child, cond in self._children[nid] if cond is DepCondition.FAILURE]
        while stack:
            nid = stack.pop()
            if nid not in branch:
                branch.add(nid)
                stack += [child for child, _ in self._children[nid]]
        return branch

    def _settle(self) -> None:
        """Apply every skip that became certain and evaluate `when`; end the run when nothing is left."""
        changed = True
        while changed and self._run_state is RunState.RUNNING:
            changed = False
            if self._failing is not None:
                changed |= self._apply_failing_mode()
            # One pass in topological order over the nodes that may have become evaluable; a node changed
            # during the pass only makes nodes after it evaluable, so they are still visited in this pass.
            while self._to_evaluate:
                _index, nid = heapq.heappop(self._to_evaluate)
                self._to_evaluate_ids.discard(nid)
                run = self._runs[nid]
                if run.state is NodeState.PENDING and not run.cleared:
                    changed |= self._evaluate(nid)
        if self._run_state is RunState.RUNNING and not self._unfinished:
            if self._failing is not None:
                self._set_run(RunState.NOK, self._failing["reason"].replace("not started: ", ""))
            else:
                self._set_run(RunState.OK, None)
        self._unsettled = False

    def _apply_failing_mode(self) -> bool:
        assert self._failing is not None
        branch = self._failure_branch()
        changed = False
        for nid in self._topo:
            run = self._runs[nid]
            if nid in branch or run.final or run.state is NodeState.RUNNING:
                continue
            if run.pending == FAILURE:  # no retry outside the failure branches: the failure stands
                run.pending = None
                self._set(nid, NodeState.NOK, run.reason)
            else:  # PENDING, or a gate WAITING for a decision that can no longer matter
                run.pending = None
                self._set(nid, NodeState.SKIPPED, self._failing["reason"])
            changed = True
        return changed

    def _evaluate(self, node_id: str) -> bool:
        """A PENDING node not yet cleared: if its dependencies are final, decide skip / when / ready."""
        node = self._nodes[node_id]
        runs = self._runs
        if not all(runs[d.node].final for d in node.depends_on):
            return False
        unmet = [
            str(d) for d in node.depends_on if d.condition is DepCondition.PLAIN and not self._dep_met(d)
        ]
        conditional = [d for d in node.depends_on if d.condition is not DepCondition.PLAIN]
        if conditional and not any(self._dep_met(d) for d in conditional):
            unmet.append(" or ".join(str(d) for d in conditional))
        if unmet:
            self._set(node_id, NodeState.SKIPPED, f"dependency condition not met: {', '.join(unmet)}")
            return True
        if node.skip:
            self._set(node_id, NodeState.SKIPPED, REASON_SKIP_IN_RUNBOOK)
            return True
        if node.when and self._when is not None:
            try:
                passed = bool(self._when(node, self))
            except Exception as err:  # any error in `when` fails the node; it never runs
                message = str(err) or type(err).__name__
                self._attempt_failed(node_id, f"when: {message}", from_when=True)
                return True
            if not passed:
                self._set(node_id, NodeState.SKIPPED, f"condition false: {node.when}")
                return True
        runs[node_id].cleared = True
        self._track(node_id)
        return False

    def _dep_met(self, dep: Dependency) -> bool:
        up = self._runs[dep.node]
        if dep.condition is DepCondition.PLAIN:
            return up.state in (NodeState.OK, NodeState.SKIPPED)
        if dep.condition is DepCondition.SUCCESS:
            return up.state is NodeState.OK
        return up.failed and up.final
