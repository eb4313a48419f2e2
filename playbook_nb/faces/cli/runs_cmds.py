"""`show`, `runs list` and `info`: read the run index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from playbook_nb.domain.attempt_ran import ran_by_attempt, ran_text
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.faces.cli.app import (
    Styled,
    app,
    console,
    emit_json,
    escape,
    json_output,
    print_lines,
    print_table,
    styled,
)
from playbook_nb.faces.cli.common import JSON, STATE_PATH, open_store
from playbook_nb.faces.cli.runs_group import runs_app
from playbook_nb.presentation import rich_style

if TYPE_CHECKING:
    from playbook_nb.adapters.store import NodeStateRow, Run


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _duration(run: Run) -> str:
    return f"{run.duration:.1f}s" if run.duration is not None else ""


def _orphan_note(run: Run) -> Styled:
    """ " orphaned (owner gone since ...)" after the status of a RUNNING run whose owner is gone."""
    from playbook_nb.faces import run_json

    note = run_json.owner_note(run)
    return ((" ", ""), (note, "bold red")) if note.startswith("orphaned") else ()


def _run_dict(run: Run) -> dict:
    from playbook_nb.faces import run_json

    return run_json.run_summary(run)


def run_status(run: Run, nodes: list[NodeStateRow] | None = None) -> Styled:
    """A run's status as the terminal shows it: "OK with 1 handled failure" in amber (from its `nodes`), else
    the status."""
    if run.status != "OK" or nodes is None:
        return styled(run.status, rich_style(run.status))
    from playbook_nb.faces import run_json

    label, state = run_json.outcome(run, nodes)
    return styled(label, rich_style(state))


RUN_COLUMNS = ("run", "#", "workflow", "status", "started", "duration", "trigger", "actor")


def _run_rows(runs: list[Run], store) -> list[tuple[Styled, ...]]:
    """The rows of `runs list` (and `show WORKFLOW`), for either writer (app.print_table); the node states
    of the OK runs (their handled failures) in one query."""
    nodes = store.node_states_of([run.id for run in runs if run.status == "OK"])
    return [
        (
            styled(str(run.id)),
            styled(str(run.number)),
            styled(run.title or run.workflow),
            run_status(run, nodes.get(run.id)) + _orphan_note(run),
            styled(_when(run.started_at)),
            styled(_duration(run)),
            styled(run.trigger or ""),
            styled(run.actor or ""),
        )
        for run in runs
    ]


@runs_app.command("list")
def runs_list(
    workflow: str = typer.Option(None, "--workflow", help="Only runs of this runbook title."),
    status: str = typer.Option(
        None, "--status", help="Only runs with this status (RUNNING, OK, NOK, ABORTED)."
    ),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    state_path: str = STATE_PATH,
) -> None:
    """List recorded runs, newest first."""
    store = open_store(state_path)
    runs = store.list_runs(workflow=workflow, status=status.upper() if status else None, limit=limit)
    if as_json:
        print(json.dumps([_run_dict(r) for r in runs], indent=2))
        return
    print_table(f"runs in {store.path}", RUN_COLUMNS, _run_rows(runs, store))


def _print_revisions(store, run_id: int) -> None:
    """A run resumed with --allow-changed under another text: every text it ran under is in the record."""
    revisions = store.revisions(run_id)
    if len(revisions) < 2:
        return
    print_lines(
        [
            styled(
                f"  revision {r.revision}: sha256 {r.runbook_sha256[:12]}  {_when(r.recorded_at)}  {r.actor or ''}"
            )
            for r in revisions
        ],
        highlight=False,
    )


@app.command("show")
def show(
    target: str = typer.Argument(
        ..., help="A run id, or a runbook title to list its runs (as the seed's show)."
    ),
    as_json: bool = typer.Option(False, "--json"),
    state_path: str = STATE_PATH,
) -> None:
    """Show one run (nodes, attempts, decisions), or the runs of a workflow."""
    from playbook_nb.faces import run_json

    store = open_store(state_path)
    if not target.isdigit():
        runs = store.list_runs(workflow=target, limit=100)
        if not runs:  # the rendered title a user saw ("myapp deployment pipeline"), not the raw template
            runs = [r for r in store.list_runs(limit=10_000) if r.title == target][:100]
        if not runs:
            raise PlaybookError(f"no runs of '{target}' in {store.path}")
        if as_json:
            print(json.dumps([_run_dict(r) for r in runs], indent=2))
        else:
            print_table(f"runs of {target}", RUN_COLUMNS, _run_rows(runs, store))
        return
    run = store.get_run(int(target))
    states = store.node_states(run.id)
    attempts = store.attempts(run.id)
    decisions = store.decisions(run.id)
    ran = ran_by_attempt(store.events(run.id))  # what each attempt ran, as recorded (never re-rendered)
    if as_json:
        data = run_json.run_summary(run, states)  # with its handled failures and status label
        data["nodes"] = [
            {"node": s.node_id, "state": s.state, "reason": s.reason, "attempts": s.attempts} for s in states
        ]
        data["attempts"] = [
            {
                "node": a.node_id,
                "attempt": a.attempt,
                "status": a.status,
                "duration": a.duration,
                "exit_code": a.exit_code,
                "error": a.error,
                "ran": ran.get((a.node_id, a.attempt)),
                "revision": a.revision,
            }
            for a in attempts
        ]
        data["revisions"] = [
            {
                "revision": r.revision,
                "sha256": r.runbook_sha256,
                "recorded_at": r.recorded_at,
                "actor": r.actor,
            }
            for r in store.revisions(run.id)
        ]
        data["decisions"] = [
            {
                "node": d.node_id,
                "decision": d.decision,
                "actor": d.actor,
                "source": d.source,
                "comment": d.comment,
            }
            for d in decisions
        ]
        print(json.dumps(data, indent=2, default=str))
        return
    reason = f" ({run.status_reason})" if run.status_reason else ""
    print_lines(
        [
            ((f"run {run.id}", "bold"), (f" (#{run.number}) {run.title}: ", ""))
            + run_status(run, states)
            + styled(reason)
        ]
    )
    if run_json.owner_note(run):
        print_lines([styled(run_json.owner_note(run))], highlight=False)
    print_lines(
        [
            styled(
                f"started {_when(run.started_at)}  ended {_when(run.ended_at)}  duration {_duration(run)}  "
                f"trigger {run.trigger}  actor {run.actor or ''}  host {run.host or ''}"
            ),
            styled(f"runbook sha256 {run.runbook_sha256}  version {run.runbook_version or ''}"),
        ]
    )
    _print_revisions(store, run.id)
    if (run.params or {}).get("legal_basis"):
        print_lines([styled(f"legal basis: {run.params['legal_basis']}")], highlight=False)
    if run.variables:
        print_lines([styled("variables: " + ", ".join(f"{k}={v}" for k, v in run.variables.items()))])
    last = {a.node_id: a for a in attempts}
    rows: list[tuple[Styled, ...]] = []
    for s in states:
        a = last.get(s.node_id)
        rows.append(
            (
                styled(s.node_id),
                styled(s.state, rich_style(s.state)),
                styled(str(s.attempts or 0)),
                styled("" if a is None or a.exit_code is None else str(a.exit_code)),
                styled("" if a is None or a.duration is None else f"{a.duration:.2f}s"),
                styled(s.reason or ""),
            )
        )
    print_table(None, ("node", "state", "attempts", "last exit", "duration", "reason"), rows)
    print_lines(
        [
            styled(f"ran: {a.node_id} attempt {a.attempt}: {ran_text(ran[(a.node_id, a.attempt)])}")
            for a in attempts
            if (a.node_id, a.attempt) in ran
        ],
        highlight=False,
    )
    lines = []
    for d in decisions:
        comment = f' "{d.comment}"' if d.comment else ""
        source = f" ({d.source})" if d.source else ""
        lines.append(
            styled(
                f"decision: {d.decision} on {d.node_id} by {d.actor or ''}{source} at {_when(d.decided_at)}"
                f"{comment}"
            )
        )
    if run.notebook_path:
        lines.append(styled(f"notebook: {run.notebook_path}"))
    print_lines(lines)


@app.command("info")
def info(
    plugins: bool = typer.Option(False, "--plugins", help="List installed plugins and their functions."),
    workflow: str = typer.Option(None, "--workflow"),
    state_path: str = STATE_PATH,
    runbook_file: Path = typer.Option(
        None, "--runbook", help="Show KPI attainment for this runbook's workflow (its [runbook] kpis)."
    ),
    as_json: bool = JSON,
) -> None:
    """Statistics over recorded runs (with KPI attainment for a workflow), or the installed plugins."""
    if as_json:
        json_output()
    from rich.table import Table

    if plugins:
        _info_plugins(as_json)
        return
    store = open_store(state_path)
    kpi_runbook = None
    if runbook_file is not None:
        from playbook_nb.app.inputs import load_runbook

        kpi_runbook = load_runbook(runbook_file)
        workflow = workflow or kpi_runbook.meta.title
    stats = store.stats(workflow)
    if as_json:
        emit_json({"run_index": str(store.path), **stats, "kpis": _kpi_json(store, workflow, kpi_runbook)})
        return
    console.print(f"run index: {store.path}")
    console.print(
        f"runs: {stats['runs']}  " + "  ".join(f"{k}: {v}" for k, v in sorted(stats["by_status"].items()))
    )
    rate = stats.get("success_rate")
    console.print(f"success rate: {rate * 100:.1f}%" if rate is not None else "success rate: n/a")
    if stats.get("mean_run_seconds") is not None:
        console.print(f"mean run duration: {stats['mean_run_seconds']:.2f}s")
    if stats.get("runs_per_workflow"):
        for name, row in stats["runs_per_workflow"].items():
            count = row.get("runs", row) if isinstance(row, dict) else row
            ok = f", {row.get('ok', 0)} OK" if isinstance(row, dict) else ""
            console.print(f"  {escape(name)}: {count} runs{ok}")
    nodes = stats.get("nodes") or {}
    if nodes:
        table = Table(title="per node")
        for column in ("node", "attempts", "failed attempts", "mean duration"):
            table.add_column(column)
        for node_id, row in nodes.items():
            mean = row.get("mean_seconds")
            table.add_row(
                node_id, str(row.get("attempts", 0)), str(row.get("failed_attempts", 0)),
                f"{mean:.3f}s" if mean is not None else "",
            )  # fmt: skip
        console.print(table)
    if workflow is not None:
        _print_kpis(store, workflow, kpi_runbook)


def _info_plugins(as_json: bool) -> None:
    """`info --plugins`: the installed plugins and their functions."""
    from rich.table import Table

    from playbook_nb.adapters.plugins.registry import list_plugins
    from playbook_nb.domain.errors import PluginError

    problems: list[PluginError] = []
    if as_json:
        emit_json(
            {
                "plugins": [
                    {
                        "plugin": meta.name,
                        "version": meta.version,
                        "functions": {
                            fn.name: {
                                "description": fn.description,
                                "parameters": {
                                    name: {"type": p.type, "required": p.required}
                                    for name, p in fn.parameters.items()
                                },
                            }
                            for fn in meta.functions.values()
                        },
                    }
                    for meta in list_plugins(problems)
                ],
                "problems": [str(problem) for problem in problems],
            }
        )
        return
    table = Table(title="plugins (entry point group playbook.plugins)")
    for column in ("plugin", "version", "function", "parameters", "description"):
        table.add_column(column)
    for meta in list_plugins(problems):
        for fn in meta.functions.values():
            params = ", ".join(
                f"{name}: {p.type}{'' if p.required else '?'}" for name, p in fn.parameters.items()
            )
            table.add_row(meta.name, meta.version, fn.name, escape(params), escape(fn.description))
    console.print(table)
    for problem in problems:
        console.print(f"[red]could not load:[/] {escape(str(problem))}")


def _kpi_runbook(store, workflow: str, runbook=None):
    """The kpis of --runbook, else of the runbook text of the workflow's latest run (None: no such run)."""
    from playbook_nb.domain.validation import parse_runbook

    if runbook is not None:
        return runbook
    latest = store.latest_run(workflow)
    if latest is None:
        return None
    try:
        return parse_runbook(latest.runbook_text, path=f"run {latest.id}")
    except PlaybookError:
        return None


def _kpi_json(store, workflow: str | None, runbook=None) -> list[dict] | None:
    from playbook_nb.domain.kpis import kpi_attainment, kpi_lines

    if workflow is None:
        return None
    runbook = _kpi_runbook(store, workflow, runbook)
    if runbook is None or runbook.meta.kpis is None:
        return []
    return [
        {"kpi": name, "attainment": text, "met": met}
        for name, text, met in kpi_lines(kpi_attainment(store, workflow, runbook.meta.kpis))
    ]


def _print_kpis(store, workflow: str, runbook=None) -> None:
    """KPI attainment (issue 9): the kpis of --runbook, else of the runbook text of the workflow's latest run."""
    from playbook_nb.domain.kpis import kpi_attainment, kpi_lines

    runbook = _kpi_runbook(store, workflow, runbook)
    if runbook is None:
        return
    meta = runbook.meta
    if meta.owner:
        console.print(f"owner: {escape(meta.owner)}")
    for assumption in meta.assumptions:
        console.print(f"assumes: {escape(str(assumption))}")
    from rich.table import Table

    if meta.kpis is None:
        console.print(
            'KPIs: none declared ([runbook] kpis = { max_duration = "15m", target_success_rate = 0.95 })'
        )
        return
    table = Table(title=f"KPI attainment: {escape(workflow)}")
    for column in ("KPI", "attainment", "met"):
        table.add_column(column)
    for name, text, met in kpi_lines(kpi_attainment(store, workflow, meta.kpis)):
        mark = "[green]yes[/]" if met else "[red]no[/]" if met is False else "n/a"
        table.add_row(name, escape(text), mark)
    console.print(table)
