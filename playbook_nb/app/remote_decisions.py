"""Deciding a gate of a run driven elsewhere (issue 16): `playbook-nb approve`, the REST API.

The run that waits at its gate (`--gate-wait`) is the only one that drives its engine. A decision from another
process is offered to it through the index: `offer_decision` checks the run and the gate and refuses with one
line naming why (no such run or gate, the run is not RUNNING, the gate does not wait, nobody waits for a
decision from afar, the user may not decide), then makes the compare-and-set `Store.decide_gate_wait` (only
while the run is RUNNING, the node WAITING and the deadline not passed; two deciders racing, one wins). The
waiting run takes the decision, records it with its actor and source, and closes the wait 'applied';
`outcome` reads where that stands without blocking, so a face can poll it (the CLI sleeping, the server
awaiting).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from playbook_nb.adapters.store import Store
from playbook_nb.domain import templating
from playbook_nb.domain.decisions import decision_refusal
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.exit_codes import ExitCode
from playbook_nb.domain.model import Runbook
from playbook_nb.domain.validation import parse_runbook

DECISIONS = ("approve", "reject")


class GateRefused(PlaybookError):
    """A decision that cannot be taken; `kind` says why: not_found, conflict (the run or gate is not waiting
    for it), forbidden (the user may not decide this gate), invalid (a malformed request)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind
        self.exit_code = ExitCode.INVALID if kind in ("invalid", "not_found") else ExitCode.NOK


@dataclass(frozen=True)
class Offered:
    wait_id: int
    run_id: int
    node_id: str
    decision: str
    actor: str
    source: str


@dataclass(frozen=True)
class Outcome:
    applied: bool  # the run has taken the decision (recorded with its actor and source)
    state: str  # the node's state now
    run_status: str
    expired: bool = False  # the run stopped waiting without taking it (it was stopped in that instant)


def offer_decision(
    store: Store,
    run_id: int,
    node_id: str,
    decision: str,
    *,
    actor: str,
    source: str,
    comment: str | None = None,
    groups: dict[str, tuple[str, ...]] | None = None,
) -> Offered:
    """Hand a decision to the run waiting at gate `node_id`, or raise GateRefused with the one line why."""
    decision = str(decision).strip().lower()
    if decision not in DECISIONS:
        raise GateRefused(f"decision must be approve or reject, not {decision!r}", "invalid")
    version = _check_decidable(store, run_id, node_id, actor, groups or {})
    row = store.decide_gate_wait(
        run_id, node_id, decision, actor=actor, source=source, comment=comment, version=version
    )
    if row is None:  # moved on between the checks and the compare-and-set: say how
        _check_decidable(store, run_id, node_id, actor, groups or {})
        raise GateRefused(
            f"gate '{node_id}' of run {run_id} changed meanwhile; look at the run again", "conflict"
        )
    return Offered(row.id, run_id, node_id, decision, actor, source)


def outcome(store: Store, offered: Offered) -> Outcome:
    """Where an offered decision stands now (never blocks)."""
    wait = store.gate_wait(offered.wait_id)
    run = store.get_run(offered.run_id)
    state = next((r.state for r in store.node_states(offered.run_id) if r.node_id == offered.node_id), "?")
    return Outcome(applied=wait.status == "applied", state=state, run_status=run.status,
                   expired=wait.status == "expired")  # fmt: skip


def _check_decidable(
    store: Store, run_id: int, node_id: str, actor: str, groups: dict[str, tuple[str, ...]]
) -> int:
    """Raise GateRefused when `actor` cannot decide gate `node_id` of run `run_id` from here now; else the
    run's version the checks saw (the compare-and-set is made against it)."""
    run = store.get_run(run_id)  # RunNotFound: one line
    runbook = _runbook_of(run.runbook_text)
    states = {r.node_id: r.state for r in store.node_states(run_id)}
    if node_id not in states:
        raise GateRefused(f"run {run_id} has no node '{node_id}'", "not_found")
    if runbook is not None and node_id in runbook.nodes and not runbook.node(node_id).is_gate:
        kind = runbook.node(node_id).type
        raise GateRefused(f"'{node_id}' of run {run_id} is a {kind} node, not a Manual gate", "invalid")
    if run.status != "RUNNING":
        reason = f" ({run.status_reason})" if run.status_reason and run.status != "OK" else ""
        raise GateRefused(
            f"run {run_id} is {run.status}{reason}: it no longer waits for a decision", "conflict"
        )
    if states[node_id] != "WAITING":
        raise GateRefused(
            f"gate '{node_id}' of run {run_id} is {states[node_id]}: it does not wait for a decision",
            "conflict",
        )
    if runbook is not None and node_id in runbook.nodes:
        node = runbook.node(node_id)
        refusal = decision_refusal(node_id, node.approvers, node.four_eyes, actor, run.actor, groups)
        if refusal is not None:
            raise GateRefused(refusal, "forbidden")
    wait = store.open_wait_at(run_id, node_id)
    if wait is None:
        raise GateRefused(
            f"gate '{node_id}' of run {run_id} is decided where the run is driven ({run.mode}, "
            f"{run.trigger}): it does not wait for a decision from elsewhere (no --gate-wait)",
            "conflict",
        )
    if wait.status == "decided":
        raise GateRefused(
            f"gate '{node_id}' of run {run_id} was already decided ({wait.decision} by {wait.actor})",
            "conflict",
        )
    if wait.deadline <= datetime.now(UTC):
        raise GateRefused(
            f"gate '{node_id}' of run {run_id} stopped waiting at {wait.deadline:%Y-%m-%d %H:%M:%S} UTC "
            "(its deadline passed; its process may be gone)",
            "conflict",
        )
    owner = store.owner_status(run_id)
    if owner.orphaned:
        raise GateRefused(
            f"run {run_id} is {owner.describe()}: nobody is there to take the decision on '{node_id}'; "
            f"resume it with --approve {node_id}",
            "conflict",
        )
    return run.version


def _runbook_of(text: str | None) -> Runbook | None:
    try:
        return parse_runbook(text or "", path="run record")
    except PlaybookError:  # a record from an older format: the index's node states still say enough
        return None


@dataclass(frozen=True)
class WaitingGate:
    """A gate `actor` may decide from here now (the "Waiting for me" inbox)."""

    run_id: int
    workflow: str
    node_id: str
    prompt: str
    next_steps: tuple[tuple[str, str], ...]  # (node id, its command or type) of the nodes that follow
    deadline: str


def waiting_gates(
    store: Store, actor: str, groups: dict[str, tuple[str, ...]] | None = None, limit: int = 200
) -> list[WaitingGate]:
    """Every gate of a RUNNING run that waits for a decision from afar and that `actor` may decide."""
    found: list[WaitingGate] = []
    for run in store.list_runs(status="RUNNING", limit=limit):
        runbook = _runbook_of(run.runbook_text)
        for row in store.node_states(run.id):
            if row.state != "WAITING":
                continue
            try:
                _check_decidable(store, run.id, row.node_id, actor, groups or {})
            except GateRefused:
                continue
            prompt, following = "", []
            if runbook is not None and row.node_id in runbook.nodes:
                node = runbook.node(row.node_id)
                shown = _Shown(runbook, run.variables or {})
                prompt = shown.text(node.prompt_after or node.prompt_before or "")
                for other in runbook.nodes.values():
                    if any(dep.node == row.node_id for dep in other.depends_on):
                        command = shown.command(other.command_name) if other.command_name else ""
                        following.append((other.id, command or str(other.type)))
            wait = store.open_wait_at(run.id, row.node_id)
            found.append(
                WaitingGate(
                    run.id,
                    run.workflow,
                    row.node_id,
                    prompt,
                    tuple(following),
                    f"{wait.deadline:%Y-%m-%d %H:%M:%S} UTC" if wait else "",
                )  # fmt: skip
            )
    return found


class _Shown:
    """A gate's prompt and the commands that follow it, rendered with the run's recorded variables as the
    approver will see them run (a secret as its quoted environment reference, never a value). A template that
    needs what only the run knows (`has_succeeded`, an earlier step's outputs) is shown as written."""

    def __init__(self, runbook: Runbook, variables: dict[str, Any]) -> None:
        context = templating.make_context(variables)
        self.context, _environ = templating.secret_command_context(context, runbook.secret_names)

    def text(self, template: str) -> str:
        try:
            return templating.render(template, self.context)
        except PlaybookError:
            return template

    def command(self, template: str) -> str:
        try:
            return templating.render_command(template, self.context)
        except PlaybookError:
            return template
