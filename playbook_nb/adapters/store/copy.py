"""Copy every run from one run index to another (`playbook-nb store migrate`): SQLite <-> PostgreSQL.

Each run goes over as it is stored: same run id and number, node states, attempts, decisions (same ids) and
events (same ids, seq, timestamps text, payload text and hashes), one transaction per run on the target.
Afterwards the target is checked run by run: the same number of rows in each table, the same chain head,
and `verify_events` finds nothing.

Runs the target already holds are handled so that running the command twice is safe:
- the same run (same id, workflow, number and chain head): skipped, counted as `already_there`;
- anything else in the way (that id or that workflow/number holding a different run): the copy is refused
  before writing anything, with one line naming the first conflicting run.
Artifacts are not moved: the index keeps each run's notebook path/URL as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from playbook_nb.adapters.store.base import Store
from playbook_nb.domain.errors import StoreError

TABLES = ("node_states", "attempts", "decisions", "events")
PAGE = 500


@dataclass
class CopyReport:
    copied: list[int] = field(default_factory=list)
    already_there: list[int] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # rows written per table

    @property
    def total(self) -> int:
        return len(self.copied) + len(self.already_there)


def all_run_ids(store: Store) -> list[int]:
    """Every run id, oldest first."""
    ids: list[int] = []
    offset = 0
    while True:
        page = store.list_runs(limit=PAGE, offset=offset)
        ids += [run.id for run in page]
        if len(page) < PAGE:
            break
        offset += PAGE
    return sorted(set(ids))


def _same_run(a: dict, b: dict) -> bool:
    keys = ("id", "workflow", "number", "event_count", "event_head", "runbook_sha256")
    return all(a[k] == b[k] for k in keys)


def plan_copy(source: Store, target: Store, run_ids: list[int]) -> tuple[list[int], list[int]]:
    """(run ids to copy, run ids already on the target). Raises StoreError on the first conflict."""
    target_by_number = {(r.workflow, r.number): r for r in (target.get_run(i) for i in all_run_ids(target))}
    target_ids = {r.id for r in target_by_number.values()}
    to_copy, present = [], []
    for run_id in run_ids:
        run = source.get_run(run_id)
        other = target_by_number.get((run.workflow, run.number))
        if run_id in target_ids or other is not None:
            mine = {**run.__dict__}
            theirs = target.get_run(run_id).__dict__ if run_id in target_ids else other.__dict__
            if _same_run(mine, theirs):
                present.append(run_id)
                continue
            clash = f"run {run_id}" if run_id in target_ids else f"run {run.workflow!r} #{run.number}"
            raise StoreError(
                f"{target.url} already holds a different {clash}; copy into an empty run index instead"
            )
        to_copy.append(run_id)
    return to_copy, present


def verify_copy(source: Store, target: Store, run_id: int) -> list[str]:
    """Differences between one run on the source and on the target, plus target chain problems."""
    problems: list[str] = []
    mine, theirs = source.dump_run(run_id), target.dump_run(run_id)
    for table in TABLES:
        if len(mine[table]) != len(theirs[table]):
            problems.append(
                f"run {run_id}: {len(mine[table])} {table} rows on the source, {len(theirs[table])} on the target"
            )
    if not _same_run(mine["run"], theirs["run"]):
        problems.append(f"run {run_id}: run row differs on the target")
    problems += target.verify_events(run_id)
    return problems


def copy_runs(source: Store, target: Store, run_ids: list[int] | None = None) -> CopyReport:
    """Copy runs (default: all) from `source` to `target`, then verify them there. Raises StoreError."""
    if source.url == target.url:
        raise StoreError(f"source and target are the same run index: {source.url}")
    ids = all_run_ids(source) if run_ids is None else sorted(run_ids)
    to_copy, present = plan_copy(source, target, ids)
    report = CopyReport(already_there=present, rows={t: 0 for t in ("runs", *TABLES)})
    for run_id in to_copy:
        dump = source.dump_run(run_id)
        target.load_run(dump)
        report.copied.append(run_id)
        report.rows["runs"] += 1
        for table in TABLES:
            report.rows[table] += len(dump[table])
    problems = [p for run_id in ids for p in verify_copy(source, target, run_id)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StoreError(f"copy to {target.url} did not verify: {problems[0]}{more}")
    return report
