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
from tests.browser.test_cockpit import (
    FIND_CY,
    assert_fill,
    click_button,
    click_node,
    db,
    node_point,
    run_all,
    wait_states,
)

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


def _restart_into_new_run(page, number: int) -> None:
    """Kernel > Restart Kernel and Run All Cells, then wait until the setup cell says it started run `number`,
    the summary cell says what the run waits for (every cell before it ran), the kernel is idle and the cockpit
    is drawn. Not every prompt: the websocket JupyterLab reconnects during a restart can lose a cell's
    execute_reply, leaving its prompt at [*] although it and the cells after it ran (seen once in a clean-clone
    CI run at f5d6956; the family of jupyterlab/jupyterlab#9484)."""
    _restart_and_run_all(page)
    for text in (f"started a new run {number}", f"run {number} is still RUNNING; it waits for"):
        page.wait_for_function(
            "(text) => [...document.querySelectorAll('.jp-OutputArea')].some(o => o.textContent.includes(text))",
            arg=text,
            timeout=KERNEL_TIMEOUT_MS,
        )
    wait_kernel_idle(page, prompts=False)
    wait_for_cytoscape_canvas(page)


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
    _restart_into_new_run(page, 2)
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


def test_a_trusted_executed_notebook_shows_its_saved_graph_read_only_and_clickable(
    lab_server, page, tmp_path
):
    """Issue 13 point 6: `run --headless --widget-state` saves the final graph as widget state; once the
    notebook is trusted, JupyterLab draws it from that state (no run started, nothing recorded), with the
    recorded colours, and a click selects a node on the graph."""
    db_path = tmp_path / "state" / "runs.db"
    runbook = tmp_path / "saved_graph.playbook.toml"
    runbook.write_text(RUNBOOK.replace("record drill", "saved graph"))
    executed = lab_server.root_dir / "saved_graph.executed.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "playbook_nb", "run", str(runbook), "--headless", "--approve", "approve_act",
         "--widget-state", "--state-path", str(db_path), "-o", str(executed)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trusted = subprocess.run(
        [sys.executable, "-m", "jupyter", "trust", str(executed)],
        capture_output=True, text=True, timeout=60, env=lab_server.env(),
    )  # fmt: skip
    assert trusted.returncode == 0, trusted.stderr
    open_notebook(page, lab_server.base_url, lab_server.token, executed.name)
    wait_for_cytoscape_canvas(page)
    for node_id in ("look", "act"):
        assert_fill(page, node_id, "OK")  # the recorded outcome, drawn from the saved state
    states = page.evaluate("() => {" + FIND_CY + "return cy.nodes().map(n => [n.id(), n.data('state')]); }")
    assert sorted(states) == [["act", "OK"], ["approve_act", "OK"], ["look", "OK"]]
    notebook = page.locator(".jp-NotebookPanel").first
    assert "Record: run 1 ended OK" in notebook.locator(".pb-watch-only").last.inner_text()
    for button in ("run", "approve", "reject", "retry", "skip", "abort"):
        assert not notebook.locator(f".pb-button-{button}").last.is_visible()  # nothing can drive it
    point = node_point(page, "act")
    page.mouse.click(point["x"], point["y"])
    tooltip = page.locator(".pb-record-tip", has_text="echo acting on staging")  # the command as it ran
    tooltip.wait_for(timeout=10_000)
    assert "Attempts" in tooltip.inner_text() and "OK" in tooltip.inner_text()
    screenshot(page, "executed_notebook_trusted_graph", locator=notebook)
    assert db(db_path, "SELECT id, status FROM runs") == [(1, "OK")]  # opening it started nothing
    assert db(db_path, "SELECT count(*) FROM attempts") == [(2,)]
