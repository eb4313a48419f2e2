"""A cockpit view whose model anywidget gave up on still hears the kernel (VIEW_ESM's `revive`).

anywidget 0.11 gives a widget model 2 s from its creation to load its ESM; past that it marks the model's runtime
failed and drops every message the kernel sends to it, while what the view sends still goes out. Clean-clone CI
runs hit that after Run All of the 200-node runbook (the page busy with ~700 new widgets): every `ready` answer
reached the page's websocket, none reached the view. Here the 2 s are cut to nothing in the page, so the model's
runtime always fails, as it did under load; the view must still be heard, get its own panel and the jump list.
"""

from __future__ import annotations

import pytest

from tests.browser.lab import open_notebook, wait_for_cytoscape_canvas, wait_kernel_idle
from tests.browser.test_cockpit import click_node, compile_notebook, run_all, wait_states

pytestmark = pytest.mark.browser

# Every AbortSignal.timeout(2000) (anywidget's model deadline; nothing else in the page asks for 2000 ms) fires
# at once; counted, so the test knows the deadline was there to cut.
CUT_ANYWIDGETS_DEADLINE = """
window.__pbCutDeadlines = 0;
const timeout = AbortSignal.timeout.bind(AbortSignal);
AbortSignal.timeout = (ms) => {
  if (ms !== 2000) return timeout(ms);
  window.__pbCutDeadlines += 1;
  return timeout(0);
};
"""


def test_a_view_whose_model_anywidget_gave_up_on_still_hears_the_kernel(lab_server, page, tmp_path):
    page.add_init_script(CUT_ANYWIDGETS_DEADLINE)
    name = compile_notebook(lab_server.root_dir, tmp_path / "state" / "runs.db", name="revive_cockpit.ipynb")
    open_notebook(page, lab_server.base_url, lab_server.token, name)
    run_all(page)
    wait_kernel_idle(page)
    wait_for_cytoscape_canvas(page)
    wait_states(page, {"build_app": "OK", "approve_deploy": "WAITING"})
    assert page.evaluate("window.__pbCutDeadlines") >= 1  # anywidget's deadline was cut: its runtime failed

    channel = page.locator(".pb-view-channel").first
    page.wait_for_function(
        "() => { const v = document.querySelector('.pb-view-channel'); return v && (v.dataset.pbHeard"
        " || v.dataset.pbDeaf); }",
        timeout=60_000,
    )
    assert channel.get_attribute("data-pb-heard") == "true", "deaf: " + str(
        channel.get_attribute("data-pb-revived")
    )
    assert channel.get_attribute("data-pb-revived") == "revived"
    # what the kernel sent to the model got through: the jump list names the waiting gate
    jump = page.locator(".pb-jump option")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.pb-jump option')].some(o => o.value === 'approve_deploy')",
        timeout=30_000,
    )
    assert jump.count() >= 2
    # and the view has its own panel: a click on the gate shows it there
    click_node(page, "approve_deploy")
    assert page.locator("button.pb-button-approve").is_enabled()
