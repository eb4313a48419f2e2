"""Two kernels on one run, in a real JupyterLab (Chromium), issue 13 point 1: a colleague's copy of the notebook
opened on the run that the first kernel drives gets a watch-only cockpit: a banner says who drives it, no
action buttons, and the states follow the first kernel's progress live."""

from __future__ import annotations

import re

import pytest

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.app.inputs import load_runbook
from tests.browser.lab import open_notebook, screenshot, wait_for_cytoscape_canvas, wait_kernel_idle
from tests.browser.test_cockpit import click_button, click_node, db, run_all, wait_states

pytestmark = pytest.mark.browser

RUNBOOK = """\
[runbook]
title = "watch drill"

[look]
type = "Command"
command_name = "echo looking"

[gate]
type = "Manual"
prompt_after = "Ship it?"

[ship]
type = "Command"
command_name = "echo shipping"
"""


def _notebook(lab_root, tmp_path, db_path, name: str, **values: str) -> str:
    source = tmp_path / "watch.playbook.toml"
    source.write_text(RUNBOOK)
    nb = compile_runbook(load_runbook(source))
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    text = params.source
    for key, literal in {"state_path": repr(str(db_path)), **values}.items():
        text = re.sub(rf"^{key}\s*=.*$", f"{key} = {literal}", text, flags=re.M)
    params.source = text
    write_notebook(nb, lab_root / name)
    return name


def test_a_second_kernel_gets_a_watch_only_cockpit_that_follows_the_run(lab_server, browser, page, tmp_path):
    db_path = tmp_path / "state" / "runs.db"
    first = _notebook(lab_server.root_dir, tmp_path, db_path, "watch_first.ipynb", actor="'dana'")
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_notebook(page, lab_server.base_url, lab_server.token, first)
    run_all(page)
    wait_kernel_idle(page)
    wait_for_cytoscape_canvas(page)
    wait_states(page, {"look": "OK", "gate": "WAITING", "ship": "PENDING"})
    ((run_id,),) = db(db_path, "SELECT id FROM runs")

    second_name = _notebook(
        lab_server.root_dir, tmp_path, db_path, "watch_second.ipynb", actor="'erin'", run_id=str(run_id)
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    second = context.new_page()
    try:
        open_notebook(second, lab_server.base_url, lab_server.token, second_name)
        run_all(second)
        wait_kernel_idle(second)
        wait_for_cytoscape_canvas(second)
        banner = second.locator(".pb-watch-only")
        banner.wait_for(timeout=30_000)
        assert re.search(rf"run {run_id} is driven by dana \(kernel \w+, pid \d+ on ", banner.inner_text())
        wait_states(second, {"look": "OK", "gate": "WAITING", "ship": "PENDING"})
        for name in ("run", "approve", "reject", "retry", "skip", "abort", "run-until-gate"):
            assert second.locator(f"button.pb-button-{name}").is_hidden(), f"{name} is shown watch-only"
        assert "watch-only" in second.locator(".jp-NotebookPanel").inner_text()  # the node cells ran nothing
        second.locator(".playbook-cockpit").scroll_into_view_if_needed()
        screenshot(second, "watch_only")

        # the first kernel approves and runs on; the watching cockpit follows without a click
        click_node(page, "gate")
        click_button(page, "approve")
        page.locator("button.pb-button-run-until-gate").click()
        wait_states(page, {"look": "OK", "gate": "OK", "ship": "OK"})
        wait_states(second, {"look": "OK", "gate": "OK", "ship": "OK"}, timeout_ms=30_000)
    finally:
        context.close()
    assert db(db_path, "SELECT status FROM runs") == [("OK",)]
    assert db(db_path, "SELECT decision, actor FROM decisions") == [("approve", "dana")]
