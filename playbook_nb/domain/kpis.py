"""KPI attainment over recorded runs: `[runbook] kpis = { max_duration = "15m", target_success_rate = 0.95 }`.

`kpi_attainment(store, workflow, kpis)` is what `playbook-nb info` prints and what the HTML report shows.
Rehearsal runs (`playbook-nb test --state-path ...`) are left out: they ran nothing for real.

- success rate: OK runs among finished runs (OK, NOK, ABORTED), the same definition as `info`'s statistics;
  met when it is at least `target_success_rate`.
- duration: runs that ended OK or NOK (an ABORTED run's clock includes the wait for a human); the share of them
  within `max_duration`, and the 95th percentile; met when the 95th percentile is within `max_duration`.
"""

from __future__ import annotations

from typing import Any

from playbook_nb.domain.model import Kpis

MAX_RUNS = 100_000


def kpi_attainment(store, workflow: str, kpis: Kpis | None) -> dict[str, Any]:
    """A JSON-safe dict:

    {"workflow", "runs", "finished", "ok", "success_rate", "target_success_rate", "success_rate_met",
     "max_duration", "timed_runs", "within_max_duration", "share_within_max_duration", "p50_duration",
     "p95_duration", "max_duration_met"}; a *_met is None when the KPI is not set or there is no run to judge.
    """
    target = kpis.target_success_rate if kpis else None
    max_duration = kpis.max_duration if kpis else None
    # counted by the database over the newest MAX_RUNS runs, no run rows read into Python (issue 18.4)
    figures = store.kpi_figures(workflow, MAX_RUNS, max_duration)
    finished, ok, timed = figures["finished"], figures["ok"], figures["timed_runs"]
    rate = ok / finished if finished else None
    within = figures["within_max_duration"]
    p95 = figures["p95_duration"]
    return {
        "workflow": workflow,
        "runs": figures["runs"],
        "finished": finished,
        "ok": ok,
        "success_rate": rate,
        "target_success_rate": target,
        "success_rate_met": None if target is None or rate is None else rate >= target,
        "max_duration": max_duration,
        "timed_runs": timed,
        "within_max_duration": within if max_duration is not None else None,
        "share_within_max_duration": within / timed if timed and max_duration is not None else None,
        "p50_duration": figures["p50_duration"],
        "p95_duration": p95,
        "max_duration_met": None if max_duration is None or p95 is None else p95 <= max_duration,
    }


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.1f}m"
    return f"{seconds:.1f}s"


def kpi_lines(att: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(KPI, text, met) rows for a terminal or a report."""
    rows: list[tuple[str, str, bool | None]] = []
    if att["max_duration"] is not None:
        share = att["share_within_max_duration"]
        text = (
            f"{att['within_max_duration']}/{att['timed_runs']} runs within {format_seconds(att['max_duration'])}"
            + (
                f" ({share * 100:.0f}%), p95 {format_seconds(att['p95_duration'])}"
                if share is not None
                else ""
            )
        )
        rows.append(("max_duration", text, att["max_duration_met"]))
    if att["target_success_rate"] is not None:
        rate = att["success_rate"]
        text = (
            f"{rate * 100:.1f}% ({att['ok']}/{att['finished']} runs) vs target {att['target_success_rate'] * 100:.0f}%"
            if rate is not None
            else f"no finished runs (target {att['target_success_rate'] * 100:.0f}%)"
        )
        rows.append(("target_success_rate", text, att["success_rate_met"]))
    return rows
