"""The JSON shape of a run record, one for every face that prints or serves JSON (`runs list --json`,
`show --json`, the Jupyter Server REST API).

Everything here comes from the run index, which stores secret values masked already; `mask` (a
`Redactor`) masks once more the values known to the caller (`PLAYBOOK_SECRET_*`), as the HTML export does.
The engine snapshot, the attempts' process groups and the owner's token are never part of it (the owner is:
who drives a run, and whether it is orphaned).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from playbook_nb.adapters.store import AttemptRow, DecisionRow, EventRow, NodeStateRow, Run
from playbook_nb.adapters.store.owner import run_owner
from playbook_nb.domain.outcome import handled_failures
from playbook_nb.domain.outcome import status_label as outcome_words
from playbook_nb.presentation import look, run_look_state

if TYPE_CHECKING:  # a listing of runs masks nothing: the secret shapes' patterns load when a caller masks
    from playbook_nb.domain.redact import Redactor


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def status_label(run: Run, handled: int) -> str:
    """The words a run's status shows with: "OK", "OK with 2 handled failures", "NOK", ..."""
    return outcome_words(run.status, handled)


def outcome(run: Run, nodes: Iterable[NodeStateRow]) -> tuple[str, str]:
    """(the words a run's status shows with, the state its colour is drawn with): "OK with 1 handled
    failure" in amber (presentation.HANDLED), else the status itself."""
    handled = len(handled_failures(nodes))
    return status_label(run, handled), run_look_state(run.status, handled)


def run_summary(run: Run, nodes: Iterable[NodeStateRow] | None = None) -> dict[str, Any]:
    """One run as `runs list --json` prints it; with `nodes`, its handled failures and status colour too."""
    data: dict[str, Any] = {
        "id": run.id,
        "workflow": run.workflow,
        "number": run.number,
        "title": run.title,
        "status": run.status,
        "reason": run.status_reason,
        "started_at": _when(run.started_at),
        "ended_at": _when(run.ended_at),
        "duration": run.duration,
        "trigger": run.trigger,
        "actor": run.actor,
        "host": run.host,
        "mode": run.mode,
        "variables": run.variables,
        "runbook_sha256": run.runbook_sha256,
        "runbook_version": run.runbook_version,
        "notebook_path": run.notebook_path,
        "counts": run.counts,
        **owner_json(run),
    }
    if nodes is not None:
        # A run driven from a runbook notebook opened on its TOML records the TOML as its notebook: that is the
        # live view, not a filed executed notebook.
        data["filed_notebook"] = bool(run.notebook_path and run.notebook_path.endswith(".ipynb"))
    if nodes is not None:
        handled = handled_failures(nodes)
        style = look(run.status)
        data["handled_failures"] = handled
        data["status_label"] = status_label(run, len(handled))
        data["colour"] = {"fill": style.fill, "stroke": style.stroke}
    return data


def owner_note(run: Run) -> str:
    """A RUNNING run's owner in words: "driven by alice (kernel 1a2b3c4d, pid 42 on host)" or
    "orphaned (owner gone since 2025-01-02 10:11:12)"; "" for a finished run."""
    return run_owner(run).describe()


def owner_json(run: Run) -> dict[str, Any]:
    """The owner fields of a run (issue 13): who drives it, and whether it is orphaned."""
    owner = run_owner(run)
    return {
        "owner": None
        if run.owner_token is None
        else {
            "actor": run.owner_actor,
            "host": run.owner_host,
            "pid": run.owner_pid,
            "kind": run.owner_kind,
            "seen_at": _when(run.owner_seen_at),
            "lease_expires": _when(run.lease_expires),
        },
        "orphaned": owner.orphaned,
        "owner_note": owner.describe(),
    }


def node_json(row: NodeStateRow) -> dict[str, Any]:
    style = look(row.state)
    return {
        "node": row.node_id,
        "position": row.position,
        "state": row.state,
        "reason": row.reason,
        "attempts": row.attempts,
        "failed": row.failed,
        "handled_failure": row.failed and row.state == "SKIPPED",
        "updated_at": _when(row.updated_at),
        "colour": {"fill": style.fill, "stroke": style.stroke},
    }


def attempt_json(row: AttemptRow) -> dict[str, Any]:
    return {
        "node": row.node_id,
        "attempt": row.attempt,
        "status": row.status,
        "started_at": _when(row.started_at),
        "ended_at": _when(row.ended_at),
        "duration": row.duration,
        "exit_code": row.exit_code,
        "stdout": row.stdout,
        "stderr": row.stderr,
        "result": row.result,
        "error": row.error,
    }


def decision_json(row: DecisionRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "node": row.node_id,
        "decision": row.decision,
        "actor": row.actor,
        "source": row.source,  # server, cli, notebook, parameter, policy, replay
        "comment": row.comment,
        "decided_at": _when(row.decided_at),
    }


def event_json(row: EventRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": _when(row.at),
        "kind": row.kind,
        "node": row.node_id,
        "attempt": row.attempt,
        "payload": row.payload,
        "hash": row.hash,
    }


def run_detail(
    run: Run,
    nodes: list[NodeStateRow],
    attempts: list[AttemptRow],
    decisions: list[DecisionRow],
    events: list[EventRow],
    mask: Redactor | None = None,
) -> dict[str, Any]:
    """A run with its nodes, attempts, decisions and events (the REST API's `GET runs/{id}`)."""
    data = {
        "run": {**run_summary(run, nodes), "params": run.params, "event_head": run.event_head},
        "nodes": [node_json(row) for row in nodes],
        "attempts": [attempt_json(row) for row in attempts],
        "decisions": [decision_json(row) for row in decisions],
        "events": [event_json(row) for row in events],
    }
    return mask.redact_obj(data) if mask else data
