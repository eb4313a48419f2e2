"""The `runs` command group, and its `diff` and `prune` commands.

Other modules add their own commands to `runs_app` (`runs list` lives in `runs_cmds`); importing this module
registers the group on the application once.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import typer

from playbook_nb.domain.exit_codes import ExitCode
from playbook_nb.faces.cli.app import app, console, err_console, fail
from playbook_nb.faces.cli.common import STATE_PATH, open_store
from playbook_nb.presentation import rich_style

runs_app = typer.Typer(help="Inspect, compare and prune recorded runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

if TYPE_CHECKING:  # Rich and the diff/prune machinery are imported when a command runs (start-up)
    from rich.text import Text


def _state(text: str) -> Text:
    from rich.text import Text

    return Text(text, style=rich_style(text.split(" ")[0]))


def _signed(seconds: float | None) -> str:
    from playbook_nb.adapters.export.report import fmt_duration

    if seconds is None:
        return ""
    return ("+" if seconds >= 0 else "-") + fmt_duration(abs(seconds))


def _side(side: dict | None, key: str) -> str:
    from playbook_nb.adapters.export.report import fmt_duration

    if side is None:
        return "—"
    value = side[key]
    if key == "duration":
        return fmt_duration(value)
    if key == "exit_codes":
        return ",".join("—" if c is None else str(c) for c in value) or "—"
    return str(value)


def _print_diff(result: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    from playbook_nb.adapters.export.diff import status_text

    old, new = result["old"], result["new"]
    console.print(
        Text.assemble(
            ("diff ", "bold"),
            f"run {old['id']} (#{old['number']}, ",
            _state(old["status"]),
            f") -> run {new['id']} (#{new['number']}, ",
            _state(new["status"]),
            ")",
        )
    )
    rb = result["runbook"]
    if rb["workflow_changed"]:
        console.print(f"workflow: {old['workflow']} -> {new['workflow']}", highlight=False, markup=False)
    if rb["version_changed"]:
        console.print(
            f"runbook version: {old['runbook_version']} -> {new['runbook_version']}",
            highlight=False,
            markup=False,
        )
    if rb["sha256_changed"]:
        console.print(
            f"runbook sha256: {old['runbook_sha256'][:12]} -> {new['runbook_sha256'][:12]} (the runbook changed)",
            highlight=False,
        )
    else:
        console.print(f"runbook: same text (sha256 {new['runbook_sha256'][:12]})", highlight=False)

    if result["variables"]:
        table = Table(title="variables (secrets masked)", title_justify="left")
        for column in ("variable", f"run {old['id']}", f"run {new['id']}"):
            table.add_column(column)
        for item in result["variables"]:
            table.add_row(
                item["name"],
                "(absent)" if item["only_in"] == "new" else json.dumps(item["old"]),
                "(absent)" if item["only_in"] == "old" else json.dumps(item["new"]),
            )
        console.print(table)
    else:
        console.print("variables: same values", highlight=False)

    table = Table(title="nodes", title_justify="left")
    widest = max((len(n["node_id"]) for n in result["nodes"]), default=4)
    table.add_column("node", min_width=widest, no_wrap=True)
    for column in ("status", "attempts", "duration", "change", "exit codes"):
        table.add_column(column)
    for node in result["nodes"]:
        a, b = node["old"], node["new"]
        status = Text.assemble(_state(status_text(a)), " -> ", _state(status_text(b)))
        if not node["changed"]:
            status.stylize("dim")
        table.add_row(
            Text(node["node_id"], style="bold" if node["changed"] else "dim"),
            status,
            f"{_side(a, 'attempts')} -> {_side(b, 'attempts')}",
            f"{_side(a, 'duration')} -> {_side(b, 'duration')}",
            _signed(node["duration_change"]),
            f"{_side(a, 'exit_codes')} -> {_side(b, 'exit_codes')}",
        )
    console.print(table)
    for node in result["nodes"]:
        if node.get("fleet"):
            _print_host_diff(node)
    for node in result["nodes"]:
        if node["stdout_diff"]:
            console.print(Text(f"stdout of {node['node_id']}:", style="bold"))
            for line in node["stdout_diff"]:
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
                console.print(Text("  " + line, style=style), soft_wrap=True)
    changed = result["changed_nodes"]
    console.print(f"{len(changed)} node(s) changed: {', '.join(changed) or 'none'}", highlight=False)


def _host_text(side: dict | None) -> Text:
    from rich.text import Text

    if side is None:
        return Text("absent", style="dim")
    code = "" if side["exit_code"] is None else f" (exit {side['exit_code']})"
    return Text.assemble(_state(side["state"]), code)


def _print_host_diff(node: dict) -> None:
    """Fleet nodes: the hosts whose outcome changed between the runs (issue 21)."""
    from rich.table import Table

    if not node["hosts"]:
        console.print(f"hosts of {node['node_id']}: same outcome on every host", highlight=False)
        return
    table = Table(title=f"hosts of {node['node_id']} that changed", title_justify="left")
    for column in ("host", "old", "new"):
        table.add_column(column)
    for change in node["hosts"]:
        table.add_row(change["host"], _host_text(change["old"]), _host_text(change["new"]))
    console.print(table)


@runs_app.command("diff")
def diff_cmd(
    run_a: int = typer.Argument(..., metavar="A", help="First run (the older one, or the run to check)."),
    run_b: int | None = typer.Argument(None, metavar="[B]", help="Second run."),
    against_last_ok: bool = typer.Option(
        False, "--against-last-ok", help="Compare the newest earlier OK run of A's workflow with A."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
    state_path: str | None = STATE_PATH,
) -> None:
    """What changed from run A to run B: node states, attempts, durations, exit codes, stdout, variables."""
    from playbook_nb.adapters.export.diff import diff_runs, last_ok_run

    if (run_b is None) == (not against_last_ok):
        raise fail("runs diff: give two runs (A B), or one run and --against-last-ok")
    with open_store(state_path) as store:
        if run_b is None:  # then --against-last-ok (checked above: one of the two, never both)
            old_id, new_id = last_ok_run(store, store.get_run(run_a)).id, run_a
        else:
            old_id, new_id = run_a, run_b
        result = diff_runs(store, old_id, new_id)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return
    _print_diff(result)


@runs_app.command("prune")
def prune_cmd(
    older_than: str | None = typer.Option(
        None,
        "--older-than",
        help="Age: 30d, 12h or 90m (by start time). Default: the configured [runs] retention (by end time).",
    ),
    status: str | None = typer.Option(
        None, "--status", help="Only runs with this final status (OK, NOK, ABORTED)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed; remove nothing."),
    state_path: str | None = STATE_PATH,
) -> None:
    """Remove finished runs older than an age, with their artifact directories. RUNNING runs are kept."""
    from playbook_nb.adapters.export.prune import execute_prune, human_bytes, plan_prune
    from playbook_nb.app.settings import Settings
    from playbook_nb.domain.ages import parse_age

    settings = Settings.load()
    since_end = older_than is None
    if older_than is None:
        older_than = settings.config.runs.retention
        if older_than is None:
            raise fail(
                'give --older-than AGE, or set a retention: [runs] retention = "30d" in the configuration'
            )
        console.print(
            f"retention {older_than} (configuration): finished runs that ended before then", highlight=False
        )
    age = parse_age(older_than)
    with open_store(state_path, settings) as store:
        plan = plan_prune(store, age, status, since_end=since_end)
        result = execute_prune(store, plan, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for run in plan.runs:
        if run.id in result.runs:
            console.print(
                f"  {verb} run {run.id} ({run.title or run.workflow} #{run.number}, {run.status}, started "
                f"{run.started_at:%Y-%m-%d %H:%M})",
                highlight=False,
                markup=False,
            )
    console.print(
        f"{verb} {len(result.runs)} run(s), {'would free' if dry_run else 'freed'} "
        f"{human_bytes(result.bytes_freed)} ({result.bytes_freed} bytes) of artifacts",
        highlight=False,
    )
    if plan.running_kept:
        ids = ", ".join(str(r.id) for r in plan.running_kept)
        console.print(f"kept {len(plan.running_kept)} RUNNING run(s) older than that: {ids}", highlight=False)
    for error in result.errors:
        err_console.print(f"error: {error}", highlight=False, markup=False)
    if result.errors:
        raise typer.Exit(ExitCode.NOK)
