"""`export` (HTML post-mortem report, executed notebook), `scan` (secret values in artifacts), `verify`
(the event hash chain of a run). `runs diff` and `runs prune` live in `runs_group`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from playbook_nb.domain.exit_codes import ExitCode
from playbook_nb.faces.cli import runs_group  # noqa: F401  (registers the `runs` group with diff and prune)
from playbook_nb.faces.cli.app import app, console, emit_json, err_console, fail, json_active, json_output
from playbook_nb.faces.cli.common import JSON, STATE_PATH, VAR, open_store

if TYPE_CHECKING:  # the report (Jinja2) and the scanner are imported when a command runs (start-up)
    from playbook_nb.domain.redact import Redactor


def _export_redactor(secret_env: list[str]) -> Redactor:
    from playbook_nb.adapters.export.scan import secret_env_values
    from playbook_nb.domain.redact import Redactor

    values = list(secret_env_values().values())
    for name in secret_env:
        value = os.environ.get(name)
        if not value:
            raise fail(f"--secret-env {name}: environment variable {name} is not set or empty")
        values.append(value)
    return Redactor(values, shapes=True)  # and well-known secret shapes nobody declared


@app.command("export")
def export_cmd(
    run_id: int = typer.Argument(..., help="Run id (as shown by `run` and `runs list`)."),
    html: Path | None = typer.Option(None, "--html", help="Write the self-contained HTML post-mortem here."),
    notebook: Path | None = typer.Option(None, "--notebook", help="Copy the run's executed notebook here."),
    secret_env: list[str] | None = typer.Option(
        None,
        "--secret-env",
        help="Environment variable holding a secret value to mask and check for (repeatable); "
        "PLAYBOOK_SECRET_* variables are used too.",
    ),
    state_path: str | None = STATE_PATH,
    as_json: bool = JSON,
) -> None:
    """Export a run: an offline HTML report (DAG, timeline, nodes, approvals, audit) and/or its notebook."""
    if as_json:
        json_output()
    import html as html_lib  # here: its entity table costs a millisecond at every start

    from playbook_nb.adapters.export.report import copy_notebook, render_report, write_output
    from playbook_nb.adapters.export.scan import count_secrets, scan_file

    if html is None and notebook is None:
        raise fail("export: give --html FILE and/or --notebook FILE")
    redactor = _export_redactor(secret_env or [])
    with open_store(state_path) as store:
        if html is not None:
            text = render_report(store, run_id, redactor)
            leaks = count_secrets(text, redactor) + count_secrets(html_lib.unescape(text), redactor)
            if leaks:
                err_console.print(f"run {run_id}: the report still holds a known secret value; not written")
                raise typer.Exit(ExitCode.NOK)
            write_output(html, text)
            console.print(f"wrote the report of run {run_id} to {html}", highlight=False)
        if notebook is not None:
            source = copy_notebook(store, run_id, notebook)
            if redactor:
                findings = scan_file(notebook, redactor)
                if findings:
                    notebook.unlink()
                    for finding in findings:
                        err_console.print(f"secret found: {finding}", highlight=False, markup=False)
                    raise typer.Exit(ExitCode.NOK)
            console.print(f"wrote the notebook of run {run_id} ({source}) to {notebook}", highlight=False)
    if as_json:
        emit_json(
            {
                "run_id": run_id,
                "html": str(html) if html is not None else None,
                "notebook": str(notebook) if notebook is not None else None,
            }
        )


@app.command("scan")
def scan_cmd(
    path: Path = typer.Argument(
        ..., help="File or directory of artifacts (notebooks, HTML, JSON, run index, logs)."
    ),
    value_env: list[str] | None = typer.Option(
        None, "--value-env", help="Environment variable holding a secret value to look for (repeatable)."
    ),
    values_file: Path | None = typer.Option(
        None, "--values-file", help="File with one secret value per line (# comments, blank lines ignored)."
    ),
    runbook: Path | None = typer.Option(
        None,
        "--runbook",
        help="Runbook whose secret variables to look for (values from --var or PLAYBOOK_SECRET_*).",
    ),
    var: list[str] | None = VAR,
    as_json: bool = JSON,
) -> None:
    """Report every place a known secret value or a well-known secret shape (cloud keys, tokens, private keys)
    appears in artifacts (never the value). Exit 1 when found.

    Without --value-env, --values-file or --runbook, the values of the PLAYBOOK_SECRET_* environment variables
    are looked for. Shell-quoted, JSON-escaped and repr forms are found too; the shapes are detect-secrets'.
    """
    if as_json:
        json_output()
    from playbook_nb.adapters.export.scan import (
        ScanArgumentError,
        check_scannable,
        collect_secret_values,
        scan_path,
    )
    from playbook_nb.domain.redact import Redactor

    if not path.exists():
        raise fail(f"scan: {path} does not exist")
    try:
        values = collect_secret_values(
            value_envs=value_env or [], values_file=values_file, runbook_path=runbook, var=var or []
        )
    except ScanArgumentError as err:
        raise fail(str(err)) from None
    for warning in check_scannable(values):
        err_console.print(f"warning: {warning}", highlight=False, markup=False)
    redactor = Redactor(values.values(), shapes=True)
    report = scan_path(path, redactor)
    for error in report.errors:
        err_console.print(f"warning: {error}", highlight=False, markup=False)
    for finding in report.findings:
        console.print(f"FOUND {finding}", highlight=False, markup=False, soft_wrap=True)
    if json_active():
        emit_json(
            {
                "clean": not report.findings,
                "files_scanned": report.files,
                "secret_values": len(values),
                "findings": [
                    {"path": str(f.path), "location": f.location, "count": f.count} for f in report.findings
                ],
                "warnings": list(report.errors),
                "exit_code": int(ExitCode.NOK if report.findings else ExitCode.OK),
            }
        )
    what = f"{len(values)} secret value{'s' if len(values) != 1 else ''} and well-known secret shapes"
    if report.findings:
        files = len({f.path for f in report.findings})
        console.print(
            f"{len(report.findings)} place(s) in {files} file(s) hold a secret "
            f"({report.files} files scanned for {what})",
            highlight=False,
        )
        raise typer.Exit(ExitCode.NOK)
    console.print(f"clean: {report.files} files scanned for {what}, nothing found", highlight=False)


@app.command("verify")
def verify_cmd(
    run_id: int = typer.Argument(..., help="Run id."),
    head: str | None = typer.Option(
        None,
        "--head",
        help="The chain head exported earlier (verify --json's head): the chain must end in it.",
    ),
    state_path: str | None = STATE_PATH,
    as_json: bool = JSON,
) -> None:
    """Check the hash chain of a run's events: exit 0 when intact, 1 when an event was changed, added or removed.

    With a chain key (PLAYBOOK_CHAIN_KEY or PLAYBOOK_CHAIN_KEY_FILE) the events are HMAC-chained and checked
    under it: a rewrite by someone without the key is caught, and so is an unkeyed chain.
    """
    from playbook_nb.adapters.store.hashing import KEYED_PREFIX

    if as_json:
        json_output()
    with open_store(state_path) as store:
        run = store.get_run(run_id)
        problems = store.verify_events(run_id)
    if head is not None and head != run.event_head:
        problems.append(
            f"run {run_id}: the chain ends in {run.event_head or 'nothing'}, not in the head given"
        )
    keyed = run.event_head.startswith(KEYED_PREFIX)
    if as_json:
        emit_json(
            {
                "run_id": run_id,
                "intact": not problems,
                "events": run.event_count,
                "head": run.event_head,
                "keyed": keyed,
                "problems": [str(p) for p in problems],
                "exit_code": int(ExitCode.NOK if problems else ExitCode.OK),
            }
        )
    if not problems:
        console.print(
            f"OK: run {run_id} event hash chain intact ({run.event_count} events, "
            f"{'keyed (HMAC)' if keyed else 'unkeyed'}); head {run.event_head}",
            highlight=False,
            soft_wrap=True,
        )
        return
    for problem in problems:
        console.print(f"TAMPERED: {problem}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"run {run_id}: {len(problems)} problem(s) in the event log", highlight=False)
    raise typer.Exit(ExitCode.NOK)
