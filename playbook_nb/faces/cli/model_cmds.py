"""Commands about the runbook itself: validate, create, dag and the seed's export-dot."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from playbook_nb.domain.errors import PlaybookError, RunbookError
from playbook_nb.faces.cli.app import Styled, app, console, emit_json, json_output, print_lines, styled
from playbook_nb.faces.cli.common import JSON

if TYPE_CHECKING:  # the model, networkx and Jinja2 are imported when a command runs (start-up of --help)
    from playbook_nb.domain.model import Runbook


def _names(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


def _summary(runbook: Runbook) -> dict[str, int | list[str]]:
    from playbook_nb.domain.model import NodeType
    from playbook_nb.domain.plan import build_plan, leaves, roots

    graph = build_plan(runbook)
    critical = [
        node_id + (" (templated)" if isinstance(node.critical, str) else "")
        for node_id, node in runbook.nodes.items()
        if node.critical is True or isinstance(node.critical, str)
    ]
    gates = [node_id for node_id, node in runbook.nodes.items() if node.type is NodeType.MANUAL]
    variables = [
        name
        + (" (required)" if var.required and not var.has_default else "")
        + (" (secret)" if var.secret or name in runbook.secret_names else "")
        for name, var in runbook.variables.items()
    ]
    return {
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "roots": roots(graph),
        "leaves": leaves(graph),
        "critical": critical,
        "gates": gates,
        "variables": variables,
    }


@app.command()
def validate(
    file: Path = typer.Argument(..., help="The runbook (*.playbook.toml)."),
    check_vars: bool = typer.Option(False, "--check-vars", help="Every required variable must have a value."),
    var: list[str] = typer.Option([], "--var", help="A variable value, NAME=VALUE; repeatable."),
    vars_file: Path | None = typer.Option(None, "--vars-file", help="Variable values (TOML, YAML or JSON)."),
    vars_env: str | None = typer.Option(None, "--vars-env", help="Read variables from $PREFIX<NAME>."),
    as_json: bool = JSON,
) -> None:
    """Check a runbook (TOML, fields, dependencies, templates) without running anything."""
    if as_json:
        json_output()
        try:
            _validate(file, check_vars, var, vars_file, vars_env, as_json=True)
        except PlaybookError as err:
            emit_json({"valid": False, "file": str(file), "error": str(err), "exit_code": err.exit_code})
            raise
        return
    _validate(file, check_vars, var, vars_file, vars_env, as_json=False)


def _validate(file, check_vars, var, vars_file, vars_env, *, as_json: bool) -> None:
    from playbook_nb.app.inputs import load_runbook, parse_var_assignments, resolve_variables
    from playbook_nb.domain.model import NodeType
    from playbook_nb.domain.validation import validate_runbook
    from playbook_nb.domain.variables import missing_required

    runbook = load_runbook(file)
    values = None
    missing: list[str] = []
    if check_vars or var or vars_file or vars_env:
        values = resolve_variables(
            runbook,
            cli_vars=parse_var_assignments(var),
            vars_file=vars_file,
            vars_env_prefix=vars_env,
            interactive=False,
            allow_missing=not check_vars,
        )
        missing = missing_required(runbook, values)
    if missing:
        values = None  # templates cannot be rendered without them; the structure was checked already
    report = validate_runbook(runbook, values)
    if any(node.type is NodeType.FUNCTION for node in runbook.nodes.values()):
        # the installed plugins (their entry points: importlib.metadata, about 10 ms) only for Function nodes
        from playbook_nb.adapters.plugins.registry import INSTALLED
        from playbook_nb.app.plugin_checks import plugin_problems

        report.errors.extend(plugin_problems(runbook, INSTALLED, values))
    if report.errors:
        raise RunbookError(report.errors[0])
    title = _display_title(runbook, values)
    if as_json:
        emit_json(
            {
                "valid": True,
                "file": str(file),
                "title": title,
                "summary": _summary(runbook),
                "variables_checked": values is not None,
                "missing": missing,
                "warnings": list(report.warnings),
            }
        )
        return
    lines: list[Styled] = [(("valid:", "bold green"), (f" {file} — {title}", ""))]
    for label, value in _summary(runbook).items():
        text = _names(value) if isinstance(value, list) else str(value)
        lines.append(styled(f"  {label + ':':<11}{text}"))
    if values is not None:
        lines.append(styled("  variables checked: every templated field renders with these values"))
    for name in missing:
        lines.append(
            (
                ("warning:", "yellow"),
                (f" required variable {name} has no value (checked with --check-vars)", ""),
            )
        )
    for warning in report.warnings:
        lines.append((("warning:", "yellow"), (f" {warning}", "")))
    print_lines(lines, highlight=False, soft_wrap=True)


def _display_title(runbook: Runbook, values: dict | None) -> str:
    """The title with variables filled in where the known values allow it, else as written."""
    from playbook_nb.domain.templating import make_context, render

    known = (
        values
        if values is not None
        else {n: v.default for n, v in runbook.variables.items() if v.has_default}
    )
    try:
        return render(runbook.meta.title, make_context(known), "title")
    except PlaybookError:
        return runbook.meta.title


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "runbook"


@app.command()
def create(
    title: str = typer.Option(..., "--title", help="The runbook's title."),
    author: str = typer.Option(..., "--author", help="Who wrote it."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Where to write it (default: <title>.playbook.toml)."
    ),
) -> None:
    """Write a valid starter runbook to edit."""
    from playbook_nb.faces.starter import starter_runbook

    path = output or Path(f"{_slug(title)}.playbook.toml")
    if path.exists():
        raise _exists(path)
    text = starter_runbook(title, author, path.name)
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as err:
        raise RunbookError(f"cannot write it ({err.strerror or err})", str(path)) from None
    console.print(f"created {path}", highlight=False)


def _exists(path: Path) -> RunbookError:
    return RunbookError("already exists; refusing to overwrite it (choose another name with -o)", str(path))


class DagFormat(StrEnum):
    svg = "svg"
    dot = "dot"


def _write_or_print(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise RunbookError(f"cannot write it ({err.strerror or err})", str(output)) from None
    console.print(f"wrote {output}", highlight=False)


@app.command()
def dag(
    file: Path = typer.Argument(..., help="The runbook (*.playbook.toml)."),
    format: DagFormat = typer.Option(
        DagFormat.svg, "--format", "-f", help="svg (no Graphviz needed) or dot."
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="Where to write it (default: stdout)."),
) -> None:
    """Draw the runbook's DAG as SVG or Graphviz DOT."""
    from playbook_nb.adapters.export.dag_render import to_dot, to_svg
    from playbook_nb.app.inputs import load_runbook

    runbook = load_runbook(file)
    _write_or_print(to_svg(runbook) if format is DagFormat.svg else to_dot(runbook), output)


@app.command()
def convert(
    file: Path = typer.Argument(..., help="The runbook (*.playbook.toml, or OPS-001 YAML *.yml)."),
    to: str = typer.Option(None, "--to", help="yaml or toml (default: the other one)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Where to write it (default: stdout)."),
) -> None:
    """Write a runbook in the other syntax: TOML -> OPS-001 YAML, or YAML -> TOML (same runbook)."""
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.domain.convert_format import convert_text
    from playbook_nb.domain.yaml_format import looks_like_yaml

    runbook = load_runbook(file)  # a RunbookError is one line, exit 2
    target = to or ("toml" if looks_like_yaml(runbook.source_text, str(file)) else "yaml")
    if output is not None and output.exists():
        raise _exists(output)
    _write_or_print(convert_text(runbook.source_text, str(file), target), output)


@app.command("export-dot")
def export_dot(
    file: Path = typer.Argument(..., help="The runbook (*.playbook.toml)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write the DOT file (default: stdout)."
    ),
) -> None:
    """The DAG as Graphviz DOT (seed-compatible alias of `dag --format dot`)."""
    from playbook_nb.adapters.export.dag_render import to_dot
    from playbook_nb.app.inputs import load_runbook

    _write_or_print(to_dot(load_runbook(file)), output)
