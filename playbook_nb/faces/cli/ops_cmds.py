"""`test` (rehearsal against fixtures, acceptance packs) and `replay` (re-run a recorded run, report deviations)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.exit_codes import ExitCode
from playbook_nb.faces.cli.app import app, console, escape
from playbook_nb.faces.cli.common import STATE_PATH, VAR, open_store


def _show_rehearsal(result, runbook=None) -> None:
    """OPS-001's report: one ✓/✗ line per check, then PASS or FAIL."""
    title = f" ({escape(runbook.meta.title)})" if runbook is not None else ""
    console.print(f"[bold]{escape(result.name)}[/]{title}: run {result.status}", highlight=False)
    if runbook is not None and runbook.meta.legal_basis:
        console.print(f"  [dim]legal basis:[/] {escape(runbook.meta.legal_basis)}", highlight=False)
    colour = {True: "green", False: "red", None: "dim"}
    for check in result.checks:
        console.print(f"[{colour[check.ok]}]{escape(check.line)}[/]", highlight=False)
    for m in result.mismatches:
        console.print(
            f"[red]✗ Expected: {escape(m.what)} ({escape(str(m.expected))} expected, got {escape(str(m.actual))})[/]",
            highlight=False,
        )
    console.print("[green]PASS[/]" if result.ok else "[bold red]FAIL[/]", highlight=False)


def _result_dict(r) -> dict:
    return {
        "name": r.name,
        "ok": r.ok,
        "run": r.status,
        "states": r.states,
        "outputs": r.outputs,
        "checks": [c.to_dict() for c in r.checks],
        "mismatches": [{"what": m.what, "expected": m.expected, "actual": m.actual} for m in r.mismatches],
    }


@app.command("test")
def test(
    runbook_file: Path = typer.Argument(None, help="The runbook to rehearse (with --fixture)."),
    fixture: Path = typer.Option(
        None, "--fixture", help="Node results and expected states (TOML, JSON, YAML)."
    ),
    pack: Path = typer.Option(None, "--pack", help="An acceptance pack directory (acceptance.yml or .toml)."),
    state_path: str = typer.Option(
        None, "--state-path", help="Record rehearsal runs in this index (default: a throw-away one)."
    ),
    update_baselines: bool = typer.Option(
        False,
        "--update-baselines",
        help="Write this run's screenshots as the new baselines (on purpose only).",
    ),
    report: Path = typer.Option(None, "--report", help="Also write an HTML report of every check here."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Rehearse a runbook against a fixture and check assumptions, steps, KPIs, screenshots and expectations.

    Nothing external is touched: commands are answered by the fixture; built-in steps run with its stand-ins.
    Exit 0: every check passed; 1: a check failed; 2: invalid runbook, fixture or pack."""
    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.rehearsal import PackCase, load_pack, run_case

    if (pack is None) == (runbook_file is None or fixture is None):
        raise PlaybookError("test: give RUNBOOK --fixture FILE, or --pack DIR")
    store = open_store(state_path) if state_path else None
    cases = (
        load_pack(pack)
        if pack is not None
        else [PackCase(fixture.stem, runbook_file, fixture, None, fixture.parent)]
    )
    results = []
    first_runbook = None
    for case in cases:
        runbook = load_runbook(case.runbook)
        first_runbook = first_runbook or runbook
        result = run_case(case, store=store, executor=LocalExecutor(), update_baselines=update_baselines)
        results.append(result)
        if not as_json:
            _show_rehearsal(result, runbook)
    if report is not None:
        from playbook_nb.adapters.export.dag_render import render_internal

        report.write_text(
            render_internal(
                "test_report.html.j2",
                title=first_runbook.meta.title if first_runbook else "rehearsal",
                legal_basis=first_runbook.meta.legal_basis if first_runbook else "",
                results=results,
                ok=all(r.ok for r in results),
                passed=sum(1 for r in results if r.ok),
            ),
            encoding="utf-8",
        )
    if as_json:
        console.print_json(json.dumps([_result_dict(r) for r in results]))
    elif pack is not None:
        passed = sum(1 for r in results if r.ok)
        console.print(f"{passed}/{len(results)} cases passed")
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@app.command("replay")
def replay(
    run_id: int = typer.Argument(..., help="The recorded run to replay."),
    var: list[str] = VAR,
    state_path: str = STATE_PATH,
    parallel: int = typer.Option(1, "--parallel", min=1, help="Run up to N independent nodes at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Re-run a recorded run for real, with its recorded variables and decisions; report every deviation.

    Exit 0: identical; 1: deviations; 2: cannot replay (e.g. a secret is missing)."""
    from rich.table import Table

    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.app.inputs import parse_var_assignments
    from playbook_nb.app.replay import replay_run

    store = open_store(state_path)
    given = parse_var_assignments(var or [])
    if not as_json:
        console.print(f"replaying run {run_id} from {store.path}")
    result = replay_run(store, run_id, given=given, parallel=parallel, executor=LocalExecutor())
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
        raise typer.Exit(0 if result.identical else 1)
    table = Table(title=f"replay of run {run_id} = run {result.replay_run}")
    for column in ("", "node", "original", "replay"):
        table.add_column(column)
    for c in result.nodes:

        def fmt(facts):
            text = f"{facts.get('state')} x{facts.get('attempts')}"
            if facts.get("exit_code") is not None:
                text += f" exit {facts['exit_code']}"
            if facts.get("outputs"):
                text += f" {json.dumps(facts['outputs'], sort_keys=True)}"
            return escape(text)

        table.add_row(
            "[green]✓[/]" if c.same else "[red]✗[/]", escape(c.node_id), fmt(c.original), fmt(c.replay)
        )
    console.print(table)
    for d in result.deviations:
        console.print(
            f"[red]deviation[/] {escape(d.what)}: {escape(str(d.original))} -> {escape(str(d.replay))}"
        )
    if result.identical:
        console.print(
            f"[green]REPLAY VERIFIED[/]: run {result.replay_run} matches run {run_id} ({result.replay_status})"
        )
        raise typer.Exit(ExitCode.OK)
    console.print(f"[bold red]{len(result.deviations)} deviation(s)[/] from run {run_id}")
    raise typer.Exit(ExitCode.NOK)
