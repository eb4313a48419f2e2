"""The dependency graph of a runbook (networkx): checks, a deterministic order, `validate` warnings."""

from __future__ import annotations

import ast
import difflib

import networkx as nx

from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.model import DepCondition, NodeType, Runbook


def build_plan(runbook: Runbook) -> nx.DiGraph:
    """One graph node per runbook node (attribute `node`), an edge u -> v for each dependency of v on u
    (attribute `condition`). Raises RunbookError for unknown nodes, self-dependencies and cycles."""
    graph = nx.DiGraph()
    for node_id, node in runbook.nodes.items():
        graph.add_node(node_id, node=node)
    for node_id, node in runbook.nodes.items():
        for dep in node.depends_on:
            if dep.node == node_id:
                raise RunbookError(f"node '{node_id}' depends on itself", runbook.path)
            if dep.node not in runbook.nodes:
                close = difflib.get_close_matches(dep.node, list(runbook.nodes), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise RunbookError(
                    f"node '{node_id}' depends on unknown node '{dep.node}'{hint}", runbook.path
                )
            graph.add_edge(dep.node, node_id, condition=dep.condition)
    _refuse_cycles(graph, runbook)
    return graph


def _refuse_cycles(graph: nx.DiGraph, runbook: Runbook) -> None:
    order = {node_id: node.order for node_id, node in runbook.nodes.items()}
    try:
        edges = nx.find_cycle(graph, source=sorted(graph, key=order.__getitem__))
    except nx.NetworkXNoCycle:
        return
    cycle = [u for u, _v in edges]
    start = min(range(len(cycle)), key=lambda i: order[cycle[i]])  # begin at the first declared node
    cycle = cycle[start:] + cycle[:start]
    raise RunbookError(f"Runbook contains a cycle: {' -> '.join([*cycle, cycle[0]])}", runbook.path)


def topological_order(runbook: Runbook, graph: nx.DiGraph | None = None) -> list[str]:
    """Every node after all of its dependencies; among nodes that are free together, declaration order."""
    graph = graph if graph is not None else build_plan(runbook)
    return list(nx.lexicographical_topological_sort(graph, key=lambda node_id: runbook.nodes[node_id].order))


def layers(runbook: Runbook, graph: nx.DiGraph | None = None) -> list[list[str]]:
    """Topological generations (nodes whose longest upstream chain has the same length), each in
    declaration order."""
    graph = graph if graph is not None else build_plan(runbook)
    return [
        sorted(generation, key=lambda node_id: runbook.nodes[node_id].order)
        for generation in nx.topological_generations(graph)
    ]


def roots(graph: nx.DiGraph) -> list[str]:
    return [n for n in graph if graph.in_degree(n) == 0]


def leaves(graph: nx.DiGraph) -> list[str]:
    return [n for n in graph if graph.out_degree(n) == 0]


# --- warnings for `validate` ---------------------------------------------------------------------------


def collect_warnings(runbook: Runbook, used_in_templates: set[str] | None = None) -> list[str]:
    """Things that are allowed but probably not meant: unused variables, branches that can never run,
    commands that opt out of shell quoting, secrets with a default written in the file.

    `used_in_templates`: what `check_templates(runbook)` returned, when the caller has just checked them."""
    from playbook_nb.domain.model import check_templates, template_fields
    from playbook_nb.domain.templating import uses_raw

    prefix = f"{runbook.path}: " if runbook.path else ""
    warnings: list[str] = []
    if used_in_templates is None:
        used_in_templates = check_templates(runbook)
    used = used_in_templates | _names_in_python_code(runbook)
    for name in runbook.variables:
        if name not in used:
            warnings.append(f"{prefix}variable {name} is declared but never used")
    for name, var in runbook.variables.items():
        if var.secret and var.has_default:
            warnings.append(f"{prefix}secret variable {name} has a default written in the runbook file")
    for node_id, field_name, text in template_fields(runbook):
        if field_name == "command_name" and uses_raw(text):
            warnings.append(
                f"{prefix}node '{node_id}', field 'command_name': "
                "the raw filter turns off shell quoting there"
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
    from playbook_nb.domain.templating import calls_run_helpers, parse_bool, render, variables_used

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
