"""Where a runbook holds templates: every templated string, with the node and field it sits in.

Validation checks and renders these; the session renders the same fields of one node before it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from playbook_nb.domain.errors import where
from playbook_nb.domain.model import Runbook

# (node id or None for the [runbook] table, field name, template text)
TemplateField = tuple[str | None, str, str]
# Node fields that are templates whenever they are strings (critical and timeout may also be a bool / an int).
NODE_TEXT_FIELDS = (
    "name", "description", "when", "prompt_before", "prompt_after", "command_name",
    "playbook", "inventory", "limit",
)  # fmt: skip
META_TEXT_FIELDS = ("title", "description")


def template_fields(runbook: Runbook) -> Iterator[TemplateField]:
    """(node id or None, field name, template text) for every templated string in the runbook."""
    for name in META_TEXT_FIELDS:
        yield None, name, getattr(runbook.meta, name)
    for node in runbook.nodes.values():
        for name in NODE_TEXT_FIELDS:
            value = getattr(node, name)
            if isinstance(value, str):
                yield node.id, name, value
        if isinstance(node.critical, str):
            yield node.id, "critical", node.critical
        if isinstance(node.timeout, str):
            yield node.id, "timeout", node.timeout
        # (a Command node has none of these: no generator for an empty table; issue 18.2)
        if node.function_params or isinstance(node.function_params, str):
            yield from nested_strings(node.id, "function_params", node.function_params)
        if node.targets is not None:
            yield from nested_strings(node.id, "targets", node.targets)
        if node.extra_vars or isinstance(node.extra_vars, str):
            yield from nested_strings(node.id, "extra_vars", node.extra_vars)
        if node.ssh or isinstance(node.ssh, str):
            yield from nested_strings(node.id, "ssh", node.ssh)


def nested_strings(node_id: str, prefix: str, value: Any) -> Iterator[TemplateField]:
    if isinstance(value, str):
        yield node_id, prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from nested_strings(node_id, f"{prefix}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nested_strings(node_id, f"{prefix}[{index}]", item)


def field_location(runbook: Runbook, node_id: str | None, field_name: str) -> str:
    """ "file: node 'a', field 'when'" or "file: [runbook], field 'title'": the `where` of a field's errors."""
    if node_id is None:
        table = f"[runbook], field '{field_name}'"
        return f"{runbook.path}: {table}" if runbook.path else table
    return where(runbook.path, node_id, field_name) or ""
