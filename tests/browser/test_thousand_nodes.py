"""A 1000-node runbook in a real JupyterLab (Chromium), issue 18.5: Run All draws the whole graph (every node in
cytoscape, ink on the canvas), and a click on the waiting gate then Approve colours it OK.

Before the cockpit gave each graph element its whole state in its constructor, a 1000-node graph was about 7,000
comm messages in one burst; the kernel's IOPub queue dropped some and the cockpit never displayed.
"""

from __future__ import annotations

import pytest

from playbook_nb.presentation import look
from tests.browser.lab import hex_rgb, wait_for_cytoscape_canvas
from tests.browser.test_big_cockpit import GATE, cy_eval, open_big_runbook
from tests.browser.test_cockpit import wait_states

pytestmark = pytest.mark.browser

NODES = 1000


def shut_down_sessions(server, notebook: str) -> None:
    """Its kernel and its 1000 cells' outputs do not stay on the Lab server the later browser tests share."""
    for session in server.api("GET", "/api/sessions") or []:
        if session.get("path") == notebook:
            server.api("DELETE", f"/api/sessions/{session['id']}")


def test_a_1000_node_runbook_renders_and_a_click_colours_its_gate(lab_server, page, tmp_path, request):
    request.addfinalizer(lambda: shut_down_sessions(lab_server, "thousand.ipynb"))
    runbook = open_big_runbook(lab_server, page, NODES, "thousand.ipynb", tmp_path / "runs.db")
    lab_server.wait_idle("thousand.ipynb")
    page.locator(".jp-NotebookPanel .jp-Cell").first.scroll_into_view_if_needed()
    wait_for_cytoscape_canvas(page, timeout_ms=120_000)
    wait_states(page, {"start": "OK", GATE: "WAITING"}, timeout_ms=120_000)
    drawn = cy_eval(
        page,
        """const canvases = [...cy.container().querySelectorAll('canvas')];
           const ink = canvases.reduce((k, c) => {
               if (!c.width || !c.height) return k;
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               for (let i = 3; i < d.length; i += 4) if (d[i] > 0) k++;
               return k; }, 0);
           return {nodes: cy.nodes('[!band]').length, edges: cy.edges().length, ink};""",
    )
    assert drawn["nodes"] == NODES, drawn
    assert drawn["edges"] == sum(len(n.depends_on) for n in runbook.nodes.values()), drawn
    assert drawn["ink"] > 10_000, drawn  # the graph is painted, not an empty box

    # The gate in the middle of the graph's view, the graph in the middle of the window: the click lands on it
    # whatever the first render's zoom and the notebook's scroll were.
    point = cy_eval(
        page,
        """cy.container().scrollIntoView({block: 'center'});
           const n = cy.getElementById(arg); cy.center(n);
           const box = cy.container().getBoundingClientRect(); const p = n.renderedPosition();
           return {x: box.left + p.x, y: box.top + p.y, w: window.innerWidth, h: window.innerHeight};""",
        GATE,
    )
    assert 0 < point["x"] < point["w"] and 0 < point["y"] < point["h"], point
    # On a loaded machine the page may still be drawing the outputs of 1000 cells when the click lands, and
    # the first click can come to nothing (seen in CI: nothing under it but the canvas, the node not marked);
    # like a user, the test clicks again, at most three times, and fails naming what it saw.
    header = page.locator(f'.pb-node-header[data-node="{GATE}"]')
    for _click in range(3):
        page.mouse.click(point["x"], point["y"])
        try:
            header.wait_for(timeout=40_000)
            break
        except Exception:
            seen = cy_eval(
                page,
                """const n = cy.getElementById(arg.id); const hit = document.elementFromPoint(arg.x, arg.y);
                   return {marked: n.hasClass('selected-node'), hit: hit ? hit.tagName : null,
                     headers: [...document.querySelectorAll('.pb-node-header')].map(h => h.dataset.node)};""",
                {"id": GATE, "x": point["x"], "y": point["y"]},
            )
    else:
        raise AssertionError(f"no panel for {GATE} after three clicks at {point}: {seen}")
    page.locator("button.pb-button-approve:not([disabled])").click(timeout=60_000)
    wait_states(page, {GATE: "OK"}, timeout_ms=120_000)
    painted = cy_eval(page, "return cy.getElementById(arg).style('background-color');", GATE)
    assert painted.replace(" ", "") == "rgb({},{},{})".format(*hex_rgb(look("OK").fill)), painted
