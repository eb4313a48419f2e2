"""`test` (rehearsal against fixtures, acceptance packs) and `replay` (re-run a recorded run, report deviations)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from playbook_nb.app.inputs import parse_var_assignments
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.faces.cli.app import app, console
from playbook_nb.faces.cli.common import STATE_PATH, VAR, open_store


def _show_rehearsal(result, runbook=None) -> None:
    if runbook is not None:
        for assumption in runbook.meta.assumptions:
            console.print(f"  [dim]assumes:[/] {escape(assumption)}", highlight=False)
    mark = "[green]PASS[/]" if result.ok else "[bold red]FAIL[/]"
    console.print(
        f"{mark} {escape(result.name)}: run {result.status}, {len(result.executed)} node attempts answered "
        f"by the fixture (nothing executed)",
        highlight=False,
    )
    if result.mismatches:
        table = Table(title=f"mismatches in {result.name}")
        for column in ("what", "expected", "actual"):
            table.add_column(column)
        for m in result.mismatches:
            table.add_row(escape(m.what), escape(str(m.expected)), escape(str(m.actual)))
        console.print(table)


@app.command("test")
def test(
    runbook_file: Path = typer.Argument(None, help="The runbook to rehearse (with --fixture)."),
    fixture: Path = typer.Option(None, "--fixture", help="Node results and expected states (TOML or JSON)."),
    pack: Path = typer.Option(None, "--pack", help="An acceptance pack directory (acceptance.toml)."),
    state_path: str = typer.Option(
        None, "--state-path", help="Record rehearsal runs in this index (default: a throw-away one)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Rehearse a runbook against a fixture (nothing is executed) and check the expected final states.

    Exit 0: every expectation met; 1: a mismatch; 2: invalid runbook, fixture or pack."""
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.rehearsal import PackCase, load_pack, run_case

    if (pack is None) == (runbook_file is None or fixture is None):
        raise PlaybookError("test: give RUNBOOK --fixture FILE, or --pack DIR")
    store = open_store(state_path) if state_path else None
    cases = load_pack(pack) if pack is not None else [PackCase(fixture.stem, runbook_file, fixture, None)]
    results = []
    for case in cases:
        result = run_case(case, store=store)
        results.append(result)
        if not as_json:
            _show_rehearsal(result, load_runbook(case.runbook) if len(cases) == 1 else None)
    if as_json:
        doc = [
            {
                "name": r.name,
                "ok": r.ok,
                "run": r.status,
                "states": r.states,
                "outputs": r.outputs,
                "mismatches": [
                    {"what": m.what, "expected": m.expected, "actual": m.actual} for m in r.mismatches
                ],
            }
            for r in results
        ]
        console.print_json(json.dumps(doc))
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
    from playbook_nb.app.replay import replay_run

    store = open_store(state_path)
    given = parse_var_assignments(var or [])
    if not as_json:
        console.print(f"replaying run {run_id} from {store.path}")
    result = replay_run(store, run_id, given=given, parallel=parallel)
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
        raise typer.Exit(0)
    console.print(f"[bold red]{len(result.deviations)} deviation(s)[/] from run {run_id}")
    raise typer.Exit(1)
