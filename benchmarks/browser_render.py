#!/usr/bin/env python3
"""Browser benchmark of the cockpit (not a test): a real JupyterLab in headless Chromium.

    .venv/bin/python benchmarks/browser_render.py [--nodes 200] [--repeat 10] [--big 1000] [--no-write]

Measures, for a generated runbook of N nodes (default 200) and, in the same run, for a baseline notebook holding
a plain N-node ipycytoscape graph (same positions, same height, no playbook-nb), and for that plain graph in a
notebook of the runbook's shape (after the graph's cell, per node the runbook notebook's markdown cell and a
code cell printing one line, as a node cell behind the gate does: what JupyterLab costs for that many cells):

1. first render: from the "Run All Cells" click to the graph drawn (all N nodes in cytoscape and canvas ink);
2. click to colour: from the Approve click (cockpit) or a plain ipywidgets Button that sets one node's data
   (baseline) to the new state being in the view and painted (two animation frames later);
3. how to restyle one node: update that node's data (what the widget does) versus re-setting the whole graph;
4. where each of those goes, timed in the page (performance.now()): Run All -> kernel busy -> the widget's view
   created (the cytoscape instance in the page) -> all nodes in it -> canvas ink -> kernel idle; click -> the comm
   message sent -> the first kernel frame back -> the frame carrying the node's new state -> applied in
   cytoscape -> painted; the kernel's websocket frames are counted;
5. one more pair at --big nodes (default 1000): it renders, a click still colours the gate.

Medians of --repeat (default 10) alternated triples, a fresh notebook and kernel each. Writes
benchmarks/results/browser.md.
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
    CURRENT_PANEL,
    KERNEL_TIMEOUT_MS,
    LabServer,
    open_notebook,
)

RESULTS = REPO / "benchmarks" / "results" / "browser.md"
FAILURES: list[str] = []  # repetitions that failed and were run again
FIND_CY = """
    const host = [...document.querySelectorAll('.jp-OutputArea-output div')].find(d => d._cyreg && d._cyreg.cy);
    const cy = host ? host._cyreg.cy : null;
"""
GATE = "approve_rollout"
KINDS = ("plain", "shaped", "cockpit")  # measured in this order, alternated
# the baselines' clicks: (label, button) pairs, each to these states; the shaped notebook's first click only
# (its page takes some 15 s to settle before each)
BASELINE_CLICKS = {
    "plain": ((("click", ".bench-data"), ("reset", ".bench-reset")), ("OK", "WAITING")),
    "shaped": ((("click", ".bench-data"),), ("OK",)),
}

# Installed in every page before JupyterLab loads: the kernel websocket's frames are time-stamped while armed
# (JupyterLab 4 speaks the v1 binary protocol: the header, with msg_type, is the first JSON part of a frame).
INSTRUMENT = """
(() => {
  const Base = window.WebSocket;
  const dec = new TextDecoder();
  const text = (d) => typeof d === 'string' ? d : (d instanceof ArrayBuffer ? dec.decode(d)
      : (ArrayBuffer.isView(d) ? dec.decode(d) : ''));
  window.__pb = {armed: false, log: [], gate: '', want: ''};
  const note = (dir, d) => {
    const pb = window.__pb;
    if (!pb.armed) return;
    const s = text(d);
    const type = (s.match(/"msg_type":\\s*"(\\w+)"/) || [])[1] || '';
    const status = (s.match(/"execution_state":\\s*"(\\w+)"/) || [])[1] || '';
    const carries = !!pb.gate && s.includes('"' + pb.gate + '"') && s.includes('"state":') &&
        new RegExp('"state":\\\\s*"' + pb.want + '"').test(s);
    pb.log.push({dir, t: performance.now(), type, status, carries, size: s.length});
  };
  class Instrumented extends Base {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => note('in', event.data));
    }
    send(data) { note('out', data); return super.send(data); }
  }
  window.WebSocket = Instrumented;
  const pressed = () => { if (window.__pb.armed && window.__pb.click === undefined) {
    window.__pb.click = performance.now(); } };
  window.addEventListener('pointerdown', pressed, true);  // the window, first: menus stop mousedown
  window.addEventListener('mousedown', pressed, true);
})();
"""

# Marks of the first render, sampled every animation frame from the Run All click on (page clock, ms).
RENDER_MARKS = """(n) => {
    const pb = window.__pb;
    pb.marks = {};
    const panel = () => [...document.querySelectorAll('.jp-NotebookPanel')].find(p => p.checkVisibility());
    const ink = (cy) => [...cy.container().querySelectorAll('canvas')].some(c => {
        if (!c.width || !c.height) return false;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let k = 0;
        for (let i = 3; i < d.length; i += 16) if (d[i] > 0 && ++k > 400) return true;
        return false;
    });
    const tick = () => {
        const now = performance.now(), m = pb.marks;
        const ind = panel() && panel().querySelector('.jp-Notebook-ExecutionIndicator');
        const status = ind ? ind.getAttribute('data-status') : null;
        if (status === 'busy' && m.busy === undefined) m.busy = now;
        if (m.busy !== undefined && status === 'idle') m.idle = m.idle || now; else if (status === 'busy') m.idle = undefined;
        const host = [...document.querySelectorAll('.jp-OutputArea-output div')].find(d => d._cyreg && d._cyreg.cy);
        const cy = host ? host._cyreg.cy : null;
        if (cy && m.view === undefined) m.view = now;
        if (cy && m.nodes === undefined && cy.nodes().length >= n) m.nodes = now;
        if (cy && m.nodes !== undefined && m.ink === undefined && ink(cy)) m.ink = now;
        if (m.ink === undefined || m.idle === undefined) requestAnimationFrame(tick);
    };
    pb.armed = true;
    pb.click = undefined;
    requestAnimationFrame(tick);
}"""


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
        data = dict(n["data"], state=state if n["data"]["id"] == {gate!r} else n["data"]["state"])
        out.append(ipycytoscape.Node(data=data, position=n["position"]))  # state in the comm_open
    return out
def make_edges():
    out = []
    for e in spec["edges"]:
        out.append(ipycytoscape.Edge(data=e, classes=" directed "))
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


def baseline_notebook(runbook_text: str, path: Path, shaped: bool = False) -> None:
    """The same graph as the cockpit draws (positions, stylesheet, layout), with plain ipycytoscape; `shaped`:
    followed by the runbook notebook's cells a node (its markdown cell, and a code cell printing one line)."""
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
    if shaped:
        for cell in compile_runbook(runbook).cells:
            role = cell.metadata.get("playbook_nb", {}).get("role")
            if role == "node_doc":
                nb.cells.append(nbformat.v4.new_markdown_cell(cell.source))
            elif role == "node":
                node_id = cell.metadata["playbook_nb"]["node"]
                line = f"⏸ {node_id}: not run: waits for {GATE}"
                nb.cells.append(nbformat.v4.new_code_cell(f"print({line!r})"))
    nbformat.write(nb, str(path))


def cockpit_notebook(runbook_text: str, path: Path, db_path: Path) -> None:
    nb = compile_runbook(parse_runbook(runbook_text))
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += f"\nstate_path = {str(db_path)!r}\nactor = 'bench'\n"
    write_notebook(nb, path)


def click_run_all(page, nodes: int) -> float:
    import re

    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    item = page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Run All Cells"))
    item.first.wait_for()
    page.evaluate(RENDER_MARKS, nodes)
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


def arm_click(page, node_id: str, state: str) -> None:
    """From the next click on: time-stamp websocket frames, and the moment cytoscape holds `state` for the node."""
    page.evaluate(
        "([id, s]) => {"
        + FIND_CY
        + """
            const pb = window.__pb;
            pb.log = []; pb.click = undefined; pb.gate = id; pb.want = s; pb.applied = undefined;
            pb.painted = undefined; pb.armed = true;
            // on cy itself: a re-set graph (the baseline's reset) brings new elements, not a data change
            const seen = (event) => {
                const node = event.target;
                if (pb.applied !== undefined || node.id() !== id || node.data('state') !== s) return;
                pb.applied = performance.now();
                requestAnimationFrame(() => requestAnimationFrame(() => { pb.painted = performance.now(); }));
                cy.off('data add', 'node', seen);
            };
            cy.on('data add', 'node', seen);
        }""",
        [node_id, state],
    )


def click_phases(page) -> dict[str, float]:
    """Seconds from the click: comm message sent, first kernel frame back, the frame carrying the node's new
    state, cytoscape holding it, painted (two frames later), kernel idle again."""
    page.wait_for_function("() => window.__pb.painted !== undefined", timeout=60_000)
    page.wait_for_timeout(150)  # the handler's last frames (idle) arrive
    pb = page.evaluate("() => { const pb = window.__pb; pb.armed = false; return pb; }")
    click = pb["click"]
    log = pb["log"]
    sent = next(
        (e["t"] for e in log if e["dir"] == "out" and e["type"] == "comm_msg" and e["t"] >= click), None
    )
    back = [e for e in log if e["dir"] == "in" and sent is not None and e["t"] >= sent]
    carries = next((e["t"] for e in back if e["carries"]), None)
    idle = next((e["t"] for e in back if e["status"] == "idle"), None)

    def since(t):
        return None if t is None else (t - click) / 1000

    return {
        "sent": since(sent),
        "first_reply": since(back[0]["t"] if back else None),
        "state_frame": since(carries),
        "applied": since(pb["applied"]),
        "painted": since(pb["painted"]),
        "idle": since(idle),
        "frames_in": float(len(back)),
    }


def render_phases(page) -> dict[str, float]:
    pb = page.evaluate("() => { const pb = window.__pb; pb.armed = false; return pb; }")
    click, m = pb["click"], pb["marks"]
    phases = {
        k: (m[k] - click) / 1000 for k in ("busy", "view", "nodes", "ink", "idle") if m.get(k) is not None
    }
    # The end of Run All: the kernel's last "idle" the page received, read once the server has seen the kernel
    # idle for good. The page's own mark can fall in a pause between cells: the cockpit's node cells are sent
    # once the graph is drawn, in batches (labextension/src/cellExecutor.ts), and the kernel idles in between.
    idles = [e["t"] for e in pb["log"] if e["dir"] == "in" and e["status"] == "idle"]
    if idles:
        phases["idle"] = (max(idles) - click) / 1000
    phases["frames_in"] = float(sum(1 for e in pb["log"] if e["dir"] == "in"))
    return phases


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


def wait_settled(page, cells: int) -> None:
    """The page has settled: every cell of the notebook is in it (JupyterLab attaches a long notebook's cells
    in idle time, about 50 a second here: 9 s for the 405 cells of the 200-node runbook once its kernel is
    ready) and it is idle. A click before that waits behind that work, and behind Run All's outputs."""
    page.wait_for_function(
        f"""(n) => {{ const p = {CURRENT_PANEL}; return !!p && p.querySelectorAll('.jp-Cell').length >= n; }}""",
        arg=cells,
        timeout=max(KERNEL_TIMEOUT_MS, 200 * cells),  # the 1000-node runbook's 2,005 cells: 130 s once here
        polling=250,
    )
    # idle: 30 animation frames in a row (half a second) none of which waited behind a long task
    page.evaluate(
        """() => new Promise(r => { let last = performance.now(), calm = 0;
            const frame = (now) => { calm = now - last < 25 ? calm + 1 : 0; last = now;
                                     if (calm >= 30) r(); else requestAnimationFrame(frame); };
            requestAnimationFrame(frame); })"""
    )


def one_run(browser, server, name: str, nodes: int, kind: str, workdir: Path) -> dict[str, dict]:
    """Open notebook `name`, Run All, wait for the drawn graph and idle, then, once the page has settled, click
    (cockpit: Approve on the gate; plain: the button that sets the gate's data; and the whole-graph reset).
    Phases in seconds."""
    out: dict[str, dict] = {}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    cells = len(nbformat.read(str(server.root_dir / name), as_version=4).cells)
    try:
        open_notebook(page, server.base_url, server.token, name)
        t0 = click_run_all(page, nodes)
        wait_drawn(page, nodes)
        total = time.perf_counter() - t0
        server.wait_idle(timeout=KERNEL_TIMEOUT_MS / 1000)
        try:  # the page's own indicator; it can miss the last status message (then the row says "-")
            page.wait_for_function("() => window.__pb.marks.idle !== undefined", timeout=10_000)
        except Exception:
            print(f"{name}: the page never showed the kernel idle; the server did", file=sys.stderr)
        # and the page has taken in the kernel's last frames: none new for half a second
        page.evaluate(
            """() => new Promise(r => { let seen = -1;
                const look = () => { const n = window.__pb.log.length; if (n === seen) r(); else { seen = n;
                                     setTimeout(look, 500); } };
                look(); })"""
        )
        out["render"] = {"total": total, "cells": cells, **render_phases(page)}
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
            page.wait_for_timeout(300)  # the select's own frames are over
            wait_settled(page, cells)
            out["render"]["settled"] = time.perf_counter() - t0
            arm_click(page, GATE, "OK")
            t1 = time.perf_counter()
            button.click()
            wait_state(page, GATE, "OK")
            out["click"] = {"total": time.perf_counter() - t1, **click_phases(page)}
        else:
            clicks, states = BASELINE_CLICKS[kind]
            for label, selector in clicks:
                for state in states:
                    page.locator(f"button{selector}").wait_for()
                    wait_settled(page, cells)
                    out["render"].setdefault("settled", time.perf_counter() - t0)
                    page.wait_for_timeout(300)
                    arm_click(page, GATE, state)
                    t1 = time.perf_counter()
                    page.locator(f"button{selector}").click()
                    wait_state(page, GATE, state)
                    phases = {"total": time.perf_counter() - t1, **click_phases(page)}
                    out.setdefault(label, phases)  # the first of the pair (to OK), as for Approve
                    out.setdefault(f"{label}_all", {}).setdefault("totals", []).append(phases["total"])
    finally:
        context.close()
    # one kernel at a time, so the runs do not compete for the CPU
    for kernel in server.api("GET", "/api/kernels") or []:
        server.api("DELETE", f"/api/kernels/{kernel['id']}")
    return out


def measure(server, browser, nodes: int, repeat: int, workdir: Path) -> dict[str, list[dict]]:
    """`repeat` alternated triples (plain, shaped, cockpit) of fresh notebooks and kernels."""
    text = generated_runbook(nodes)
    runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for i in range(repeat):
        for kind in KINDS:
            name = f"bench_{kind}_{nodes}_{i}.ipynb"
            if kind != "cockpit":
                baseline_notebook(text, server.root_dir / name, shaped=kind == "shaped")
            else:
                cockpit_notebook(text, server.root_dir / name, workdir / f"runs_{nodes}_{i}.db")
            for attempt in range(3):  # a Lab or Chromium hiccup costs a repetition, said in the report
                try:
                    runs[kind].append(one_run(browser, server, name, nodes, kind, workdir))
                    break
                except Exception as err:
                    FAILURES.append(f"{kind} run {i + 1} attempt {attempt + 1}: {str(err).splitlines()[0]}")
                    print(f"{name}: {FAILURES[-1]}", file=sys.stderr)
                    if attempt == 2:
                        raise
            print(
                f"run {i + 1}/{repeat} {kind}, {nodes} nodes: {json.dumps(runs[kind][-1])}", file=sys.stderr
            )
    return runs


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


RENDER_PHASES = (  # (label, start mark, end mark); marks in seconds from the Run All click
    ("Run All -> kernel busy", None, "busy"),
    ("Run All -> widget view created (cytoscape instance in the page)", None, "view"),
    ("widget view created -> all nodes in cytoscape", "view", "nodes"),
    ("all nodes in cytoscape -> canvas ink", "nodes", "ink"),
    ("**widget view created -> canvas ink**", "view", "ink"),
    ("**Run All -> canvas ink**", None, "ink"),
    ("Run All -> kernel idle (every cell ran)", None, "idle"),
    ("kernel frames received from Run All to idle (count)", None, "frames_in"),
)
CLICK_PHASES = (
    ("click -> comm message sent", None, "sent"),
    ("comm message sent -> first kernel frame back", "sent", "first_reply"),
    ("first frame back -> the frame carrying the node's new state", "first_reply", "state_frame"),
    ("that frame -> state applied in cytoscape", "state_frame", "applied"),
    ("applied -> painted (two animation frames)", "applied", "painted"),
    ("**click -> painted**", None, "painted"),
    ("click -> kernel idle again", None, "idle"),
    ("kernel frames received after the click (count)", None, "frames_in"),
)


def phase(run: dict, start: str | None, end: str) -> float | None:
    if run.get(end) is None or (start is not None and run.get(start) is None):
        return None
    return run[end] - (run[start] if start else 0.0)


def median_of(runs: list[dict], part: str, start: str | None, end: str) -> float | None:
    values = [v for r in runs if part in r for v in [phase(r[part], start, end)] if v is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, count: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if count else f"{value * 1000:.0f} ms"


def phase_table(runs: dict[str, list[dict]], part: str, plain_part: str, phases) -> list[str]:
    lines = [
        "| phase | playbook-nb | plain graph, one cell | ratio | plain graph, the runbook's cells | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, start, end in phases:
        ours = median_of(runs["cockpit"], part, start, end)
        count = end == "frames_in"
        row = f"| {label} | {fmt(ours, count)} |"
        for kind in ("plain", "shaped"):
            base = median_of(runs[kind], plain_part, start, end)
            ratio = f"{ours / base:.2f}x" if ours is not None and base else "-"
            row += f" {fmt(base, count)} | {ratio} |"
        lines.append(row)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--big", type=int, default=1000, help="one more pair at this size (0: none)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import os

    from playwright.sync_api import sync_playwright

    # as on a user's machine (and as bench_startup and headless_vs_nbclient measure): the kernels load
    # playbook_nb from its bytecode instead of compiling some 90 modules from source in every setup cell
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="pbnb-browser-bench-"))
    server = LabServer(root_dir=workdir / "root", home=workdir / "home")
    server.start()
    big: dict[str, list[dict]] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                runs = measure(server, browser, args.nodes, args.repeat, workdir)
                if args.big > args.nodes:  # one pair, the cockpit first; a failed run is reported, not fatal
                    text = generated_runbook(args.big)
                    cockpit_notebook(text, server.root_dir / "big_cockpit.ipynb", workdir / "runs_big.db")
                    baseline_notebook(text, server.root_dir / "big_plain.ipynb")
                    for kind in ("cockpit", "plain"):
                        try:
                            big[kind] = [
                                one_run(browser, server, f"big_{kind}.ipynb", args.big, kind, workdir)
                            ]
                        except Exception as err:  # the report says what failed
                            big[kind] = [{"error": str(err).splitlines()[0], "render": {}, "click": {}}]
                        print(f"{args.big} nodes {kind}: {json.dumps(big[kind][0])}", file=sys.stderr)
            finally:
                browser.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    kernel = kernel_side(args.nodes, Path(tempfile.mkdtemp(prefix="pbnb-kernel-bench-")))

    def med(kind: str, part: str, key: str = "ink") -> float:
        return statistics.median(r[part][key] for r in runs[kind])

    rows = [
        (
            f"first render, {args.nodes}-node runbook: Run All -> canvas ink",
            med("cockpit", "render"),
            med("plain", "render"),
            "plain ipycytoscape graph, same nodes/edges/positions, one cell",
        ),
        (
            f"first render, {args.nodes}-node runbook: Run All -> canvas ink, against the notebook's shape",
            med("cockpit", "render"),
            med("shaped", "render"),
            "the same plain graph followed by the runbook notebook's cells a node (markdown, one printed line)",
        ),
        (
            f"first render, {args.nodes}-node runbook: widget view created -> canvas ink",
            statistics.median(r["render"]["ink"] - r["render"]["view"] for r in runs["cockpit"]),
            statistics.median(r["render"]["ink"] - r["render"]["view"] for r in runs["plain"]),
            "the same",
        ),
        (
            "click Approve, the page settled -> gate colour painted on the canvas",
            med("cockpit", "click", "painted"),
            med("plain", "click", "painted"),
            "plain Button -> one node's data set",
        ),
        (
            "restyle one node: update its data (what the widget does)",
            med("plain", "click", "painted"),
            med("plain", "reset", "painted"),
            f"re-set the whole {args.nodes}-node graph",
        ),
    ]
    info = machine()
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1-minute)"
    lines = [
        "# Browser benchmark: the cockpit in JupyterLab",
        "",
        f"`benchmarks/browser_render.py --nodes {args.nodes} --repeat {args.repeat} --big {args.big}`; "
        f"JupyterLab + headless Chromium ({CHROMIUM}), medians of {args.repeat} alternated runs (a fresh notebook "
        "and kernel each), baselines measured in the same run; times taken in the page (performance.now()).",
        f"Machine: {', '.join(f'{k} {v}' for k, v in info.items())}; {load}.",
        "",
        "| measure | playbook-nb | baseline | ratio | baseline is |",
        "|---|---|---|---|---|",
    ]
    for measure_name, ours, base, what in rows:
        lines.append(f"| {measure_name} | {ours:.3f} s | {base:.3f} s | {ours / base:.2f}x | {what} |")
    lines += ["", f"## Where the first render goes ({args.nodes} nodes, medians)", ""]
    lines += phase_table(runs, "render", "render", RENDER_PHASES)
    cells = runs["cockpit"][0]["render"]["cells"]
    lines += [
        "",
        "Run All is clicked as soon as the notebook's kernel is ready. The click below is made once the page has "
        f"settled (every one of the runbook's {cells} cells attached to the page, Run All's outputs "
        "shown, the page idle), as it always is for the plain one-cell notebook: "
        f"{median_of(runs['cockpit'], 'render', None, 'settled'):.1f} s after Run All for the runbook, "
        f"{median_of(runs['plain'], 'render', None, 'settled'):.1f} s for the plain notebook, "
        f"{median_of(runs['shaped'], 'render', None, 'settled'):.1f} s for the plain graph in the runbook's shape.",
    ]
    lines += ["", "## Where the click goes (medians)", ""]
    lines += phase_table(runs, "click", "click", CLICK_PHASES)
    if big:
        c, p = big["cockpit"][0], big["plain"][0]
        lines += [
            "",
            f"## {args.big} nodes (one run each)",
            "",
            "| measure | playbook-nb | plain baseline |",
            "|---|---|---|",
            f"| Run All -> canvas ink | {fmt(c['render'].get('ink'))} | {fmt(p['render'].get('ink'))} |",
            f"| widget view created -> canvas ink | {fmt(phase(c['render'], 'view', 'ink'))} | "
            f"{fmt(phase(p['render'], 'view', 'ink'))} |",
            f"| Run All -> kernel idle | {fmt(c['render'].get('idle'))} | {fmt(p['render'].get('idle'))} |",
            f"| click -> colour painted | {fmt(c['click'].get('painted'))} | {fmt(p['click'].get('painted'))} |",
            f"| kernel frames from Run All to idle | {fmt(c['render'].get('frames_in'), True)} | "
            f"{fmt(p['render'].get('frames_in'), True)} |",
        ]
        lines += [
            f"\n{kind} failed: {r['error']}"
            for kind in ("cockpit", "plain")
            for r in big[kind]
            if "error" in r
        ]
    if FAILURES:
        lines += ["", f"Repetitions that failed and were run again ({len(FAILURES)}): " + "; ".join(FAILURES)]
    lines += [
        "",
        "All runs (seconds, Run All -> canvas ink / click -> painted): "
        + "; ".join(
            f"{kind}: "
            + ", ".join(f"{r['render']['ink']:.2f}/{r['click']['painted']:.3f}" for r in runs[kind])
            for kind in KINDS
        ),
        "",
        f"Kernel side, same runbook, no browser: building the widget {kernel['build'] * 1000:.0f} ms, "
        f"running the {args.nodes} node cells (each refreshes the widget) {kernel['cells'] * 1000:.0f} ms, "
        f"the Approve handler {kernel['approve'] * 1000:.1f} ms.",
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
