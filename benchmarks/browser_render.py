#!/usr/bin/env python3
"""Browser benchmark of the cockpit (not a test): a real JupyterLab in headless Chromium.

    .venv/bin/python benchmarks/browser_render.py [--nodes 200] [--repeat 3] [--no-write]

Measures, for a generated runbook of N nodes (default 200) and, in the same run, for a baseline notebook holding
a plain N-node ipycytoscape graph (same positions, same height, no playbook-nb):

1. first render: from the "Run All Cells" click to the graph drawn (all N nodes in cytoscape and canvas ink);
2. click to colour: from the Approve click (cockpit) or a plain ipywidgets Button that sets one node's data
   (baseline) to the new state being in the view and painted (two animation frames later);
3. how to restyle one node: update that node's data (what the widget does) versus re-setting the whole graph.

Writes benchmarks/results/browser.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402

from benchmarks.bench_common import machine  # noqa: E402
from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook  # noqa: E402
from playbook_nb.domain.validation import parse_runbook  # noqa: E402
from playbook_nb.presentation import NODE_LEGEND, look  # noqa: E402
from tests.browser.lab import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    KERNEL_TIMEOUT_MS,
    LabServer,
    open_notebook,
    wait_kernel_idle,
)

RESULTS = REPO / "benchmarks" / "results" / "browser.md"
FIND_CY = """
    const host = [...document.querySelectorAll('.jp-OutputArea-output div')].find(d => d._cyreg && d._cyreg.cy);
    const cy = host ? host._cyreg.cy : null;
"""
GATE = "approve_rollout"


def generated_runbook(n: int) -> str:
    """N nodes in layers of 1..8, each depending on one or two nodes of the layer above; the second node is a
    gate everything else waits behind, so Run All stops there and the Approve click has work to show."""
    parts = ['[runbook]\ntitle = "bench {n} nodes"\n'.replace("{n}", str(n))]
    parts.append('[start]\ntype = "Command"\ncommand_name = "true"\n')
    parts.append(f'[{GATE}]\ntype = "Manual"\ndepends_on = ["start"]\ncritical = true\n')
    previous = [GATE]
    made = 2
    width = 1
    while made < n:
        width = width % 8 + 1
        layer = []
        for i in range(min(width, n - made)):
            node_id = f"step_{made:03d}"
            deps = sorted({previous[i % len(previous)], previous[(i + 1) % len(previous)]})
            dep_text = ", ".join(f'"{d}"' for d in deps)
            parts.append(f'[{node_id}]\ntype = "Command"\ncommand_name = "true"\ndepends_on = [{dep_text}]\n')
            layer.append(node_id)
            made += 1
        previous = layer
    return "\n".join(parts)


BASELINE_CELL = """\
import json, ipycytoscape, ipywidgets
spec = json.loads({spec!r})
cyto = ipycytoscape.CytoscapeWidget()
cyto.layout.height = "{height}px"
cyto.set_style(spec["style"])
cyto.set_layout(**spec["layout"])
def make_nodes(state):
    out = []
    for n in spec["nodes"]:
        node = ipycytoscape.Node()
        node.data = dict(n["data"], state=state if n["data"]["id"] == {gate!r} else n["data"]["state"])
        node.position = n["position"]
        out.append(node)
    return out
def make_edges():
    out = []
    for e in spec["edges"]:
        edge = ipycytoscape.Edge()
        edge.data = e
        out.append(edge)
    return out
cyto.graph.add_nodes(make_nodes("WAITING"))
cyto.graph.add_edges(make_edges(), directed=True)
by_id = {{n.data["id"]: n for n in cyto.graph.nodes}}
data_button = ipywidgets.Button(description="update node data")
data_button.add_class("bench-data")
def update_data(_b, flip=[False]):
    flip[0] = not flip[0]
    node = by_id[{gate!r}]
    node.data = {{**node.data, "state": "OK" if flip[0] else "WAITING"}}
data_button.on_click(update_data)
reset_button = ipywidgets.Button(description="re-set graph")
reset_button.add_class("bench-reset")
def reset_graph(_b, flip=[False]):
    flip[0] = not flip[0]
    cyto.graph.clear()
    cyto.graph.add_nodes(make_nodes("OK" if flip[0] else "WAITING"))
    cyto.graph.add_edges(make_edges(), directed=True)
    by_id.clear()
    by_id.update({{n.data["id"]: n for n in cyto.graph.nodes}})
reset_button.on_click(reset_graph)
ipywidgets.VBox([ipywidgets.HBox([data_button, reset_button]), cyto])
"""


def baseline_notebook(runbook_text: str, path: Path) -> None:
    """The same graph as the cockpit draws (positions, stylesheet, layout), with plain ipycytoscape."""
    from playbook_nb.kernel_ext.widget import stylesheet
    from playbook_nb.kernel_ext.widget_layout import compute_layout

    runbook = parse_runbook(runbook_text)
    layout = compute_layout(runbook)
    spec = {
        "style": stylesheet(),
        "layout": layout.cytoscape_layout(),
        "nodes": [
            {
                "data": {"id": nid, "label": node.label, "type": str(node.type), "state": "PENDING"},
                "position": {"x": layout.positions[nid][0], "y": layout.positions[nid][1]},
            }
            for nid, node in runbook.nodes.items()
        ],
        "edges": [
            {"id": f"{d.node}->{nid}", "source": d.node, "target": nid, "condition": str(d.condition)}
            for nid, node in runbook.nodes.items()
            for d in node.depends_on
        ],
    }
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    source = BASELINE_CELL.format(spec=json.dumps(spec), height=layout.widget_height, gate=GATE)
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, str(path))


def cockpit_notebook(runbook_text: str, path: Path, db_path: Path) -> None:
    nb = compile_runbook(parse_runbook(runbook_text))
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += f"\nstate_path = {str(db_path)!r}\nactor = 'bench'\n"
    write_notebook(nb, path)


def click_run_all(page) -> float:
    import re

    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    item = page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Run All Cells"))
    item.first.wait_for()
    t0 = time.perf_counter()
    item.first.click()
    return t0


def wait_drawn(page, n: int) -> None:
    """All n nodes are in cytoscape and its canvases hold ink."""
    page.wait_for_function(
        "(n) => {"
        + FIND_CY
        + """
            if (!cy || cy.nodes().length < n) return false;
            return [...cy.container().querySelectorAll('canvas')].some(c => {
                if (!c.width || !c.height) return false;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let k = 0;
                for (let i = 3; i < d.length; i += 16) if (d[i] > 0 && ++k > 400) return true;
                return false;
            });
        }""",
        arg=n,
        timeout=KERNEL_TIMEOUT_MS,
        polling="raf",
    )


def wait_state(page, node_id: str, state: str) -> None:
    """The view holds `state` for the node, then two animation frames (cytoscape paints on the next frame)."""
    page.wait_for_function(
        "([id, s]) => {" + FIND_CY + "return !!cy && cy.getElementById(id).data('state') === s; }",
        arg=[node_id, state],
        timeout=60_000,
        polling="raf",
    )
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def click_node(page, node_id: str) -> None:
    point = page.evaluate(
        "(id) => {"
        + FIND_CY
        + """
            cy.container().scrollIntoView({block: 'center'});
            const n = cy.getElementById(id); const box = cy.container().getBoundingClientRect();
            const p = n.renderedPosition(); return {x: box.left + p.x, y: box.top + p.y}; }""",
        node_id,
    )
    page.mouse.click(point["x"], point["y"])


def measure(server, browser, nodes: int, repeat: int, workdir: Path) -> dict[str, list[float]]:
    text = generated_runbook(nodes)
    times: dict[str, list[float]] = {
        k: []
        for k in ("render_cockpit", "render_plain", "approve", "plain_data", "data_update", "graph_reset")
    }
    for i in range(repeat):
        for kind in ("plain", "cockpit"):
            name = f"bench_{kind}_{i}.ipynb"
            if kind == "plain":
                baseline_notebook(text, server.root_dir / name)
            else:
                cockpit_notebook(text, server.root_dir / name, workdir / f"runs_{i}.db")
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            try:
                open_notebook(page, server.base_url, server.token, name)
                t0 = click_run_all(page)
                wait_drawn(page, nodes)
                times[f"render_{kind}"].append(time.perf_counter() - t0)
                wait_kernel_idle(page)
                if kind == "cockpit":
                    wait_state(page, GATE, "WAITING")
                    header = page.locator(f'.pb-node-header[data-node="{GATE}"]')
                    for attempt in range(4):  # a click that lands while the page still settles is retried
                        click_node(page, GATE)
                        try:
                            header.wait_for(timeout=5_000)
                            break
                        except Exception:
                            if attempt == 3:
                                page.screenshot(path=str(workdir.parent / "browser_bench_failure.png"))
                                raise
                    button = page.locator("button.pb-button-approve:not([disabled])")
                    button.wait_for()  # the panel has caught up: the click below is not delayed by it
                    t1 = time.perf_counter()
                    button.click()
                    wait_state(page, GATE, "OK")
                    times["approve"].append(time.perf_counter() - t1)
                else:
                    for label, selector in (("data_update", ".bench-data"), ("graph_reset", ".bench-reset")):
                        for state in ("OK", "WAITING"):
                            page.locator(f"button{selector}").wait_for()
                            t1 = time.perf_counter()
                            page.locator(f"button{selector}").click()
                            wait_state(page, GATE, state)
                            times[label].append(time.perf_counter() - t1)
                    times["plain_data"] = times["data_update"]
                print(f"run {i + 1}/{repeat} {kind}: done", file=sys.stderr)
            finally:
                context.close()
            # one kernel at a time, so the runs do not compete for the CPU
            for kernel in server.api("GET", "/api/kernels") or []:
                server.api("DELETE", f"/api/kernels/{kernel['id']}")
    return times


def kernel_side(nodes: int, workdir: Path) -> dict[str, float]:
    """The same widget work without a browser: build the widget, run every node cell, Approve (seconds)."""
    import contextlib
    import io

    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.kernel_ext.notebook_run import NotebookRun
    from playbook_nb.kernel_ext.widget import RunbookWidget

    runbook = parse_runbook(generated_runbook(nodes))
    store = Store.open(workdir / "kernel_side.db")
    session = RunSession.start(
        runbook,
        {},
        store,
        RunOptions(headless=False, trigger="notebook", actor="bench"),
        executor=LocalExecutor(),
    )
    notebook_run = NotebookRun(session, headless=False)
    t0 = time.perf_counter()
    widget = RunbookWidget(notebook_run)
    notebook_run.widget = widget
    build = time.perf_counter() - t0
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        for node_id in runbook.nodes:
            notebook_run.cell(node_id)
        cells = time.perf_counter() - t0
        widget.select(GATE)
        t0 = time.perf_counter()
        widget.on_approve()
        approve = time.perf_counter() - t0
    store.close()
    return {"build": build, "cells": cells, "approve": approve}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="pbnb-browser-bench-"))
    server = LabServer(root_dir=workdir / "root", home=workdir / "home")
    server.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                times = measure(server, browser, args.nodes, args.repeat, workdir)
            finally:
                browser.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    kernel = kernel_side(args.nodes, Path(tempfile.mkdtemp(prefix="pbnb-kernel-bench-")))
    med = {k: statistics.median(v) for k, v in times.items() if v}
    rows = [
        (
            f"first render, {args.nodes}-node runbook (Run All -> canvas drawn)",
            med["render_cockpit"],
            med["render_plain"],
            "plain ipycytoscape graph, same nodes/edges/positions",
        ),
        (
            "click Approve -> gate colour changed on the canvas",
            med["approve"],
            med["plain_data"],
            "plain Button -> one node's data set",
        ),
        (
            "restyle one node: update its data (what the widget does)",
            med["data_update"],
            med["graph_reset"],
            f"re-set the whole {args.nodes}-node graph",
        ),
    ]
    info = machine()
    lines = [
        "# Browser benchmark: the cockpit in JupyterLab",
        "",
        f"`benchmarks/browser_render.py --nodes {args.nodes} --repeat {args.repeat}`; JupyterLab + headless "
        f"Chromium ({CHROMIUM}), medians of {args.repeat} runs, baselines measured in the same run.",
        f"Machine: {', '.join(f'{k} {v}' for k, v in info.items())}.",
        "",
        "| measure | playbook-nb | baseline | ratio | baseline is |",
        "|---|---|---|---|---|",
    ]
    for measure_name, ours, base, what in rows:
        lines.append(f"| {measure_name} | {ours:.3f} s | {base:.3f} s | {ours / base:.2f}x | {what} |")
    lines += [
        "",
        "All runs (seconds): "
        + "; ".join(f"{k}: {', '.join(f'{x:.3f}' for x in v)}" for k, v in times.items() if v),
        "",
        f"Kernel side, same runbook, no browser: building the widget {kernel['build'] * 1000:.0f} ms, "
        f"running the {args.nodes} node cells (each refreshes the widget) {kernel['cells'] * 1000:.0f} ms, "
        f"the Approve handler {kernel['approve'] * 1000:.1f} ms. The rest of the cockpit's figures is front-end "
        "work: the compiled notebook has a cell and an output per node, the baselines one cell.",
        "",
        "The widget restyles a node by sending that node's data only (one comm message); re-setting the graph "
        "sends every node and edge again and re-runs the layout. State colours: "
        + ", ".join(f"{state} {look(state).fill}" for state in NODE_LEGEND)
        + ".",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
