"""Who decides a gate when nobody clicks: approvals given as parameters, or an explicit policy. Fail closed.

Headless runs (papermill, CI, a terminal without a TTY) have no human at the gate. The decision then comes from
the run's parameters (`approvals = {"deploy_gate": "approve"}`), or from an explicit `gate_policy`
(`approve-all`, `reject-all`, recorded as such). With neither, the gate stays undecided and the caller aborts
the run (ABORTED, resumable once someone approves).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from playbook_nb.domain.engine import Decision
from playbook_nb.domain.errors import PlaybookError, RunbookError
from playbook_nb.domain.parsing import parse_duration

GATE_POLICIES = ("fail-closed", "approve-all", "reject-all")
_ANSWERS = {
    "approve": Decision.APPROVE,
    "approved": Decision.APPROVE,
    "yes": Decision.APPROVE,
    "true": Decision.APPROVE,
    "reject": Decision.REJECT,
    "rejected": Decision.REJECT,
    "no": Decision.REJECT,
    "false": Decision.REJECT,
}


class DecisionError(PlaybookError):
    """Bad approvals or gate policy given as parameters."""


@dataclass(frozen=True)
class GateDecision:
    decision: Decision
    actor: str
    comment: str | None
    source: str | None = None  # where it came from: server, cli, notebook, parameter, policy, replay


def default_actor() -> str:
    """Who acts when nobody said (--actor, the `actor` parameter): the JupyterHub user a hub started this
    server, kernel or terminal for (`JUPYTERHUB_USER`), else the OS user."""
    hub_user = os.environ.get("JUPYTERHUB_USER", "").strip()
    if hub_user:
        return hub_user
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def check_gate_policy(policy: str) -> str:
    if policy not in GATE_POLICIES:
        raise DecisionError(f"gate policy '{policy}' is not one of {', '.join(GATE_POLICIES)}")
    return policy


class DecisionRefused(DecisionError):
    """This person may not decide this gate (approvers, four_eyes)."""


def decision_refusal(
    node_id: str,
    approvers: list[str] | None,
    four_eyes: bool,
    actor: str,
    started_by: str | None,
    groups: Mapping[str, Iterable[str]],
) -> str | None:
    """Why `actor` may not decide gate `node_id`, or None when they may. `approvers` lists names and
    "group:NAME" (members from the [groups] configuration); `four_eyes` refuses whoever started the run."""
    if four_eyes and started_by and actor == started_by:
        return f"gate '{node_id}' needs four eyes: {actor} started this run, so someone else must decide it"
    if approvers is None:
        return None
    for entry in approvers:
        if entry.startswith("group:"):
            if actor in set(groups.get(entry.removeprefix("group:"), ())):
                return None
        elif actor == entry:
            return None
    return f"{actor} may not decide gate '{node_id}' (approvers: {', '.join(approvers)})"


def parse_gate_wait(value: object, where: str = "gate wait") -> float:
    """Seconds a gate nobody decides waits for a decision from anywhere: "30m", "2h", "90s", 90; empty, None
    or 0 for none (fail closed at once)."""
    if value is None or value == "" or (not isinstance(value, bool) and value in (0, "0")):
        return 0.0
    try:
        return parse_duration(value, None)
    except RunbookError as err:
        raise DecisionError(f"{where}: {err}") from None


def parse_approvals(approvals: dict | None, gate_ids: set[str]) -> dict[str, Decision]:
    """Turn `{"gate": "approve"}` parameters into decisions; unknown gates and answers are errors."""
    parsed: dict[str, Decision] = {}
    for node_id, answer in (approvals or {}).items():
        if node_id not in gate_ids:
            known = ", ".join(sorted(gate_ids)) or "none"
            raise DecisionError(
                f"approvals: '{node_id}' is not a Manual gate of this runbook (gates: {known})"
            )
        key = str(answer).strip().lower()
        if key not in _ANSWERS:
            raise DecisionError(
                f"approvals: answer '{answer}' for gate '{node_id}' must be approve or reject"
            )
        parsed[node_id] = _ANSWERS[key]
    return parsed


def parse_approve_flags(values: list[str] | None) -> dict[str, str]:
    """`--approve gate` / `--reject gate` style CLI flags, or `gate=reject`."""
    result: dict[str, str] = {}
    for item in values or []:
        node_id, sep, answer = item.partition("=")
        result[node_id.strip()] = answer.strip() if sep else "approve"
    return result


@dataclass
class GatePolicy:
    """The one place a gate with nobody at it is decided: a decision recorded earlier (replay), else the run's
    approvals parameters, else an explicit policy (approve-all, reject-all, recorded as such), else None: fail
    closed, and the caller stops the run ABORTED, resumable once someone approves."""

    approvals: dict[str, Decision] = field(default_factory=dict)  # parsed: see parse_approvals
    policy: str = "fail-closed"
    actor: str = ""
    comment: str | None = None
    recorded: Callable[[str], GateDecision | None] | None = None  # asked first (replay: the original run's)

    def __post_init__(self) -> None:
        check_gate_policy(self.policy)

    def approval(self, node_id: str) -> GateDecision | None:
        """The decision the run's parameters give this gate, if any (no policy, nothing recorded)."""
        if node_id in self.approvals:
            return GateDecision(
                self.approvals[node_id],
                self.actor,
                self.comment or "decided by run parameters",
                source="parameter",
            )
        return None

    def decide(self, node_id: str) -> GateDecision | None:
        """The decision for a gate with nobody at it, or None: fail closed."""
        if self.recorded is not None:
            choice = self.recorded(node_id)
            if choice is not None:
                return choice
        choice = self.approval(node_id)
        if choice is not None:
            return choice
        if self.policy == "approve-all":
            return GateDecision(
                Decision.APPROVE,
                f"policy:approve-all ({self.actor})",
                self.comment or "gate policy approve-all",
                source="policy",
            )
        if self.policy == "reject-all":
            return GateDecision(
                Decision.REJECT,
                f"policy:reject-all ({self.actor})",
                self.comment or "gate policy reject-all",
                source="policy",
            )
        return None

    def fail_closed_reason(self, node_id: str) -> str:
        """Why the run stops at a gate `decide` left undecided."""
        return (
            f"gate '{node_id}' awaits approval: no approval given and gate policy is {self.policy} "
            f"(resume with --approve {node_id})"
        )
