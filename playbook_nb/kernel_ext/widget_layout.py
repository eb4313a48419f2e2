"""Where the cockpit draws each node: a layered layout computed in Python, for cytoscape's "preset" layout.

One band per topological generation (`playbook_nb.domain.plan.layers`), top to bottom. A generation wider than
`max_per_row` wraps onto several rows, so a 50-way fan-out grows the drawing downwards instead of shrinking
every label (wrapped rows are staggered by half a step so edges pass between the boxes). Inside a row, nodes are ordered by the mean x of their parents (one barycenter pass), which keeps
most edges short and uncrossed. No JavaScript layout extension is involved: positions travel as node data.
"""

from __future__ import annotations

from dataclasses import dataclass

from playbook_nb.domain.model import Runbook
from playbook_nb.domain.plan import build_plan, layers

NODE_W = 132  # box of a node on the canvas, in model units (1 unit = 1 px at zoom 1)
NODE_H = 42
GATE_H = 58  # diamonds need more height for the same text
STEP_X = 156
STEP_Y = 82
MAX_PER_ROW = 5

# The cytoscape widget: the graph column is about this wide in JupyterLab (1400 px window, panel beside).
NOMINAL_WIDTH = 560
MIN_HEIGHT = 260
MAX_HEIGHT = 700
PADDING = 24
MIN_READABLE_ZOOM = 0.7  # below this the labels are too small to read: pan instead of shrinking
MAX_FIT_ZOOM = 1.0


@dataclass(frozen=True)
class GraphLayout:
    positions: dict[str, tuple[float, float]]  # centre of each node, model units
    width: float  # bounding box of the centres plus one node
    height: float
    rows: int
    zoom: float  # the zoom the widget opens at
    fit: bool  # whole graph fits at a readable zoom: let cytoscape fit it to the actual box
    widget_height: int  # px, set on the widget before it is displayed

    def cytoscape_layout(self) -> dict:
        """Options for cytoscape's preset layout (`CytoscapeWidget.set_layout(**...)`)."""
        if self.fit:
            return {"name": "preset", "fit": True, "padding": PADDING, "animate": False}
        # Too big to fit readably (or so small that fitting would enlarge it): open at `zoom` on the top of the
        # graph, centred in the nominal width.
        min_x = min(x for x, _ in self.positions.values()) - NODE_W / 2
        min_y = min(y for _, y in self.positions.values()) - GATE_H / 2
        span = self.width * self.zoom
        pan_x = max(PADDING, (NOMINAL_WIDTH - span) / 2) - min_x * self.zoom
        pan_y = max(PADDING, (self.widget_height - self.height * self.zoom) / 2) - min_y * self.zoom
        return {
            "name": "preset",
            "fit": False,
            "zoom": round(self.zoom, 3),
            "pan": {"x": round(pan_x, 1), "y": round(pan_y, 1)},
            "animate": False,
        }


def compute_layout(runbook: Runbook, *, max_per_row: int = MAX_PER_ROW) -> GraphLayout:
    graph = build_plan(runbook)
    positions: dict[str, tuple[float, float]] = {}
    x_of: dict[str, float] = {}
    rows = 0
    y = 0.0
    for generation in layers(runbook, graph):
        ordered = _barycenter_order(generation, graph, x_of, runbook)
        for index in range(0, len(ordered), max_per_row):
            chunk = ordered[index : index + max_per_row]
            if rows:
                y += STEP_Y
            # rows of one wrapped generation are staggered by half a step, so edges pass between boxes
            offset = (len(chunk) - 1) * STEP_X / 2 - (STEP_X / 2 if (index // max_per_row) % 2 else 0)
            for i, node_id in enumerate(chunk):
                x_of[node_id] = i * STEP_X - offset
                positions[node_id] = (x_of[node_id], y)
            rows += 1
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    width = max(xs) - min(xs) + NODE_W
    height = max(ys) - min(ys) + GATE_H
    fit_zoom = min(MAX_FIT_ZOOM, (NOMINAL_WIDTH - 2 * PADDING) / width, (MAX_HEIGHT - 2 * PADDING) / height)
    readable = fit_zoom >= MIN_READABLE_ZOOM
    zoom = fit_zoom if readable else max(MIN_READABLE_ZOOM, min(1.0, (NOMINAL_WIDTH - 2 * PADDING) / width))
    natural = height * zoom + 2 * PADDING
    widget_height = int(min(MAX_HEIGHT, max(MIN_HEIGHT, natural)))
    # cytoscape's fit uses the real box; when the box is taller than the graph needs (small graphs), fitting
    # would blow the nodes up, so those open at `zoom` too
    fit = readable and natural >= MIN_HEIGHT
    ordered_positions = {node_id: positions[node_id] for node_id in runbook.nodes}
    return GraphLayout(ordered_positions, width, height, rows, zoom, fit, widget_height)


def _barycenter_order(generation, graph, x_of: dict[str, float], runbook: Runbook) -> list[str]:
    """Nodes of one generation, by the mean x of their already placed parents (declaration order breaks ties
    and places parentless nodes)."""
    by_order = sorted(generation, key=lambda node_id: runbook.nodes[node_id].order)
    if not x_of:
        return by_order

    def key(node_id: str) -> float:
        parents = [x_of[p] for p in graph.predecessors(node_id) if p in x_of]
        return sum(parents) / len(parents) if parents else 0.0

    return sorted(by_order, key=key)  # stable: ties keep declaration order
