"""Two browser tabs on one kernel, in a real JupyterLab (Chromium), issue 13 point 7: a second tab opened on the
notebook whose kernel drives the run renders the cockpit (no "model not found"), and each tab has its own
selection and comment: another person's click or comment in their tab never changes what your Approve acts on.

The second tab is a separate browser context (another person's browser) opening the same notebook after the
first tab saved it: JupyterLab connects it to the same kernel, and its widget manager restores the cockpit's
models from that kernel."""

from __future__ import annotations

import pytest

from tests.browser.lab import open_notebook, screenshot, wait_for_cytoscape_canvas, wait_kernel_idle
from tests.browser.test_cockpit import (
    ACTOR,
    click_node,
    compile_notebook,
    db,
    run_all,
    wait_states,
)

pytestmark = pytest.mark.browser


def _panel_header(page) -> str | None:
    """The node whose panel this tab shows (the visible panel's header), None if none."""
    return page.evaluate(
        """() => {
            const h = [...document.querySelectorAll('.pb-node-header')].find(e => e.checkVisibility());
            return h ? h.dataset.node : null;
        }"""
    )


def _comment(page):
    return page.locator(".pb-panel:visible .pb-comment input")


def _button(page, name: str):
    return page.locator(f".pb-panel:visible button.pb-button-{name}")


def test_two_tabs_on_one_kernel_each_keep_their_own_selection_and_comment(
    lab_server, browser, page, tmp_path
):
    db_path = tmp_path / "state" / "runs.db"
    name = compile_notebook(lab_server.root_dir, db_path, name="two_tabs.ipynb")
    page.set_viewport_size({"width": 1400, "height": 1100})
    open_notebook(page, lab_server.base_url, lab_server.token, name)
    run_all(page)
    wait_kernel_idle(page)
    wait_for_cytoscape_canvas(page)
    wait_states(page, {"build_app": "OK", "approve_deploy": "WAITING", "deploy_application": "PENDING"})
    # Saved, so that the second tab opens the notebook with the cockpit's output in it.
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.keyboard.press("Control+s")
    page.locator(".jp-mod-dirty").wait_for(state="detached", timeout=30_000)

    # Tab A (carol) selects the gate and types her comment.
    click_node(page, "approve_deploy")
    _comment(page).fill("carol: CHG-1 approved")

    # Tab B: another browser on the same notebook joins the same kernel and renders the cockpit.
    other = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        tab_b = other.new_page()
        tab_b.set_default_timeout(30_000)
        open_notebook(tab_b, lab_server.base_url, lab_server.token, name)
        sessions = lab_server.api("GET", "/api/sessions")
        kernels = {s["kernel"]["id"] for s in sessions if s["path"] == name}
        assert len(kernels) == 1, sessions  # one kernel, two tabs
        wait_for_cytoscape_canvas(tab_b)
        assert "model not found" not in tab_b.locator(".jp-NotebookPanel").inner_text().lower()
        wait_states(tab_b, {"build_app": "OK", "approve_deploy": "WAITING"})

        # Tab B selects another node and types another comment.
        click_node(tab_b, "build_app")
        _comment(tab_b).fill("dave: looking at the build")
        tab_b.wait_for_timeout(1_000)  # every message from tab B has reached the kernel and come back

        # Tab A still shows its own node and its own comment, and its Approve is live for the gate.
        assert _panel_header(page) == "approve_deploy"
        assert _comment(page).input_value() == "carol: CHG-1 approved"
        assert _panel_header(tab_b) == "build_app"
        assert _button(page, "approve").is_enabled()
        assert _button(tab_b, "approve").is_disabled()  # build_app is OK: nothing to approve there
        overview = page.locator(".playbook-cockpit").first
        screenshot(page, "cockpit_two_tabs_a", locator=overview)
        screenshot(tab_b, "cockpit_two_tabs_b", locator=tab_b.locator(".playbook-cockpit").first)

        # Tab A's Approve acts on tab A's gate with tab A's comment; both tabs then show the gate OK.
        button = _button(page, "approve")
        button.scroll_into_view_if_needed()
        button.click()
        wait_states(page, {"approve_deploy": "OK", "deploy_application": "READY"})
        wait_states(tab_b, {"approve_deploy": "OK", "deploy_application": "READY"})
        assert _comment(tab_b).input_value() == "dave: looking at the build"
        assert _panel_header(tab_b) == "build_app"
    finally:
        other.close()

    ((run_id,),) = db(db_path, "SELECT id FROM runs")
    assert db(
        db_path, "SELECT node_id, decision, actor, comment FROM decisions WHERE run_id = ?", run_id
    ) == [("approve_deploy", "approve", ACTOR, "carol: CHG-1 approved")]
