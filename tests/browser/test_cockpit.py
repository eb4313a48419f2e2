"""The incident cockpit in a real JupyterLab (Chromium): the acceptance runbook compiled to a notebook, Run All,
then the graph is worked with the mouse: click a node on the canvas, Approve the gate, Run until a gate, Retry a
failing node, Skip it. The index (SQLite) must hold exactly what those clicks did.

How a node is clicked on a canvas: cytoscape.js registers its instance on its container element
(`container._cyreg.cy`, the same registry `cytoscape({container})` reads to refuse a second instance). From it,
`cy.getElementById(id).renderedPosition()` is the node's centre in container pixels; adding the container's
bounding box gives page coordinates, and Playwright clicks there with a real mouse event, which goes through
cytoscape's hit test, ipycytoscape's "click" handler and the comm to the kernel, as a user's click does.
Colours are checked twice: the node data the view holds (`cy` element data `state`, what the stylesheet maps to
a colour) and the pixels of a screenshot around the node.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from collections import Counter

import nbformat
import pytest
from playwright.sync_api import expect

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.app.inputs import load_runbook
from playbook_nb.presentation import look
from tests.browser.lab import (
    KERNEL_TIMEOUT_MS,
    hex_rgb,
    open_notebook,
    png_pixels,
    screenshot,
    wait_for_cytoscape_canvas,
    wait_kernel_idle,
)
from tests.conftest import FIXTURES

RUNBOOK = FIXTURES / "deploy_pipeline.playbook.toml"
ACTOR = "carol-oncall"

FIND_CY = """
    const host = [...document.querySelectorAll('.jp-OutputArea-output div')]
        .find(d => d._cyreg && d._cyreg.cy);
    const cy = host ? host._cyreg.cy : null;
"""


def compile_notebook(lab_root, db_path, *, healthy: bool = False, name: str = "deploy_cockpit.ipynb") -> str:
    """The acceptance runbook as a notebook in the lab root, its parameters cell edited like papermill would."""
    nb = compile_runbook(load_runbook(RUNBOOK))
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {
        "variables": json.dumps({"ENVIRONMENT": "staging", "HEALTHY": healthy}).replace("false", "False"),
        "state_path": repr(str(db_path)),
        "actor": repr(ACTOR),
    }
    values["variables"] = values["variables"].replace("true", "True")
    source = params.source
    for name_, literal in values.items():
        pattern = re.compile(rf"^{name_}\s*=.*$", re.MULTILINE)
        line = f"{name_} = {literal}"
        source = pattern.sub(line, source, count=1) if pattern.search(source) else f"{source}\n{line}"
    params.source = source
    write_notebook(nb, lab_root / name)
    return name


def run_all(page) -> None:
    """Run > Run All Cells, then wait until every code cell whose input is shown has a "[*]" or "[n]" prompt.

    (tests.browser.lab.run_all_cells waits on every prompt, but a compiled notebook hides the input of its
    runbook-source cell, whose prompt then stays empty even after it ran: that wait never ends.)
    """
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    item = page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Run All Cells"))
    # JupyterLab's Run All holds the page for seconds on a long notebook (a forced layout for every code cell it
    # queues: about 10 s for the 2,005 cells of the 1,000-node runbook once they are all attached), and the click
    # is answered only after that
    item.first.click(timeout=60_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
               .filter(p => !p.closest('.jp-Cell').querySelector('.jp-InputPlaceholder'))
               .every(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""",
        timeout=KERNEL_TIMEOUT_MS,
    )


def enable_widget_state_saving(lab_server) -> None:
    """JupyterLab: Settings > Save Widget State Automatically (the same setting, through the settings API)."""
    req = urllib.request.Request(
        f"{lab_server.base_url}/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin",
        method="PUT",
        data=json.dumps({"raw": json.dumps({"saveState": True})}).encode(),
        headers={"Authorization": f"token {lab_server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status in (200, 204)


def node_states(page) -> dict[str, str]:
    return page.evaluate(
        "() => {" + FIND_CY + "if (!cy) return {};"
        " const out = {}; cy.nodes().forEach(n => { out[n.id()] = n.data('state') + (n.data('awaiting') ? '!' : ''); });"
        " return out; }"
    )


def wait_states(page, expected: dict[str, str], timeout_ms: int = 60_000) -> None:
    """Wait until the view's node data shows `expected` (state, with a trailing '!' when awaiting a decision)."""
    try:
        page.wait_for_function(
            "(expected) => {" + FIND_CY + "if (!cy) return false;"
            " return Object.entries(expected).every(([id, s]) => {"
            "   const n = cy.getElementById(id); if (n.empty()) return false;"
            "   return (n.data('state') + (n.data('awaiting') ? '!' : '')) === s; }); }",
            arg=expected,
            timeout=timeout_ms,
            polling=200,
        )
    except Exception as err:
        raise AssertionError(f"states {node_states(page)} never matched {expected}") from err


def node_point(page, node_id: str) -> dict:
    """Page coordinates and rendered size of a node's centre (scrolled into view first)."""
    page.evaluate("() => {" + FIND_CY + "cy.container().scrollIntoView({block: 'center'}); }")
    page.wait_for_timeout(300)
    point = page.evaluate(
        "(id) => {"
        + FIND_CY
        + "const n = cy.getElementById(id); const box = cy.container().getBoundingClientRect();"
        " const p = n.renderedPosition();"
        " return {x: box.left + p.x, y: box.top + p.y, w: n.renderedWidth(), h: n.renderedHeight(),"
        "         zoom: cy.zoom()}; }",
        node_id,
    )
    assert point and point["w"] > 20, f"node {node_id} not drawn: {point}"
    return point


def click_node(page, node_id: str) -> None:
    point = node_point(page, node_id)
    page.mouse.click(point["x"], point["y"])
    page.locator(f'.pb-node-header[data-node="{node_id}"]').wait_for(timeout=30_000)


def node_fill(page, node_id: str) -> tuple[int, int, int]:
    """The dominant colour inside a node on screen (left of its label, where only the fill is)."""
    point = node_point(page, node_id)
    clip = {"x": point["x"] - point["w"] * 0.30 - 4, "y": point["y"] - 4, "width": 8, "height": 8}
    _w, _h, pixels = png_pixels(page.screenshot(clip=clip))
    return Counter(pixels).most_common(1)[0][0]


def assert_fill(page, node_id: str, state: str) -> None:
    got = node_fill(page, node_id)
    want = hex_rgb(look(state).fill)
    assert all(abs(a - b) <= 12 for a, b in zip(got, want, strict=True)), (
        f"{node_id}: pixel colour {got}, expected the {state} fill {want}"
    )


def click_button(page, name: str) -> None:
    button = page.locator(f"button.pb-button-{name}")
    button.scroll_into_view_if_needed()
    try:  # the panel's buttons follow the graph's colours by a message or two
        expect(button).to_be_enabled(timeout=10_000)
    except AssertionError as err:
        raise AssertionError(f"button {name} is disabled") from err
    button.click()


def db(path, sql: str, *params):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def cockpit(lab_server, page, tmp_path):
    enable_widget_state_saving(lab_server)
    page.set_viewport_size({"width": 1400, "height": 1100})  # the whole cockpit in view, for the screenshots
    db_path = tmp_path / "state" / "runs.db"
    name = compile_notebook(lab_server.root_dir, db_path)
    open_notebook(page, lab_server.base_url, lab_server.token, name)
    run_all(page)
    wait_kernel_idle(page)
    wait_for_cytoscape_canvas(page)
    return page, db_path, lab_server.root_dir / name


# (index of the active cell, number of cells, the notebook's mode)
ACTIVE_CELL_JS = """() => { const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
    const cells = [...nb.querySelectorAll('.jp-Cell')];
    return [cells.findIndex(c => c.classList.contains('jp-mod-active')), cells.length,
            nb.classList.contains('jp-mod-editMode') ? 'edit' : 'command']; }"""


def test_cockpit_approve_retry_skip_recorded_in_the_index(cockpit):
    page, db_path, nb_path = cockpit

    # After Run All: the cells ran up to the gate, which waits as state; nothing blocks the kernel.
    wait_states(
        page,
        {
            "build_app": "OK",
            "run_tests": "OK",
            "security_scan": "SKIPPED",
            "approve_deploy": "WAITING",
            "deploy_application": "PENDING",
        },
    )
    assert_fill(page, "build_app", "OK")
    assert_fill(page, "approve_deploy", "WAITING")
    overview = page.locator(".playbook-cockpit").first
    overview.scroll_into_view_if_needed()
    screenshot(page, "cockpit_overview", locator=overview)

    # Working the cockpit leaves the notebook's active cell where Run All put it, in command mode.
    before = page.evaluate(ACTIVE_CELL_JS)

    # Click the gate on the canvas: its panel opens with Approve / Reject enabled, Run / Retry disabled.
    click_node(page, "approve_deploy")
    assert page.locator("button.pb-button-approve").is_enabled()
    assert page.locator("button.pb-button-reject").is_enabled()
    assert page.locator("button.pb-button-run").is_disabled()
    assert page.locator("button.pb-button-retry").is_disabled()
    assert page.locator("button.pb-button-skip").is_disabled()  # critical gate
    expect(page.locator(".pb-details")).to_contain_text("Deploy myapp to staging?")
    page.locator(".pb-comment input").press_sequentially("change CHG-1234 ab")  # a, b: no cells inserted
    page.locator(".pb-comment input").fill("change CHG-1234 approved")
    screenshot(page, "cockpit_node_panel", locator=overview)

    click_button(page, "approve")
    wait_states(page, {"approve_deploy": "OK", "deploy_application": "READY"})
    assert page.evaluate(ACTIVE_CELL_JS) == before, "the cockpit moved the notebook's active cell or mode"
    assert_fill(page, "approve_deploy", "OK")
    assert_fill(page, "deploy_application", "READY")

    # Run until a gate: the deploy runs, the health check fails (HEALTHY = false) and waits for a decision.
    click_button(page, "run-until-gate")
    wait_states(page, {"deploy_application": "OK", "health_check": "NOK!", "rollback": "PENDING"})
    assert_fill(page, "deploy_application", "OK")
    assert_fill(page, "health_check", "NOK")

    click_node(page, "health_check")
    assert page.locator("button.pb-button-retry").is_enabled()
    assert page.locator("button.pb-button-skip").is_enabled()  # not critical
    assert page.locator("button.pb-button-approve").is_disabled()
    click_button(page, "retry")
    page.locator(".pb-attempts tr").nth(2).wait_for(timeout=30_000)  # header + 2 attempts
    wait_states(page, {"health_check": "NOK!"})
    page.locator(".pb-node-output", has_text="unhealthy").wait_for(timeout=30_000)
    screenshot(page, "cockpit_failed_node", locator=overview)
    page.wait_for_timeout(500)  # the stored output stays (it once got wiped by a late clear_output)
    assert "unhealthy" in page.locator(".pb-node-output").inner_text()

    click_button(page, "skip")
    wait_states(page, {"health_check": "SKIPPED", "rollback": "READY", "notify_success": "SKIPPED"})
    click_button(page, "run-until-gate")
    wait_states(page, {"rollback": "OK", "notify_failure": "OK"})
    assert_fill(page, "rollback", "OK")
    page.locator('.pb-status[data-status="OK"]').wait_for(timeout=30_000)

    # A click at the very centre of a gate selects it. There cytoscape's own test of a diamond fails (its top
    # and bottom corners lie on the click's column): in a centred single-column graph that is a whole pixel.
    assert page.locator('.pb-node-header[data-node="health_check"]').count() == 1
    centre = page.evaluate(
        "(id) => {" + FIND_CY + "const n = cy.getElementById(id), box = cy.container();"
        " box.scrollIntoView({block: 'center'}); cy.zoom(1);"
        " const rect = box.getBoundingClientRect(), style = getComputedStyle(box);"
        " const left = rect.left + box.clientLeft + parseFloat(style.paddingLeft);"
        " const top = rect.top + box.clientTop + parseFloat(style.paddingTop), c = n.position();"
        " cy.pan({x: Math.round(left + cy.width() / 2) - left - c.x, y: Math.round(top + cy.height() / 2) - top - c.y});"
        " const x = left + c.x + cy.pan().x, y = top + c.y + cy.pan().y;"
        " return {x, y, column: cy.renderer().projectIntoViewport(x, y)[0] === c.x}; }",
        "approve_deploy",
    )  # fmt: skip
    assert centre["column"], f"the click point {centre} is not on the gate's centre column"
    page.mouse.click(centre["x"], centre["y"])
    page.locator('.pb-node-header[data-node="approve_deploy"]').wait_for(timeout=30_000)

    # The index holds what the clicks did.
    (run_id,) = db(db_path, "SELECT id FROM runs ORDER BY id DESC LIMIT 1")[0]
    decisions = db(
        db_path,
        "SELECT node_id, decision, actor, comment FROM decisions WHERE run_id = ? ORDER BY id",
        run_id,
    )
    assert decisions == [
        ("approve_deploy", "approve", ACTOR, "change CHG-1234 approved"),
        ("health_check", "retry", ACTOR, None),
        ("health_check", "skip", ACTOR, None),
    ]
    attempts = db(
        db_path, "SELECT attempt, status, exit_code FROM attempts WHERE run_id = ? AND node_id = 'health_check'"
        " ORDER BY attempt", run_id,
    )  # fmt: skip
    assert attempts == [(1, "NOK", 1), (2, "NOK", 1)]
    assert db(
        db_path, "SELECT state, reason FROM node_states WHERE run_id = ? AND node_id = 'health_check'", run_id
    ) == [("SKIPPED", "skipped by operator")]
    assert db(db_path, "SELECT status, trigger, mode FROM runs WHERE id = ?", run_id) == [
        ("OK", "notebook", "interactive")
    ]

    # Saving the notebook stores the widget state (Save Widget State Automatically is on).
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.keyboard.press("Control+s")
    saved = None
    for _ in range(120):  # the save is asynchronous: poll the file on disk
        saved = nbformat.read(str(nb_path), as_version=4)
        if "widgets" in saved.metadata:
            break
        page.wait_for_timeout(250)
    state = saved.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {})
    cyto_nodes = [m for m in models.values() if m.get("model_name") == "NodeModel"]
    saved_states = {m["state"]["data"]["id"]: m["state"]["data"]["state"] for m in cyto_nodes}
    assert saved_states.get("health_check") == "SKIPPED" and saved_states.get("notify_failure") == "OK", (
        saved_states
    )
