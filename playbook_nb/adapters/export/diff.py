"""What changed between two runs: node states, attempts, durations, exit codes, stdout, variables, runbook.

    result = diff_runs(store, old_id, new_id)      # plain dict, ready for JSON
    base = last_ok_run(store, run)                 # the run to compare a failed run against

Variables come from the index, where secrets are masked already.
"""

from __future__ import annotations

import difflib
from typing import Any

from playbook_nb.adapters.store import AttemptRow, NodeStateRow, Run, Store
from playbook_nb.domain.errors import PlaybookError

STDOUT_CONTEXT = 1
STDOUT_MAX_LINES = 12


class DiffError(PlaybookError):
    """The runs cannot be compared as asked (no earlier OK run, same run twice)."""


def last_ok_run(store: Store, run: Run) -> Run:
    """The newest OK run of the same workflow that started before `run` (or, failing that, any other)."""
    candidates: list[Run] = []
    offset = 0
    while True:
        page = store.list_runs(workflow=run.workflow, status="OK", limit=200, offset=offset)
        candidates += [r for r in page if r.id != run.id]
        if len(page) < 200:
            break
        offset += 200
    earlier = [r for r in candidates if r.started_at <= run.started_at]
    if earlier:
        return earlier[0]
    raise DiffError(f"no earlier OK run of workflow {run.workflow!r} to compare run {run.id} with")


def _run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "number": run.number,
        "workflow": run.workflow,
        "status": run.status,
        "status_reason": run.status_reason,
        "started_at": run.started_at.isoformat(),
        "duration": run.duration,
        "runbook_version": run.runbook_version,
        "runbook_sha256": run.runbook_sha256,
    }


def status_text(side: dict[str, Any] | None) -> str:
    """The node's final state, e.g. `OK` or `SKIPPED (failed)`; `absent` when the run did not have it."""
    if side is None:
        return "absent"
    return side["state"] + (" (failed)" if side["failed"] else "")


def _node_side(row: NodeStateRow | None, attempts: list[AttemptRow]) -> dict[str, Any] | None:
    if row is None:
        return None
    durations = [a.duration for a in attempts if a.duration is not None]
    last = attempts[-1] if attempts else None
    return {
        "state": row.state,
        "failed": row.failed,
        "reason": row.reason,
        "attempts": len(attempts),
        "attempt_statuses": [a.status for a in attempts],
        "duration": sum(durations) if durations else None,
        "exit_codes": [a.exit_code for a in attempts],
        "stdout": (last.stdout or "") if last else "",
        "error": last.error if last else None,
    }


def _attempts_of(attempts: list[AttemptRow], node_id: str) -> list[AttemptRow]:
    return sorted((a for a in attempts if a.node_id == node_id), key=lambda a: a.attempt)


def stdout_diff(old: str, new: str, label_old: str, label_new: str) -> list[str]:
    """A unified diff of two outputs, a little context, trimmed to a few lines."""
    lines = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), label_old, label_new, n=STDOUT_CONTEXT, lineterm=""
        )
    )
    if len(lines) > STDOUT_MAX_LINES:
        hidden = len(lines) - STDOUT_MAX_LINES
        lines = lines[:STDOUT_MAX_LINES] + [f"... ({hidden} more diff lines)"]
    return lines


def host_diff(old_hosts: dict[str, Any], new_hosts: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-host outcomes of a fleet node in two runs (issue 21): the hosts whose state or exit code differ,
    or that only one run had."""
    changes = []
    for host in list(old_hosts) + [h for h in new_hosts if h not in old_hosts]:
        a, b = old_hosts.get(host), new_hosts.get(host)
        sa = None if a is None else (a.state, a.exit_code)
        sb = None if b is None else (b.state, b.exit_code)
        if sa != sb:
            changes.append(
                {
                    "host": host,
                    "old": None
                    if a is None
                    else {"state": a.state, "exit_code": a.exit_code, "error": a.error},
                    "new": None
                    if b is None
                    else {"state": b.state, "exit_code": b.exit_code, "error": b.error},
                }
            )
    return changes


def _latest_hosts(store: Store, run_id: int) -> dict[str, dict[str, Any]]:
    by_node: dict[str, dict[str, Any]] = {}
    for row in store.host_results(run_id):
        known = by_node.setdefault(row.node_id, {}).get(row.host)
        if known is None or row.attempt >= known.attempt:
            by_node[row.node_id][row.host] = row
    return by_node


def diff_runs(store: Store, old_id: int, new_id: int) -> dict[str, Any]:
    if old_id == new_id:
        raise DiffError(f"run {old_id} compared with itself; give two different runs")
    old, new = store.get_run(old_id), store.get_run(new_id)
    old_rows = {r.node_id: r for r in store.node_states(old_id)}
    new_rows = {r.node_id: r for r in store.node_states(new_id)}
    old_attempts, new_attempts = store.attempts(old_id), store.attempts(new_id)
    order = list(old_rows) + [n for n in new_rows if n not in old_rows]
    old_hosts, new_hosts = _latest_hosts(store, old_id), _latest_hosts(store, new_id)

    nodes = []
    for node_id in order:
        a = _node_side(old_rows.get(node_id), _attempts_of(old_attempts, node_id))
        b = _node_side(new_rows.get(node_id), _attempts_of(new_attempts, node_id))
        duration_change = None
        if a and b and a["duration"] is not None and b["duration"] is not None:
            duration_change = b["duration"] - a["duration"]
        out_diff = stdout_diff(
            a["stdout"] if a else "", b["stdout"] if b else "", f"run {old_id}", f"run {new_id}"
        )
        status_changed = status_text(a) != status_text(b)
        hosts = host_diff(old_hosts.get(node_id, {}), new_hosts.get(node_id, {}))
        changed = (
            status_changed
            or bool(hosts)
            or (a or {}).get("attempts") != (b or {}).get("attempts")
            or (a or {}).get("exit_codes") != (b or {}).get("exit_codes")
            or bool(out_diff)
        )
        for side in (a, b):
            if side is not None:
                side.pop("stdout")
        nodes.append(
            {
                "node_id": node_id,
                "old": a,
                "new": b,
                "status": f"{status_text(a)} -> {status_text(b)}",
                "status_changed": status_changed,
                "changed": changed,
                "duration_change": duration_change,
                "stdout_diff": out_diff,
                "hosts": hosts,
                "fleet": node_id in old_hosts or node_id in new_hosts,
            }
        )

    names = sorted(set(old.variables) | set(new.variables))
    missing = object()
    variables = []
    for name in names:
        va, vb = old.variables.get(name, missing), new.variables.get(name, missing)
        if va != vb:
            variables.append(
                {
                    "name": name,
                    "old": None if va is missing else va,
                    "new": None if vb is missing else vb,
                    "only_in": "new" if va is missing else "old" if vb is missing else None,
                }
            )
    return {
        "old": _run_summary(old),
        "new": _run_summary(new),
        "runbook": {
            "version_changed": old.runbook_version != new.runbook_version,
            "sha256_changed": old.runbook_sha256 != new.runbook_sha256,
            "workflow_changed": old.workflow != new.workflow,
        },
        "variables": variables,
        "nodes": nodes,
        "changed_nodes": [n["node_id"] for n in nodes if n["changed"]],
    }
