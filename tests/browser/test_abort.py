"""Abort means stop now, in a real JupyterLab (Chromium): during Run All, the `slow` node's command (a shell,
a child shell and two sleeps) runs while the cockpit stays live; the widget's Abort, or Kernel > Interrupt,
stops the whole process group within 2 s (measured from /proc), the attempt is INTERRUPTED, the node PENDING
with the reason, the run ABORTED (resumable), and Run All stops at that cell."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.app.inputs import load_runbook
from tests.abort_helpers import kill_all, long_runbook, pids_with, seconds_until_gone
from tests.browser.lab import KERNEL_TIMEOUT_MS, open_notebook, screenshot, wait_for_cytoscape_canvas
from tests.browser.test_cockpit import run_all, wait_states

pytestmark = pytest.mark.browser


def _notebook(lab_root, tmp_path, db_path, name: str) -> tuple[str, str]:
    runbook, marker, _flag = long_runbook(tmp_path)
    nb = compile_runbook(load_runbook(runbook))
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = re.sub(r"^state_path\s*=.*$", f"state_path = {str(db_path)!r}", params.source, flags=re.M)
    write_notebook(nb, lab_root / name)
    return name, marker


def _rows(db_path, sql: str, *params):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _wait_marker(marker: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not pids_with(marker):
        if time.monotonic() > deadline:
            raise AssertionError("the slow command never started")
        time.sleep(0.1)


def _assert_aborted(db_path, reason_part: str) -> None:
    ((status, reason),) = _rows(db_path, "SELECT status, status_reason FROM runs")
    assert status == "ABORTED", (status, reason)
    states = dict(_rows(db_path, "SELECT node_id, state FROM node_states"))
    assert states == {"first": "OK", "slow": "PENDING", "last": "PENDING"}, states
    ((node_reason,),) = _rows(db_path, "SELECT reason FROM node_states WHERE node_id = 'slow'")
    assert node_reason.startswith("interrupted: attempt 1 stopped") and reason_part in node_reason, (
        node_reason
    )
    assert _rows(db_path, "SELECT status FROM attempts WHERE node_id = 'slow'") == [("INTERRUPTED",)]


def test_widget_abort_during_a_long_command_kills_it_within_2s(lab_server, page, tmp_path):
    db_path = tmp_path / "state" / "runs.db"
    name, marker = _notebook(lab_server.root_dir, tmp_path, db_path, "abort_widget.ipynb")
    try:
        page.set_viewport_size({"width": 1400, "height": 1100})
        open_notebook(page, lab_server.base_url, lab_server.token, name)
        run_all(page)
        wait_for_cytoscape_canvas(page)
        _wait_marker(marker)
        wait_states(page, {"first": "OK", "slow": "RUNNING"})
        abort = page.locator("button.pb-button-abort")
        abort.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => { const b = document.querySelector('button.pb-button-abort'); return b && !b.disabled; }",
            timeout=30_000,
        )  # live while the node's cell runs: the kernel handles the click now, not when the command ends
        abort.click()
        lived = seconds_until_gone(marker)
        assert lived < 2.0, f"the command lived on {lived:.2f}s after Abort"
        wait_states(page, {"first": "OK", "slow": "PENDING", "last": "PENDING"})
        page.locator(".pb-status[data-status='ABORTED']").wait_for(timeout=30_000)
        page.wait_for_function(
            "() => /ABORTED: aborted from the widget/.test(document.querySelector('.jp-NotebookPanel').innerText)",
            timeout=KERNEL_TIMEOUT_MS,
        )  # the slow cell ends with one line, and Run All stops there
        screenshot(page, "abort_during_command")
    finally:
        kill_all(marker)
    _assert_aborted(db_path, "aborted from the widget")


def test_kernel_interrupt_during_a_long_command_kills_it_within_2s(lab_server, page, tmp_path):
    db_path = tmp_path / "state" / "runs.db"
    name, marker = _notebook(lab_server.root_dir, tmp_path, db_path, "abort_interrupt.ipynb")
    try:
        open_notebook(page, lab_server.base_url, lab_server.token, name)
        run_all(page)
        _wait_marker(marker)
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Kernel$")).click()
        page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Interrupt Kernel")).click()
        lived = seconds_until_gone(marker)
        assert lived < 2.0, f"the command lived on {lived:.2f}s after Kernel > Interrupt"
        page.wait_for_function(
            "() => /ABORTED: interrupted \\(SIGINT\\)/.test(document.querySelector('.jp-NotebookPanel').innerText)",
            timeout=KERNEL_TIMEOUT_MS,
        )
    finally:
        kill_all(marker)
    _assert_aborted(db_path, "SIGINT")
