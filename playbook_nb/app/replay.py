"""Replay: run a recorded run again, for real, with its recorded variables and decisions, and report every
deviation from the original (`playbook-nb replay RUN`).

- The runbook is the text recorded with the run (later edits of the file do not matter).
- Variables are the recorded ones. Secret values were never recorded: they come from `PLAYBOOK_SECRET_<NAME>`
  or `--var NAME=...`; a missing one is refused before anything runs.
- Decisions are the recorded ones, node by node and in order (gates approved or rejected as they were, failures
  retried, skipped or aborted as they were); the actor is recorded as "replay of run N: <original actor>". A
  decision the original never took is not invented: the replay fails closed (ABORTED) there, a deviation.
- Compared: run status, each node's final state, attempts, last exit code and outputs (masked values on both
  sides), and the path (which nodes ran, and their order when neither run was parallel).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from playbook_nb.adapters.store import Store
from playbook_nb.app.inputs import resolve_variables
from playbook_nb.app.ports import Executor
from playbook_nb.app.recorder import load_outputs
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.decisions import GateDecision, GatePolicy
from playbook_nb.domain.engine import Decision
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.validation import parse_runbook


class ReplayError(PlaybookError):
    """A run that cannot be replayed as asked (missing secrets, unknown run)."""


@dataclass
class Deviation:
    what: str  # "run status", "node 'x' state", "path", ...
    original: Any
    replay: Any


@dataclass
class NodeComparison:
    node_id: str
    original: dict[str, Any]
    replay: dict[str, Any]

    @property
    def same(self) -> bool:
        return self.original == self.replay


@dataclass
class ReplayResult:
    original_run: int
    replay_run: int
    original_status: str
    replay_status: str
    nodes: list[NodeComparison] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.deviations

    def to_dict(self) -> dict[str, Any]:
        return {
            "original_run": self.original_run,
            "replay_run": self.replay_run,
            "identical": self.identical,
            "status": {"original": self.original_status, "replay": self.replay_status},
            "nodes": {c.node_id: {"original": c.original, "replay": c.replay} for c in self.nodes},
            "deviations": [
                {"what": d.what, "original": d.original, "replay": d.replay} for d in self.deviations
            ],
        }


def replay_values(run, runbook, given: dict[str, str], environ=None) -> dict[str, Any]:
    """The recorded variables, with secrets from `given` (--var) or PLAYBOOK_SECRET_<NAME>."""

    environ = os.environ if environ is None else environ
    recorded = dict(run.variables or {})
    cli: dict[str, str] = {}
    missing = []
    for name, value in recorded.items():
        if name not in runbook.variables:
            continue
        if name in runbook.secret_names:
            if name in given:
                cli[name] = given[name]
            elif f"PLAYBOOK_SECRET_{name}" in environ:
                cli[name] = environ[f"PLAYBOOK_SECRET_{name}"]
            else:
                missing.append(name)
        else:
            cli[name] = value if isinstance(value, str) else json.dumps(value)
    if missing:
        names = ", ".join(missing)
        hint = " ".join(f"PLAYBOOK_SECRET_{n}" for n in missing)
        raise ReplayError(
            f"run {run.id} used secret variable(s) {names}, whose values are never recorded: "
            f"set {hint} or pass --var {missing[0]}=..."
        )
    unknown = sorted(set(given) - set(runbook.variables))
    if unknown:
        raise ReplayError(f"--var {unknown[0]}: no such variable in the recorded runbook")
    for name, value in given.items():  # --var overrides a recorded value too (a deliberate deviation)
        cli[name] = value
    return resolve_variables(runbook, cli_vars=cli, interactive=False, environ={})


def node_facts(store: Store, run_id: int) -> dict[str, dict[str, Any]]:
    """What replay compares for each node of a recorded run."""
    outputs = load_outputs(store, run_id)
    attempts = defaultdict(list)
    for attempt in store.attempts(run_id):
        attempts[attempt.node_id].append(attempt)
    facts = {}
    for state in store.node_states(run_id):
        tried = sorted(attempts.get(state.node_id, []), key=lambda a: a.attempt)
        facts[state.node_id] = {
            "state": state.state,
            "attempts": state.attempts or 0,
            "exit_code": tried[-1].exit_code if tried else None,
            "outputs": outputs.get(state.node_id, {}),
        }
    return facts


def started_path(store: Store, run_id: int) -> list[str]:
    """Nodes in the order they first started (RUNNING, or WAITING for a gate)."""
    seen: list[str] = []
    for event in store.events(run_id):
        if event.kind == "node_state" and event.node_id and event.node_id not in seen:
            state = (event.payload or {}).get("state")
            if state in ("RUNNING", "WAITING"):
                seen.append(event.node_id)
    return seen


def replay_run(
    store: Store,
    run_id: int,
    *,
    given: dict[str, str] | None = None,
    parallel: int = 1,
    environ=None,
    listeners=None,
    executor: Executor,
) -> ReplayResult:

    original = store.get_run(run_id)
    if original.status == "RUNNING":
        raise ReplayError(f"run {run_id} is still RUNNING; replay a finished or aborted run")
    runbook = parse_runbook(original.runbook_text, path=f"run {run_id}")
    values = replay_values(original, runbook, dict(given or {}), environ)
    actor = f"replay of run {run_id}: {original.actor or 'unknown'}"
    recorded: dict[str, deque] = defaultdict(deque)
    for row in sorted(store.decisions(run_id), key=lambda d: (d.decided_at, d.id)):
        recorded[row.node_id].append(row)

    def next_decision(node_id: str) -> GateDecision | None:
        if not recorded[node_id]:
            return None
        row = recorded[node_id].popleft()
        return GateDecision(
            Decision(row.decision),
            f"replay of run {run_id}: {row.actor or 'unknown'}",
            row.comment,
            source="replay",
        )

    params = original.params or {}
    options = RunOptions(
        headless=original.mode == "headless",
        trigger="terminal",
        actor=actor,
        max_retries=int(params.get("max_retries", 3)),
        gate_policy="fail-closed",
        comment=f"replay of run {run_id}",
        parallel=parallel,
        extra_params={"replay_of": run_id},
    )
    # recorded decisions first, then fail closed (no approvals, no policy)
    gates = GatePolicy(actor=actor, comment=options.comment, recorded=next_decision)
    session = RunSession.start(runbook, values, store, options, executor=executor, gate_policy=gates)
    for listener in listeners or []:
        listener(session)
    store.append_event(session.run_id, "replay_of", payload={"run_id": run_id, "actor": original.actor})
    try:
        session.drive(lambda _session, node_id, _kind: next_decision(node_id))
    except KeyboardInterrupt:
        session.abort(actor, "replay interrupted")
    finally:
        session.close()
    return compare_runs(store, run_id, session.run_id)


def compare_runs(store: Store, original_id: int, replay_id: int) -> ReplayResult:
    original = store.get_run(original_id)
    replayed = store.get_run(replay_id)
    result = ReplayResult(original_id, replay_id, original.status, replayed.status)
    if original.status != replayed.status:
        result.deviations.append(Deviation("run status", original.status, replayed.status))
    before, after = node_facts(store, original_id), node_facts(store, replay_id)
    for node_id in list(before) + [n for n in after if n not in before]:
        a, b = before.get(node_id, {}), after.get(node_id, {})
        result.nodes.append(NodeComparison(node_id, a, b))
        for key in ("state", "attempts", "exit_code", "outputs"):
            if a.get(key) != b.get(key):
                result.deviations.append(Deviation(f"node '{node_id}' {key}", a.get(key), b.get(key)))
    path_a, path_b = started_path(store, original_id), started_path(store, replay_id)
    sequential = (original.params or {}).get("parallel", 1) == 1 and (replayed.params or {}).get(
        "parallel", 1
    ) == 1
    if set(path_a) != set(path_b) or (sequential and path_a != path_b):
        result.deviations.append(Deviation("path", " -> ".join(path_a), " -> ".join(path_b)))
    return result
