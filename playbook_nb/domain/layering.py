"""Where every node of a DAG drawing goes: one layout for the live cockpit and the static SVG/PNG (issue 17.6).

One band per topological generation (`plan.layers`), top to bottom. A generation wider than `max_per_row` wraps
onto several rows, so a 50-way fan-out grows the drawing downwards instead of shrinking every label; the rows of
one generation are then drawn inside one box (a `Band`), with more space above and below it than between its
rows, so they never read as separate layers. Wrapped rows are staggered by half a step so edges pass between
the boxes. Inside a row, nodes are ordered by the mean column of their parents (one barycenter pass), which
keeps most edges short and uncrossed; declaration order breaks ties.

Pure: columns and rows here, pixels in `place` with each drawing's own node size.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from playbook_nb.domain.model import Runbook
from playbook_nb.domain.plan import build_plan, layers

MAX_PER_ROW = 5


@dataclass(frozen=True)
class Layer:
    """One generation: its rows, each a tuple of (node id, column); columns are in node steps, centred on 0."""

    index: int
    rows: tuple[tuple[tuple[str, float], ...], ...]

    @property
    def wrapped(self) -> bool:
        return len(self.rows) > 1

    @property
    def size(self) -> int:
        return sum(len(row) for row in self.rows)


@dataclass(frozen=True)
class Band:
    """The box drawn around the rows of one wrapped generation (drawing units, like the node centres)."""

    layer: int  # 0-based generation
    count: int  # nodes in it
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def label(self) -> str:
        return f"layer {self.layer + 1}: {self.count} nodes"

    def moved(self, dx: float, dy: float) -> Band:
        return Band(self.layer, self.count, self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)


@dataclass(frozen=True)
class Placement:
    centres: dict[str, tuple[float, float]]  # the centre of every node, layer by layer
    bands: tuple[Band, ...]


def layered_rows(
    runbook: Runbook, graph: nx.DiGraph | None = None, *, max_per_row: int = MAX_PER_ROW
) -> list[Layer]:
    graph = graph if graph is not None else build_plan(runbook)
    column: dict[str, float] = {}
    out: list[Layer] = []
    for index, generation in enumerate(layers(runbook, graph)):
        ordered = _barycenter_order(generation, graph, column)
        rows = []
        for start in range(0, len(ordered), max_per_row):
            chunk = ordered[start : start + max_per_row]
            # the rows of one wrapped generation are staggered by half a step, so edges pass between boxes
            offset = (len(chunk) - 1) / 2 - (0.5 if (start // max_per_row) % 2 else 0)
            row = tuple((node_id, i - offset) for i, node_id in enumerate(chunk))
            column.update(row)
            rows.append(row)
        out.append(Layer(index, tuple(rows)))
    return out


def place(
    runbook_layers: list[Layer], *, step_x: float, step_y: float, node_w: float, node_h: float, pad: float
) -> Placement:
    """Node centres and band boxes for nodes `node_w` x `node_h` (the tallest shape), `step_x` / `step_y` apart;
    a band reaches `pad` beyond its nodes and keeps `pad` clear of the next layer's."""
    centres: dict[str, tuple[float, float]] = {}
    bands: list[Band] = []
    y = 0.0
    previous: Layer | None = None
    for layer in runbook_layers:
        if previous is not None:
            y += step_y + (2 * pad if layer.wrapped else 0) + (2 * pad if previous.wrapped else 0)
        first_y = y
        for number, row in enumerate(layer.rows):
            if number:
                y += step_y
            for node_id, col in row:
                centres[node_id] = (col * step_x, y)
        if layer.wrapped:
            xs = [col * step_x for row in layer.rows for _node, col in row]
            bands.append(
                Band(
                    layer.index,
                    layer.size,
                    min(xs) - node_w / 2 - pad,
                    first_y - node_h / 2 - pad,
                    max(xs) + node_w / 2 + pad,
                    y + node_h / 2 + pad,
                )
            )
        previous = layer
    return Placement(centres, tuple(bands))


def _barycenter_order(generation: list[str], graph: nx.DiGraph, column: dict[str, float]) -> list[str]:
    """Nodes of one generation (already in declaration order) by the mean column of their placed parents."""
    if not column:
        return list(generation)

    def key(node_id: str) -> float:
        parents = [column[p] for p in graph.predecessors(node_id) if p in column]
        return sum(parents) / len(parents) if parents else 0.0

    return sorted(generation, key=key)  # stable: ties keep declaration order
