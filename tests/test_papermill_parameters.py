"""papermill conventions (issue 19.4): the parameters cell declares one typed parameter per runbook variable,
commented with its description, choices and whether it is required, so `papermill --help-notebook` (and
jupyter-scheduler, CI) see them; the control parameters stay apart; `-p NAME VALUE` on a variable works with
plain papermill, and so does the `variables` dict."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from conftest import DEPLOY, db_rows, write_runbook

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.app.inputs import load_runbook

PAPERMILL = [str(Path(sys.executable).with_name("papermill"))]
if not shutil.which(PAPERMILL[0]):
    PAPERMILL = [sys.executable, "-m", "papermill"]


def help_notebook(path: Path) -> str:
    result = subprocess.run(
        [*PAPERMILL, "--help-notebook", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_papermill_help_notebook_lists_each_runbook_variable(tmp_path):
    notebook = tmp_path / "deploy.ipynb"
    write_notebook(compile_runbook(load_runbook(DEPLOY)), notebook)
    text = " ".join(help_notebook(notebook).split())
    assert (
        "ENVIRONMENT: str (default None) Target environment; one of: dev, staging, prod; required "
        "APP_NAME: str (default 'myapp') Application name; optional "
        "SKIP_TESTS: bool (default False) Skip test execution; optional "
        "HEALTHY: bool (default True) Whether the health check passes (for drills); optional "
        "variables: "  # the control parameters come after the runbook's variables
    ) in text
    for control in ("approvals:", "gate_policy:", "actor:", "run_id:", "headless:"):
        assert control in text.split("variables:")[1]

    book = write_runbook(
        tmp_path,
        "odd",
        "Odd names",
        '[step]\ntype = "Command"\ncommand_name = "echo {{ TOKEN }} {{ input }} {{ LIMIT }}"\n',
        variables='TOKEN = { secret = true }\ninput = { default = "eu" }\n'
        'LIMIT = { type = "int", default = 5, min = 1, max = 10, description = "at most a=b" }',
    )
    odd = tmp_path / "odd.ipynb"
    write_notebook(compile_runbook(load_runbook(book)), odd)
    text = help_notebook(odd)
    assert "TOKEN:" not in text  # a secret is never a parameter
    assert "input:" not in text  # a builtin's name: through `variables` only, the cell says so
    assert "through `variables` only" in nbformat.read(odd, as_version=4).cells[1].source
    assert "LIMIT: int (default 5)" in text and "min 1; max 10; optional" in text


def test_plain_papermill_sets_runbook_variables_by_name(tmp_path):
    notebook = tmp_path / "deploy.ipynb"
    write_notebook(compile_runbook(load_runbook(DEPLOY)), notebook)
    db = tmp_path / "runs.db"
    result = subprocess.run(
        [
            *PAPERMILL, str(notebook), str(tmp_path / "out.ipynb"),
            "-p", "ENVIRONMENT", "staging", "-p", "HEALTHY", "False",
            "-p", "variables", '{"APP_NAME": "shop"}',
            "-p", "gate_policy", "approve-all", "-p", "state_path", str(db),
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = db_rows(db, "SELECT * FROM runs")
    assert run["status"] == "OK" and run["title"] == "shop deployment pipeline"
    states = dict(db_rows(db, "SELECT node_id, state FROM node_states"))
    assert states["health_check"] == "SKIPPED" and states["rollback"] == "OK"  # HEALTHY False took effect
    assert json.loads(run["variables"]) == {
        "APP_NAME": "shop", "ENVIRONMENT": "staging", "HEALTHY": False, "SKIP_TESTS": False
    }  # fmt: skip
