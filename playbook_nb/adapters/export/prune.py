"""Removing old finished runs and their artifact directories.

A run is pruned when it started before now minus the given age and is finished (OK, NOK or ABORTED), and,
with `status`, has that status. RUNNING runs are never touched, whatever their age: their process may be
alive (close an orphaned one with `set-status` first). Deletion goes through `Store.delete_run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from playbook_nb.adapters.store import FINAL_RUN_STATUSES, Run, Store
from playbook_nb.adapters.store.artifacts import tree_size
from playbook_nb.adapters.store.models import now
from playbook_nb.domain.errors import PlaybookError

PAGE = 500


class PruneError(PlaybookError):
    """Bad prune arguments (age syntax, status)."""


@dataclass
class PrunePlan:
    cutoff: datetime
    runs: list[Run] = field(default_factory=list)
    running_kept: list[Run] = field(default_factory=list)


@dataclass
class PruneResult:
    runs: list[int] = field(default_factory=list)
    bytes_freed: int = 0
    errors: list[str] = field(default_factory=list)


def _all_runs(store: Store, status: str | None) -> list[Run]:
    runs: list[Run] = []
    offset = 0
    while True:
        page = store.list_runs(status=status, limit=PAGE, offset=offset)
        runs += page
        if len(page) < PAGE:
            return runs
        offset += PAGE


def plan_prune(
    store: Store,
    older_than: timedelta,
    status: str | None = None,
    at: datetime | None = None,
    *,
    since_end: bool = False,
) -> PrunePlan:
    """Finished runs that started before `at - older_than`; with `since_end` (a retention, the seed's time to
    live of finished runs), that ended before it instead (a run without an end time counts from its start)."""
    if status is not None:
        status = status.upper()
        if status not in FINAL_RUN_STATUSES:
            raise PruneError(
                f"--status {status}: only finished runs are pruned; use one of {', '.join(FINAL_RUN_STATUSES)}"
            )
    cutoff = (at or now()) - older_than
    plan = PrunePlan(cutoff)
    for run in _all_runs(store, status):
        moment = (run.ended_at or run.started_at) if since_end and run.status != "RUNNING" else run.started_at
        if moment >= cutoff:
            continue
        (plan.running_kept if run.status == "RUNNING" else plan.runs).append(run)
    plan.runs.sort(key=lambda r: (r.started_at, r.id))
    return plan


def execute_prune(store: Store, plan: PrunePlan, dry_run: bool = False) -> PruneResult:
    result = PruneResult()
    for run in plan.runs:
        if dry_run:
            result.runs.append(run.id)
            result.bytes_freed += tree_size(run.artifact_dir)
            continue
        try:
            result.bytes_freed += store.delete_run(run.id)
            result.runs.append(run.id)
        except PlaybookError as err:
            result.errors.append(str(err))
    return result


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
