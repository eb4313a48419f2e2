"""A human in JupyterLab is known from the protocol, not from the environment (issue 19.5), in a real
JupyterLab (Chromium).

The notebook's kernel is started through a kernelspec that strips `JPY_SESSION_NAME` (as VS Code's and
Voila's kernels lack it): Run All still leaves the gate WAITING in the cockpit (JupyterLab's execute requests
allow stdin: a person can answer), Approve works and is recorded, and Kernel > Restart Kernel and Run All
Cells starts a new run whose gate waits again.
"""

from __future__ import annotations

import json
import re
import sys

import nbformat
import pytest

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.domain.validation import parse_runbook
from tests.browser.lab import open_notebook, wait_for_cytoscape_canvas, wait_kernel_idle
from tests.browser.test_cockpit import click_button, click_node, db, run_all, wait_states
from tests.browser.test_record import RUNBOOK, _restart_into_new_run

pytestmark = pytest.mark.browser

KERNEL = "python3-no-session-name"


def _install_kernelspec(lab_server) -> None:
    """A kernelspec in the server's own data dir whose kernel never sees JPY_SESSION_NAME."""
    spec = lab_server.home / "data" / "kernels" / KERNEL / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(
        json.dumps(
            {
                "argv": [
                    "env",
                    "-u",
                    "JPY_SESSION_NAME",
                    sys.executable,
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "Python (no JPY_SESSION_NAME)",
                "language": "python",
            }
        )  # fmt: skip
    )


def test_lab_without_jpy_session_name_keeps_the_gate_waiting_and_approve_works(lab_server, page, tmp_path):
    _install_kernelspec(lab_server)
    db_path = tmp_path / "state" / "runs.db"
    nb = compile_runbook(
        parse_runbook(RUNBOOK), kernelspec={"name": KERNEL, "display_name": KERNEL, "language": "python"}
    )
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = re.sub(r"^state_path\s*=.*$", f"state_path = {str(db_path)!r}", params.source, flags=re.M)
    nb.cells.append(
        nbformat.v4.new_code_cell('import os; print("session name:", os.environ.get("JPY_SESSION_NAME"))')
    )
    write_notebook(nb, lab_server.root_dir / "presence.ipynb")

    page.set_viewport_size({"width": 1400, "height": 1100})
    open_notebook(page, lab_server.base_url, lab_server.token, "presence.ipynb")
    run_all(page)
    wait_kernel_idle(page)
    wait_for_cytoscape_canvas(page)
    wait_states(page, {"look": "OK", "approve_act": "WAITING", "act": "PENDING"})
    last = page.locator(".jp-NotebookPanel .jp-Cell").last.locator(".jp-Cell-outputArea")
    assert "session name: None" in last.inner_text()  # the kernel really has no JPY_SESSION_NAME
    assert db(db_path, "SELECT id, status, mode FROM runs") == [(1, "RUNNING", "interactive")]

    click_node(page, "approve_act")
    click_button(page, "approve")
    wait_states(page, {"approve_act": "OK", "act": "READY"})
    assert db(db_path, "SELECT node_id, decision FROM decisions") == [("approve_act", "approve")]

    _restart_into_new_run(page, 2)
    wait_states(page, {"look": "OK", "approve_act": "WAITING", "act": "PENDING"})
    assert db(db_path, "SELECT status, mode FROM runs WHERE id = 2") == [("RUNNING", "interactive")]
