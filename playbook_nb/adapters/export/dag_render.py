"""Drawings of a runbook's DAG: Graphviz DOT text, and a self-contained SVG laid out in Python (no Graphviz).

These are our own templates, not the runbook author's, so they use a plain Jinja2 environment (autoescaped
for SVG) rather than the runbook sandbox.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

from jinja2 import Environment, FunctionLoader, StrictUndefined, select_autoescape

from playbook_nb.constants import TEMPLATE_PACKAGE
from playbook_nb.domain.layering import Band, layered_rows, place
from playbook_nb.domain.model import DepCondition, NodeType, Runbook
from playbook_nb.domain.plan import build_plan
from playbook_nb.presentation import BAND_FILL, BAND_STROKE, BAND_TEXT, EDGE_COLORS, NODE_LEGEND, READY, look

# The states an exported DAG shows (legend order); their look comes from the one presentation table.
SVG_STATES: tuple[str, ...] = tuple(
    state.lower() for state in NODE_LEGEND if state != READY
)  # pending, running, waiting, ok, nok, skipped
DOT_SHAPES = {
    NodeType.MANUAL: "diamond",
    NodeType.COMMAND: "box",
    NodeType.FUNCTION: "ellipse",
    NodeType.PYTHON: "box3d",
    NodeType.ANSIBLE: "component",
}

NODE_W, NODE_H = 190, 46
GAP_X, GAP_Y = 36, 74
MARGIN = 20
LEGEND_H = 34
BAND_PAD = 10  # a wrapped layer's box reaches this far beyond its nodes
BAND_LABEL_H = 14  # room above a box for its label
MAX_LABEL = 24


def _load_template_source(name: str) -> str:
    return resources.files(TEMPLATE_PACKAGE).joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def internal_env() -> Environment:
    """Environment for the project's own templates (shipped as package data in playbook_nb.templates)."""
    env = Environment(
        loader=FunctionLoader(_load_template_source),
        autoescape=select_autoescape(enabled_extensions=("svg.j2", "html.j2", "xml.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["toml"] = lambda value: json.dumps(
        str(value), ensure_ascii=False
    )  # a valid TOML basic string
    return env


def render_internal(name: str, **context) -> str:
    return internal_env().get_template(name).render(**context)


def _state_of(states: dict[str, str] | None, node_id: str) -> str:
    state = str((states or {}).get(node_id, "pending")).lower()
    return state if state in SVG_STATES else "pending"


def _critical(node) -> bool:
    return node.critical is True or isinstance(node.critical, str)


# --- DOT -----------------------------------------------------------------------------------------------


def _dot_str(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{key}={_dot_str(value)}" for key, value in attrs.items())


def to_dot(runbook: Runbook, states: dict[str, str] | None = None) -> str:
    graph = build_plan(runbook)
    lines = [
        f"digraph {_dot_str(runbook.meta.title)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=11, style=filled];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node_id, node in runbook.nodes.items():
        state = _state_of(states, node_id)
        style = look(state)
        styles = (
            ["filled"]
            + (["bold"] if _critical(node) else [])
            + (["rounded"] if node.type is NodeType.COMMAND else [])
        )
        attrs = {
            "label": f"{node.label}\n({node.type}{', critical' if _critical(node) else ''})",
            "shape": DOT_SHAPES[node.type],
            "style": ",".join(styles),
            "fillcolor": style.fill,
            "color": style.stroke,
            "fontcolor": style.text,
            "tooltip": f"{node_id}: {state}",
        }
        if _critical(node):
            attrs["penwidth"] = "2.5"
        lines.append(f"  {_dot_str(node_id)} [{_dot_attrs(attrs)}];")
    for source, target, data in graph.edges(data=True):
        condition = data["condition"]
        attrs = {"color": EDGE_COLORS[condition]}
        if condition is not DepCondition.PLAIN:
            attrs.update(label=str(condition), fontcolor=EDGE_COLORS[condition])
        if condition is DepCondition.FAILURE:
            attrs["style"] = "dashed"
        lines.append(f"  {_dot_str(source)} -> {_dot_str(target)} [{_dot_attrs(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- SVG -----------------------------------------------------------------------------------------------


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _hexagon(x: float, y: float, w: float, h: float) -> str:
    inset = h / 2
    points = [
        (x + inset, y),
        (x + w - inset, y),
        (x + w, y + h / 2),
        (x + w - inset, y + h),
        (x + inset, y + h),
        (x, y + h / 2),
    ]
    return " ".join(f"{px:g},{py:g}" for px, py in points)


class DagLayout(NamedTuple):
    positions: dict[str, tuple[float, float]]  # top-left corner of every node box
    width: float
    height: float
    bands: tuple[Band, ...]  # the box around each wrapped layer's rows, in the same coordinates


def layout(runbook: Runbook) -> DagLayout:
    """The cockpit's layered layout (`domain.layering`: one band per topological generation, a wide one wrapped
    onto rows inside one box), at this drawing's node size, centred under the legend."""
    placed = place(
        layered_rows(runbook),
        step_x=NODE_W + GAP_X,
        step_y=NODE_H + GAP_Y,
        node_w=NODE_W,
        node_h=NODE_H,
        pad=BAND_PAD,
    )
    xs = [x for x, _ in placed.centres.values()]
    ys = [y for _, y in placed.centres.values()]
    left = min([x - NODE_W / 2 for x in xs] + [b.x0 for b in placed.bands])
    right = max([x + NODE_W / 2 for x in xs] + [b.x1 for b in placed.bands])
    top = min([y - NODE_H / 2 for y in ys] + [b.y0 for b in placed.bands])
    bottom = max([y + NODE_H / 2 for y in ys] + [b.y1 for b in placed.bands])
    inner_w = max(right - left, len(SVG_STATES) * 80)
    dx = MARGIN + (inner_w - (right - left)) / 2 - left
    dy = MARGIN + LEGEND_H + BAND_LABEL_H * bool(placed.bands) - top
    positions = {
        node_id: (placed.centres[node_id][0] + dx - NODE_W / 2, placed.centres[node_id][1] + dy - NODE_H / 2)
        for node_id in runbook.nodes
    }
    bands = tuple(b.moved(dx, dy) for b in placed.bands)
    height = dy + bottom + MARGIN
    return DagLayout(positions, inner_w + 2 * MARGIN, height, bands)


def to_svg(runbook: Runbook, states: dict[str, str] | None = None) -> str:
    graph = build_plan(runbook)
    positions, width, height, bands = layout(runbook)
    nodes = []
    for node_id, node in runbook.nodes.items():
        x, y = positions[node_id]
        state = _state_of(states, node_id)
        style = look(state)
        critical = _critical(node)
        kind = f"{node.type}{' · critical' if critical else ''}"
        nodes.append(
            {
                "id": node_id,
                "state": state,
                "x": x,
                "y": y,
                "w": NODE_W,
                "h": NODE_H,
                "cx": x + NODE_W / 2,
                "rx": {NodeType.FUNCTION: 20, NodeType.PYTHON: 2}.get(node.type, 8),
                "shape": "hexagon" if node.is_gate else "rect",
                "points": _hexagon(x, y, NODE_W, NODE_H),
                "fill": style.fill,
                "stroke": style.stroke,
                "text_color": style.text,
                "stroke_width": 3 if critical else 1.5,
                "bold": critical,
                "label": _truncate(node.label),
                "subtitle": f"{kind} · {state}",
                "tooltip": f"{node.label} [{node_id}] — {kind}, {state}"
                + (f"\n{node.description.strip()}" if node.description.strip() else ""),
            }
        )
    edges = []
    for source, target, data in graph.edges(data=True):
        condition = data["condition"]
        sx, sy = positions[source][0] + NODE_W / 2, positions[source][1] + NODE_H
        tx, ty = positions[target][0] + NODE_W / 2, positions[target][1]
        bend = (ty - sy) / 2
        edges.append(
            {
                "source": source,
                "target": target,
                "path": f"M {sx:g} {sy:g} C {sx:g} {sy + bend:g}, {tx:g} {ty - bend:g}, {tx:g} {ty:g}",
                "color": EDGE_COLORS[condition],
                "marker": str(condition),
                "dashed": condition is DepCondition.FAILURE,
                "label": "" if condition is DepCondition.PLAIN else str(condition),
                "lx": (sx + tx) / 2,
                "ly": (sy + ty) / 2 + 4,
            }
        )
    legend = [
        {"x": index * 80, "label": name, "fill": look(name).fill, "stroke": look(name).stroke}
        for index, name in enumerate(SVG_STATES)
    ]
    markers = [{"name": str(c), "color": color} for c, color in EDGE_COLORS.items()]
    return render_internal(
        "dag.svg.j2",
        title=runbook.meta.title,
        width=f"{width:g}",
        height=f"{height:g}",
        margin=MARGIN,
        nodes=nodes,
        edges=edges,
        legend=legend,
        markers=markers,
        bands=[{"x": b.x0, "y": b.y0, "w": b.x1 - b.x0, "h": b.y1 - b.y0, "label": b.label} for b in bands],
        band_fill=BAND_FILL,
        band_stroke=BAND_STROKE,
        band_text=BAND_TEXT,
    )
