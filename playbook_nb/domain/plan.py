"""The dependency graph of a runbook (networkx): unknown nodes and cycles refused, a deterministic order."""

from __future__ import annotations

import difflib

import networkx as nx

from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.model import Runbook


def build_plan(runbook: Runbook) -> nx.DiGraph:
    """One graph node per runbook node (attribute `node`), an edge u -> v for each dependency of v on u
    (attribute `condition`). Raises RunbookError for unknown nodes, self-dependencies and cycles."""
    graph = nx.DiGraph()
    for node_id, node in runbook.nodes.items():
        graph.add_node(node_id, node=node)
    for node_id, node in runbook.nodes.items():
        for dep in node.depends_on:
            if dep.node == node_id:
                raise RunbookError(
                    f"Runbook contains a cycle: {node_id} -> {node_id} (node '{node_id}' depends on itself)",
                    runbook.path,
                )
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
