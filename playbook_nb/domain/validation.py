"""A whole runbook checked: parsing, then the graph (plan), the templates, the step-output references, and
the warnings `validate` shows. It sits above parsing, plan and templating and calls each once.

`parse_runbook(text)` is the way in for every face: a Runbook that comes out of it is valid.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from playbook_nb.constants import SECRET_ENV_PREFIX
from playbook_nb.domain.errors import RunbookError, TemplateError, where
from playbook_nb.domain.model import DepCondition, NodeType, Runbook
from playbook_nb.domain.outputs import check_output_references, step_references
from playbook_nb.domain.parsing import located, parse_structure
from playbook_nb.domain.plan import build_plan, topological_order
from playbook_nb.domain.redact import redactor_for
from playbook_nb.domain.template_fields import field_location, nested_strings, template_fields
from playbook_nb.domain.templating import (
    calls_run_helpers,
    check_template,
    make_context,
    parse_bool,
    raw_names,
    render,
    render_bool,
    render_command,
    render_int,
    secret_env_name,
    uses_raw,
    variables_used,
)


@dataclass
class ValidationReport:
    """What `validate` shows: errors make the runbook invalid, warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_runbook(text: str, path: str | None = None) -> Runbook:
    """TOML or YAML text -> a fully resolved, structurally valid Runbook; RunbookError for the first problem."""
    runbook = parse_structure(text, path)
    try:
        check_runbook(runbook)
    except RunbookError as err:
        raise located(runbook, err) from None
    return runbook


def refuse_secret_defaults(runbook: Runbook) -> None:
    """A secret's value written in the runbook file would be in every copy of its text: the compiled notebook,
    the run record and the HTML export. So a runbook that starts a run or becomes a notebook may not hold one
    (RunbookError naming the variable). Recorded runs are read back without this check: nothing recorded is lost."""
    for name, var in runbook.variables.items():
        if var.secret and var.has_default:
            at = f"{runbook.path}: variable {name}" if runbook.path else f"variable {name}"
            raise RunbookError(
                "a secret variable cannot have a default written in the runbook file (its value would be "
                f"copied into the notebook and the run record): remove it and pass the value in "
                f"{SECRET_ENV_PREFIX}{name}",
                at,
            )


def check_runbook(runbook: Runbook) -> set[str]:
    """Graph and template checks; raises RunbookError for the first problem. Returns the variable names
    the templates use."""
    graph = build_plan(runbook)
    used = check_templates(runbook)
    _check_ansible_secrets(runbook)
    check_output_references(runbook, graph)
    return used


def _check_ansible_secrets(runbook: Runbook) -> None:
    """A secret never goes into an Ansible node's extra vars (ansible-runner writes them to a file and a
    command line); it reaches ansible-playbook as an environment variable of the same name."""
    secret = runbook.secret_names
    for node in runbook.nodes.values():
        if node.type is not NodeType.ANSIBLE or not secret:
            continue
        for node_id, field_name, text in nested_strings(node.id, "extra_vars", node.extra_vars):
            named = sorted(variables_used(text) & secret)
            if named:
                raise RunbookError(
                    f"secret '{named[0]}' cannot be an extra var; the playbook reads it with "
                    f"lookup('env', '{named[0]}')",
                    where(runbook.path, node_id, field_name),
                )


def check_templates(runbook: Runbook) -> set[str]:
    """Statically check every template; returns the variable names they use."""
    declared = set(runbook.variables)
    node_ids = set(runbook.nodes)
    used: set[str] = set()
    for node_id, field_name, text in template_fields(runbook):
        used |= check_template(text, field_location(runbook, node_id, field_name), declared, node_ids)
    return used


def validate_runbook(runbook: Runbook, values: dict[str, Any] | None = None) -> ValidationReport:
    """Errors and warnings for `validate`. `values` (resolved variables), when given, are checked against
    every templated field by rendering it."""
    report = ValidationReport()
    try:
        used = check_runbook(runbook)
    except RunbookError as err:
        report.errors.append(str(located(runbook, err)))
        return report
    if values is not None:
        report.errors.extend(_render_errors(runbook, values))
    report.warnings.extend(collect_warnings(runbook, used))
    return report


def check_timeouts(runbook: Runbook, values: dict[str, Any]) -> None:
    """A templated `timeout` that does not render to a number with the run's variables: RunbookError before
    the run starts (the node would fail with it when reached)."""
    errors = _render_errors(runbook, values, only=("timeout",))
    if errors:
        raise RunbookError(errors[0])


def _render_errors(
    runbook: Runbook, values: dict[str, Any], only: tuple[str, ...] | None = None
) -> list[str]:
    """Render every templated field (or those named in `only`) with real values, as a run would, and
    collect what fails."""
    context = make_context(values, has_succeeded=lambda _id: False, has_failed=lambda _id: False)
    redactor = redactor_for(values, runbook)
    errors: list[str] = []
    for node_id, field_name, text in template_fields(runbook):
        if only is not None and (field_name not in only or calls_run_helpers(text)):
            continue  # a field that reads the run's state renders only during the run
        at = field_location(runbook, node_id, field_name)
        if "steps" in text and step_references(text):
            continue  # step outputs exist only during a run (their references were checked statically)
        try:
            if field_name in ("when", "critical"):
                render_bool(text, context, at)
            elif field_name == "timeout":
                render_int(text, context, at)
            elif field_name == "command_name":
                render_command(text, context, at)
            else:
                render(text, context, at)
        except TemplateError as err:
            errors.append(redactor.redact(str(err)))
    return errors


# --- warnings ------------------------------------------------------------------------------------------


def collect_warnings(runbook: Runbook, used_in_templates: set[str] | None = None) -> list[str]:
    """Things that are allowed but probably not meant: unused variables, branches that can never run,
    commands that opt out of shell quoting.

    `used_in_templates`: what `check_templates(runbook)` returned, when the caller has just checked them."""
    prefix = f"{runbook.path}: " if runbook.path else ""
    warnings: list[str] = []
    if used_in_templates is None:
        used_in_templates = check_templates(runbook)
    used = used_in_templates | _names_in_python_code(runbook)
    for name in runbook.variables:
        if name not in used:
            warnings.append(f"{prefix}variable {name} is declared but never used")
    for node_id, field_name, text in template_fields(runbook):
        if field_name == "command_name" and uses_raw(text):
            warnings.append(
                f"{prefix}node '{node_id}', field 'command_name': "
                "the raw filter turns off shell quoting there"
            )
            for name in sorted(raw_names(text) & runbook.secret_names):
                warnings.append(
                    f"{prefix}node '{node_id}', field 'command_name': secret variable {name} with the raw "
                    f"filter: the command gets it as an unquoted ${{{secret_env_name(name)}}} reference "
                    "(inside single quotes the shell would not expand it)"
                )
    warnings.extend(prefix + w for w in _never_running_branches(runbook))
    return warnings


def _names_in_python_code(runbook: Runbook) -> set[str]:
    """Python nodes see variables as plain names; count those reads as uses."""
    names: set[str] = set()
    for node in runbook.nodes.values():
        if node.type is NodeType.PYTHON and node.code:
            try:
                tree = ast.parse(node.code)
            except SyntaxError:
                continue
            names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names


def _never_running_branches(runbook: Runbook) -> list[str]:
    """Nodes whose conditional dependencies can never be met: a node that never runs (skip = true, a
    constant false `when`, or a dead branch itself) neither succeeds nor fails."""
    dead: dict[str, str] = {}
    messages: list[str] = []
    for node_id in topological_order(runbook):
        node = runbook.nodes[node_id]
        if node.skip:
            dead[node_id] = "skip = true"
            continue
        conditional = [d for d in node.depends_on if d.condition is not DepCondition.PLAIN]
        if conditional and all(d.node in dead for d in conditional):
            reasons = ", ".join(f"'{d}' ({d.node} never runs: {dead[d.node]})" for d in conditional)
            messages.append(f"node '{node_id}' can never run: it only follows {reasons}")
            dead[node_id] = "its conditional dependencies are never met"
            continue
        if node.when and not variables_used(node.when) and not calls_run_helpers(node.when):
            try:
                never = not parse_bool(render(node.when, {}, node_id), node_id)
            except Exception:  # an error here is reported at run time, as the engine does
                never = False
            if never:
                messages.append(f"node '{node_id}' can never run: its 'when' is always false")
                dead[node_id] = "'when' is always false"
    return messages
