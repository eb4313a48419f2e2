"""Where the cockpit draws each node, for cytoscape's "preset" layout, and at which zoom it opens.

The layered layout itself (`playbook_nb.domain.layering`) is the one the static SVG and PNG draw: one band per
topological generation, a wide generation wrapped onto rows inside one visible box. Here it is placed in the
cockpit's units, and the widget's height and first zoom are chosen. No JavaScript layout extension is involved:
positions travel as node data.
"""

from __future__ import annotations

from dataclasses import dataclass

from playbook_nb.domain.layering import MAX_PER_ROW, Band, layered_rows, place
from playbook_nb.domain.model import Runbook

NODE_W = 132  # box of a node on the canvas, in model units (1 unit = 1 px at zoom 1)
NODE_H = 42
GATE_H = 58  # diamonds need more height for the same text
STEP_X = 156
STEP_Y = 82
BAND_PAD = 10  # a wrapped generation's box reaches this far beyond its nodes

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
    bands: tuple[Band, ...]  # a box around the rows of each wrapped generation
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
        min_x = (
            min([x for x, _ in self.positions.values()] + [b.x0 + NODE_W / 2 for b in self.bands])
            - NODE_W / 2
        )
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
    placed = place(
        layered_rows(runbook, max_per_row=max_per_row),
        step_x=STEP_X,
        step_y=STEP_Y,
        node_w=NODE_W,
        node_h=GATE_H,
        pad=BAND_PAD,
    )
    positions = placed.centres
    rows = len({y for _x, y in positions.values()})
    xs = [x for x, _ in positions.values()] + [
        x for b in placed.bands for x in (b.x0 + NODE_W / 2, b.x1 - NODE_W / 2)
    ]
    ys = [y for _, y in positions.values()] + [
        y for b in placed.bands for y in (b.y0 + GATE_H / 2, b.y1 - GATE_H / 2)
    ]
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
    return GraphLayout(ordered_positions, placed.bands, width, height, rows, zoom, fit, widget_height)
