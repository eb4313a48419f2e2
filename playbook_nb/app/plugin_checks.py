"""Function nodes checked against the installed plugins before anything runs (as the seed's `validate` does):
the plugin is installed, it has the function, the parameters are ones it accepts and their values convert to
the declared types. `validate` reports these; `RunSession.start` refuses a run with one, before a row exists.

A parameter whose template reads the run's state (`steps`, `execution`) or cannot be rendered yet has its
name checked here and its value when the node runs.
"""

from __future__ import annotations

from typing import Any

from playbook_nb.app.plugin_api import PluginCatalog, check_params
from playbook_nb.domain.errors import PlaybookError, PluginError, RunbookError, where
from playbook_nb.domain.model import Node, NodeType, Runbook
from playbook_nb.domain.templating import make_context, render_value

_RUN_STATE_NAMES = ("steps", "execution", "has_succeeded", "has_failed")


def plugin_problems(
    runbook: Runbook, plugins: PluginCatalog, values: dict[str, Any] | None = None
) -> list[str]:
    """One line per Function node whose plugin, function or parameters are wrong among `plugins` (the
    installed ones: adapters.plugins.registry.INSTALLED). `values` (the run's variables), when given, render
    the templated parameters so their converted values are checked too."""
    problems: list[str] = []
    context = make_context(values) if values is not None else None
    for node in runbook.nodes.values():
        if node.type is not NodeType.FUNCTION:
            continue
        problem = _node_problem(runbook, plugins, node, context)
        if problem:
            problems.append(problem)
    return problems


def check_plugins(runbook: Runbook, plugins: PluginCatalog, values: dict[str, Any] | None = None) -> None:
    """Raise RunbookError (exit 2) for the first problem `plugin_problems` finds."""
    problems = plugin_problems(runbook, plugins, values)
    if problems:
        raise RunbookError(problems[0])


def _node_problem(
    runbook: Runbook, plugins: PluginCatalog, node: Node, context: dict[str, Any] | None
) -> str | None:
    plugin, function = node.plugin or "", node.function or ""
    if plugin not in plugins.names():
        available = ", ".join(plugins.names()) or "none installed"
        at = where(runbook.path, node.id, "plugin")
        return f"{at}: unknown plugin '{plugin}' for function '{function}' (available: {available})"
    try:
        metadata = plugins.metadata(plugin)
        if function not in metadata.functions:
            available = ", ".join(sorted(metadata.functions)) or "none"
            at = where(runbook.path, node.id, "function")
            return f"{at}: plugin '{plugin}' has no function '{function}' (available: {available})"
        params, unknown = _known_params(node, context)
        check_params(metadata, function, params, unknown_values=unknown)
    except PluginError as err:
        return f"{where(runbook.path, node.id, 'function_params')}: {err}"
    return None


def _known_params(node: Node, context: dict[str, Any] | None) -> tuple[dict[str, Any], set[str]]:
    """The node's parameters with what is known before the run: plain values as written, templates rendered
    with the variables when they are given; the names whose values are known only when the node runs."""
    params: dict[str, Any] = {}
    unknown: set[str] = set()
    for name, value in node.function_params.items():
        if not _is_template(value):
            params[name] = value
            continue
        params[name] = value
        if context is None or not isinstance(value, str) or any(n in value for n in _RUN_STATE_NAMES):
            unknown.add(name)
            continue
        try:
            params[name] = render_value(value, context, f"node '{node.id}', field 'function_params.{name}'")
        except PlaybookError:  # a template problem is validate's to report (with values), or the run's
            unknown.add(name)
    return params, unknown


def _is_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(_is_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_template(v) for v in value)
    return False
