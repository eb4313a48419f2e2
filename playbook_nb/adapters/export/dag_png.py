"""The DAG as a PNG image, laid out as the SVG drawing (dag_render.layout), drawn with Pillow.

An executed notebook shows the graph as an image output: JupyterLab renders `image/png` also in an untrusted
notebook (its sanitizer drops inline SVG and scripts from untrusted HTML, and does not render untrusted
`image/svg+xml`), so a notebook opened from a colleague or CI shows the coloured graph without being trusted.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from playbook_nb.adapters.export.dag_render import (
    EDGE_COLORS,
    MARGIN,
    NODE_H,
    NODE_W,
    SVG_STATES,
    _critical,
    _state_of,
    _truncate,
    layout,
)
from playbook_nb.domain.model import DepCondition, Runbook
from playbook_nb.domain.plan import build_plan
from playbook_nb.presentation import BAND_FILL, BAND_STROKE, BAND_TEXT, look

SCALE = 2  # drawn at twice the size: sharp on high-density screens, shown at half size
# A picture that would have more pixels than this at twice the size is drawn at its own size: the encoding
# grows with the pixels (a 1000-node chain is 520 x 120,000 points: 250 million pixels and 5 s of CPU at
# twice the size, issue 18.3), and the SVG beside it stays sharp once the notebook is trusted.
MAX_PIXELS = 16_000_000


def scale_for(width: float, height: float) -> int:
    """How many pixels a point of the layout takes in the PNG: SCALE, or 1 for a large graph."""
    return SCALE if width * height * SCALE * SCALE <= MAX_PIXELS else 1


@lru_cache(maxsize=8)
def _font(size: int, scale: int = SCALE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size * scale)


def _curve(sx: float, sy: float, tx: float, ty: float, steps: int = 16) -> list[tuple[float, float]]:
    """The SVG's cubic edge (vertical tangents at both ends) as a polyline."""
    bend = (ty - sy) / 2
    c1, c2 = (sx, sy + bend), (tx, ty - bend)
    points = []
    for i in range(steps + 1):
        t = i / steps
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
        points.append((a * sx + b * c1[0] + c * c2[0] + d * tx, a * sy + b * c1[1] + c * c2[1] + d * ty))
    return points


def to_png(runbook: Runbook, states: dict[str, str] | None = None) -> bytes:
    """PNG bytes of the graph with each node coloured by its state (as the SVG drawing)."""
    return to_png_scaled(runbook, states)[0]


def to_png_scaled(runbook: Runbook, states: dict[str, str] | None = None) -> tuple[bytes, int]:
    """(PNG bytes, pixels a layout point takes: `scale_for`): shown at the PNG's width divided by the scale."""
    positions, width, height, bands = layout(runbook)
    scale = scale_for(width, height)
    image = Image.new("RGB", (int(width * scale), int(height * scale)), "white")
    draw = ImageDraw.Draw(image)

    def s(*values: float) -> Any:  # the scaled coordinates, as Pillow takes them (a flat sequence)
        return tuple(v * scale for v in values)

    for index, name in enumerate(SVG_STATES):
        style = look(name)
        left = MARGIN + index * 80
        draw.rectangle(
            s(left, MARGIN, left + 14, MARGIN + 14), fill=style.fill, outline=style.stroke, width=scale
        )
        draw.text(s(left + 18, MARGIN), name, fill="#374151", font=_font(11, scale))
    for band in bands:  # a wrapped layer's rows inside one box, under the edges (as in the SVG)
        draw.rounded_rectangle(
            s(band.x0, band.y0, band.x1, band.y1),
            radius=8 * scale,
            fill=BAND_FILL,
            outline=BAND_STROKE,
            width=scale,
        )
        draw.text(s(band.x0 + 4, band.y0 - 15), band.label, fill=BAND_TEXT, font=_font(11, scale))
    for source, target, data in build_plan(runbook).edges(data=True):
        condition = data["condition"]
        sx, sy = positions[source][0] + NODE_W / 2, positions[source][1] + NODE_H
        tx, ty = positions[target][0] + NODE_W / 2, positions[target][1]
        color = EDGE_COLORS[condition]
        points = [(x * scale, y * scale) for x, y in _curve(sx, sy, tx, ty)]
        if condition is DepCondition.FAILURE:  # dashed, as in the SVG
            for i in range(0, len(points) - 1, 2):
                draw.line(points[i : i + 2], fill=color, width=2 * scale)
        else:
            draw.line(points, fill=color, width=2 * scale)
        draw.polygon(s(tx - 5, ty - 8, tx + 5, ty - 8, tx, ty), fill=color)
        if condition is not DepCondition.PLAIN:
            draw.text(
                s((sx + tx) / 2 + 4, (sy + ty) / 2 - 6), str(condition), fill=color, font=_font(10, scale)
            )
    for node_id, node in runbook.nodes.items():
        x, y = positions[node_id]
        state = _state_of(states, node_id)
        style = look(state)
        outline = 3 if _critical(node) else 1.5
        if node.is_gate:
            inset = NODE_H / 2
            draw.polygon(
                s(x + inset, y, x + NODE_W - inset, y, x + NODE_W, y + NODE_H / 2, x + NODE_W - inset, y + NODE_H,
                  x + inset, y + NODE_H, x, y + NODE_H / 2),
                fill=style.fill, outline=style.stroke, width=round(outline * scale),
            )  # fmt: skip
        else:
            draw.rounded_rectangle(
                s(x, y, x + NODE_W, y + NODE_H), radius=8 * scale, fill=style.fill, outline=style.stroke,
                width=round(outline * scale),
            )  # fmt: skip
        cx = x + NODE_W / 2
        draw.text(s(cx, y + 16), _truncate(node.label), fill=style.text, font=_font(13, scale), anchor="mm")
        kind = f"{node.type}{' · critical' if _critical(node) else ''} · {state}"
        draw.text(s(cx, y + 33), kind, fill="#4b5563", font=_font(10, scale), anchor="mm")
    out = io.BytesIO()
    # zlib's default level, not `optimize` (the best level, tried twice): the same pixels, 6 % larger, and the
    # encoding 5x faster (0.44 -> 0.09 s of CPU for a 50-node chain, twice a headless run; it grows with the
    # graph's height, issue 18.3)
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue(), scale
