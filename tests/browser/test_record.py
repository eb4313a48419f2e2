"""No silent resume and a run notebook is a record, in a real JupyterLab (Chromium), as observed in issue 13:

1. Run All, Approve the gate in the cockpit, Abort; change the variable in the parameters cell; Kernel >
   Restart Kernel and Run All Cells: a *new* run starts (the setup cell names the aborted one it did not
   resume), its gate waits, and the step behind the old approval never runs with the new value.
2. The executed notebook of a headless run, opened untrusted: its DAG shows as an image; Run All on it shows
   the recorded run and starts nothing, although its parameters hold the approvals of that run.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.domain.validation import parse_runbook
from tests.browser.lab import (
    KERNEL_TIMEOUT_MS,
    open_notebook,
    screenshot,
    wait_for_cytoscape_canvas,
    wait_kernel_idle,
)
from tests.browser.test_cockpit import click_button, click_node, db, run_all, wait_states

pytestmark = pytest.mark.browser

RUNBOOK = """\
[runbook]
title = "record drill"

[variables]
TARGET = { default = "staging" }

[look]
type = "Command"
command_name = "echo looking at {{ TARGET }}"

[approve_act]
type = "Manual"
prompt_after = "Act on {{ TARGET }}?"
critical = true

[act]
type = "Command"
command_name = "echo acting on {{ TARGET }}"
"""


def _notebook(lab_root, db_path, name: str) -> str:
    nb = compile_runbook(parse_runbook(RUNBOOK))
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = re.sub(r"^state_path\s*=.*$", f"state_path = {str(db_path)!r}", params.source, flags=re.M)
    write_notebook(nb, lab_root / name)
    return name


def _output_text(page, index: int) -> str:
    return (
        page.locator(".jp-NotebookPanel .jp-Cell")
        .nth(index)
        .locator(".jp-Cell-outputArea")
        .first.inner_text()
    )


def _set_parameters(page, text: str) -> None:
    """Type into the parameters cell (the second cell) as a user would."""
    editor = page.locator(".jp-NotebookPanel .jp-Cell").nth(1).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type(text)
    page.keyboard.press("Escape")


def _restart_and_run_all(page) -> None:
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Kernel$")).click()
    page.locator(
        ".lm-Menu-item:not(.lm-mod-disabled)", has_text="Restart Kernel and Run All Cells"
    ).first.click()
    page.locator(".jp-Dialog button.jp-mod-accept").click()


def test_restart_and_run_all_after_abort_with_a_changed_variable_starts_a_new_run(lab_server, page, tmp_path):
    db_path = tmp_path / "state" / "runs.db"
    name = _notebook(lab_server.root_dir, db_path, "record_drill.ipynb")
    page.set_viewport_size({"width": 1400, "height": 1100})
    open_notebook(page, lab_server.base_url, lab_server.token, name)
    run_all(page)
    wait_kernel_idle(page)
    wait_for_cytoscape_canvas(page)
    wait_states(page, {"look": "OK", "approve_act": "WAITING", "act": "PENDING"})
    click_node(page, "approve_act")
    click_button(page, "approve")  # approved for staging
    wait_states(page, {"approve_act": "OK"})
    click_button(page, "abort")
    page.locator(".pb-status[data-status='ABORTED']").wait_for(timeout=30_000)
    assert db(db_path, "SELECT id, status FROM runs") == [(1, "ABORTED")]

    _set_parameters(page, 'variables = {"TARGET": "prod"}')
    _restart_and_run_all(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea')].some(o => /started a new run 2/.test(o.textContent))",
        timeout=KERNEL_TIMEOUT_MS,
    )
    wait_kernel_idle(page)
    wait_for_cytoscape_canvas(page)
    wait_states(page, {"look": "OK", "approve_act": "WAITING", "act": "PENDING"})
    setup = _output_text(page, 3)
    assert "run 1 of this runbook is ABORTED" in setup and "set run_id = 1 in the parameters cell" in setup
    setup_cell = page.locator(".jp-NotebookPanel .jp-Cell").nth(3)
    setup_cell.scroll_into_view_if_needed()
    screenshot(page, "restart_run_all_new_run", locator=setup_cell)
    assert db(db_path, "SELECT id, status FROM runs ORDER BY id") == [(1, "ABORTED"), (2, "RUNNING")]
    assert db(db_path, "SELECT variables FROM runs WHERE id = 2") == [('{"TARGET":"prod"}',)]
    assert db(db_path, "SELECT count(*) FROM attempts WHERE node_id = 'act'") == [
        (0,)
    ]  # never on the old approval
    assert db(db_path, "SELECT run_id, decision FROM decisions") == [(1, "approve")]


def test_run_all_on_an_executed_notebook_shows_the_record_and_starts_nothing(lab_server, page, tmp_path):
    db_path = tmp_path / "state" / "runs.db"
    runbook = tmp_path / "record_drill.playbook.toml"
    runbook.write_text(RUNBOOK)
    executed = lab_server.root_dir / "record_drill.executed.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "playbook_nb", "run", str(runbook), "--headless", "--approve", "approve_act",
         "--state-path", str(db_path), "-o", str(executed)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    open_notebook(page, lab_server.base_url, lab_server.token, executed.name)
    # untrusted (never signed here): the DAG is an image JupyterLab renders anyway
    image = page.locator(".jp-RenderedImage img").first
    image.wait_for(timeout=30_000)
    image.scroll_into_view_if_needed()
    screenshot(page, "executed_notebook_untrusted_dag", locator=page.locator(".jp-Cell", has=image).first)
    run_all(page)
    wait_kernel_idle(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea')].some(o => /\\(recorded\\)/.test(o.textContent))",
        timeout=KERNEL_TIMEOUT_MS,
    )
    outputs = page.locator(".jp-NotebookPanel .jp-OutputArea").all_inner_texts()
    assert any("This notebook is the record of run 1" in text for text in outputs), outputs
    assert db(db_path, "SELECT id, status FROM runs") == [(1, "OK")]
    assert db(db_path, "SELECT count(*) FROM attempts") == [(2,)]
    assert db(db_path, "SELECT count(*) FROM decisions") == [(1,)]
