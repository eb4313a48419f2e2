"""Smoke test: JupyterLab in Chromium runs a notebook and draws an ipycytoscape graph."""

from __future__ import annotations

import time

import nbformat

from tests.browser.lab import (
    canvas_ink,
    open_notebook,
    png_pixels,
    run_all_cells,
    screenshot,
    wait_for_cytoscape_canvas,
    wait_kernel_idle,
)

GRAPH_CELL = """\
import ipycytoscape

w = ipycytoscape.CytoscapeWidget()
w.layout.height = "400px"
w.graph.add_graph_from_json(
    {
        "nodes": [{"data": {"id": "check"}}, {"data": {"id": "approve"}}, {"data": {"id": "deploy"}}],
        "edges": [
            {"data": {"source": "check", "target": "approve"}},
            {"data": {"source": "approve", "target": "deploy"}},
        ],
    },
    directed=True,
)
w.set_style(
    [
        {"selector": "node", "style": {"background-color": "#d9480f", "label": "data(id)", "width": 40,
                                       "height": 40}},
        {"selector": "edge", "style": {"line-color": "#1c7ed6", "width": 4, "target-arrow-shape": "triangle",
                                       "target-arrow-color": "#1c7ed6", "curve-style": "bezier"}},
    ]
)
w.set_layout(name="breadthfirst", directed=True)
w
"""


def write_notebook(path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Browser smoke test"),
        nbformat.v4.new_code_cell("answer = 6 * 7\nanswer"),
        nbformat.v4.new_code_cell(GRAPH_CELL),
    ]
    nbformat.write(nb, str(path))


def test_cytoscape_graph_is_drawn_in_jupyterlab(lab_server, page):
    t0 = time.monotonic()
    write_notebook(lab_server.root_dir / "smoke.ipynb")

    open_notebook(page, lab_server.base_url, lab_server.token, "smoke.ipynb")
    run_all_cells(page)
    wait_kernel_idle(page)

    # The plain cell ran in the kernel: its result is on the page.
    assert page.locator(".jp-OutputArea-output", has_text="42").count() >= 1

    widget = wait_for_cytoscape_canvas(page)
    box = widget.bounding_box()
    assert box and box["height"] >= 300, f"widget box {box}: the explicit 400px height was not applied"

    # Cytoscape draws asynchronously after the layout: wait until the canvases hold real ink.
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-OutputArea-output canvas')].some(c => {
            if (!c.width || !c.height) return false;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0 && ++n > 500) return true;
            return false;
        })""",
        timeout=30_000,
        polling=250,
    )
    ink = canvas_ink(page)
    assert ink["painted"] > 500, f"canvas nearly blank: {ink['painted']} of {ink['pixels']} pixels painted"
    assert len(ink["colors"]) >= 3, f"canvas has too few colors: {sorted(ink['colors'])}"

    # What a user sees: the composited widget has the node color and the edge color in it.
    png = screenshot(page, "smoke_cytoscape", locator=widget)
    width, height, pixels = png_pixels(png)
    orange = sum(1 for r, g, b in pixels if r > 180 and 50 < g < 110 and b < 60)
    blue = sum(1 for r, g, b in pixels if r < 80 and 100 < g < 150 and b > 180)
    assert orange > 300, f"no node pixels in the {width}x{height} widget screenshot ({orange})"
    assert blue > 50, f"no edge pixels in the {width}x{height} widget screenshot ({blue})"
    screenshot(page, "smoke_lab_notebook")

    print(f"browser smoke: {time.monotonic() - t0:.1f}s from notebook write to verified pixels")
