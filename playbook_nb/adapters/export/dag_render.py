"""Drawings of a runbook's DAG: Graphviz DOT text, and a self-contained SVG laid out in Python (no Graphviz).

These are our own templates, not the runbook author's, so they use a plain Jinja2 environment (autoescaped
for SVG) rather than the runbook sandbox.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from jinja2 import Environment, FunctionLoader, StrictUndefined, select_autoescape

from playbook_nb.constants import TEMPLATE_PACKAGE
from playbook_nb.domain.model import DepCondition, NodeType, Runbook
from playbook_nb.domain.plan import build_plan, layers
from playbook_nb.presentation import EDGE_COLORS, NODE_LEGEND, READY, look

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


def layout(runbook: Runbook) -> tuple[dict[str, tuple[float, float]], float, float]:
    """Top-left corner of every node box, and the drawing's width and height. One row per topological
    generation, each row centred; the drawing grows with the widest row and the number of rows."""
    rows = layers(runbook)
    widest = max(len(row) for row in rows)
    legend_w = len(SVG_STATES) * 80
    inner_w = max(widest * NODE_W + (widest - 1) * GAP_X, legend_w)
    positions: dict[str, tuple[float, float]] = {}
    for depth, row in enumerate(rows):
        row_w = len(row) * NODE_W + (len(row) - 1) * GAP_X
        x0 = MARGIN + (inner_w - row_w) / 2
        y = MARGIN + LEGEND_H + depth * (NODE_H + GAP_Y)
        for index, node_id in enumerate(row):
            positions[node_id] = (x0 + index * (NODE_W + GAP_X), y)
    width = inner_w + 2 * MARGIN
    height = MARGIN + LEGEND_H + len(rows) * NODE_H + (len(rows) - 1) * GAP_Y + MARGIN
    return positions, width, height


def to_svg(runbook: Runbook, states: dict[str, str] | None = None) -> str:
    graph = build_plan(runbook)
    positions, width, height = layout(runbook)
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
    )
