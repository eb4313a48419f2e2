"""The headless notebook face end to end: `playbook-nb run --headless`, `run NB.ipynb`, plain papermill.

Each test runs the real CLI (or the papermill CLI) in a subprocess, then checks both halves of the run record:
the rows in the SQLite index and the executed notebook filed in the run's artifact directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import DEPLOY, FIXTURES, HEALTHY_STATES, db_rows, run_cli, write_runbook

pytestmark = pytest.mark.slow

DISK = FIXTURES / "incident_disk_full.playbook.toml"
SECRET = FIXTURES / "secret_token.playbook.toml"


# ------------------------------------------------------------------------------------------- helpers
def the_run(db: Path) -> sqlite3.Row:
    (run,) = db_rows(db, "SELECT * FROM runs ORDER BY id DESC LIMIT 1")
    return run


def node_states(db: Path, run_id: int) -> dict[str, str]:
    return dict(db_rows(db, "SELECT node_id, state FROM node_states WHERE run_id = ?", (run_id,)))


def attempt_counts(db: Path, run_id: int) -> dict[str, int]:
    return dict(db_rows(db, "SELECT node_id, attempts FROM node_states WHERE run_id = ?", (run_id,)))


def executed_notebook(db: Path, run: sqlite3.Row) -> nbformat.NotebookNode:
    """The executed notebook the index points at; it must live in the run's artifact directory."""
    path = Path(run["notebook_path"])
    artifact_dir = db.parent / "artifacts" / db.stem / str(run["id"])
    assert path.parent.resolve() == artifact_dir.resolve(), path
    assert path.exists()
    return nbformat.read(path, as_version=4)


def cell_text(cell) -> str:
    """Everything a reader sees under a cell: streams, plain/HTML displays and errors."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("display_data", "execute_result"):
            data = output.get("data", {})
            parts.append(str(data.get("text/plain", "")) + str(data.get("text/html", "")))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


def node_cells(nb) -> dict[str, str]:
    return {
        cell.metadata["playbook_nb"]["node"]: cell_text(cell)
        for cell in nb.cells
        if cell.cell_type == "code" and cell.metadata.get("playbook_nb", {}).get("role") == "node"
    }


def role_cell(nb, role: str):
    (cell,) = [c for c in nb.cells if c.metadata.get("playbook_nb", {}).get("role") == role]
    return cell


def assert_every_cell_ran(nb) -> None:
    """papermill went through the whole notebook: a failing node never stops it half way."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, cell.source[:60]
        if cell.metadata.get("playbook_nb", {}).get("role") != "summary":
            assert not [o for o in cell.outputs if o["output_type"] == "error"], cell.source[:60]


def headless(*args: str, db: Path, env=None, cwd=None):
    return run_cli("run", *args, "--headless", "--state-path", str(db), env=env, cwd=cwd, timeout=180)


# ------------------------------------------------------------------------------- deploy pipeline
def test_deploy_headless_healthy_with_approve_flag(state_db):
    result = headless(str(DEPLOY), "--var", "ENVIRONMENT=staging", "--approve", "approve_deploy",
                      "--actor", "ci", db=state_db)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    run = the_run(state_db)
    assert (run["status"], run["trigger"], run["mode"], run["actor"]) == ("OK", "papermill", "headless", "ci")
    assert node_states(state_db, run["id"]) == HEALTHY_STATES
    (decision,) = db_rows(state_db, "SELECT * FROM decisions")
    assert (decision["node_id"], decision["decision"], decision["actor"]) == (
        "approve_deploy",
        "approve",
        "ci",
    )
    assert f"notebook: {run['notebook_path']}" in result.stdout

    nb = executed_notebook(state_db, run)
    assert_every_cell_ran(nb)
    cells = node_cells(nb)
    assert list(cells) == [
        "build_app", "run_tests", "security_scan", "approve_deploy", "deploy_application",
        "health_check", "rollback", "notify_success", "notify_failure",
    ]  # fmt: skip
    assert "building myapp" in cells["build_app"] and "build_app: OK" in cells["build_app"]
    assert "deploying myapp to staging" in cells["deploy_application"]
    assert "deploying" not in cells["build_app"]  # each node's output under its own cell
    assert "SKIPPED" in cells["security_scan"] and "condition false" in cells["security_scan"]
    assert "approved by ci" in cells["approve_deploy"]
    assert "result: 'myapp deployed to staging'" in cells["notify_success"]
    assert "SKIPPED" in cells["rollback"] and "health_check:failure" in cells["rollback"]
    summary = cell_text(role_cell(nb, "summary"))
    assert f"Run {run['id']} (#1): OK" in summary
    setup = role_cell(nb, "setup")
    announced = [
        o["data"] for o in setup.outputs if "application/vnd.playbook-nb.run+json" in o.get("data", {})
    ]
    assert announced[0]["application/vnd.playbook-nb.run+json"]["run_id"] == run["id"]


def test_deploy_headless_unhealthy_rolls_back_with_papermill_style_approvals(state_db):
    result = headless(
        str(DEPLOY), "-p", "approvals", '{"approve_deploy": "approve"}',
        "-p", "variables", '{"ENVIRONMENT": "staging", "HEALTHY": false}', db=state_db,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    run = the_run(state_db)
    states = node_states(state_db, run["id"])
    assert states["health_check"] == "SKIPPED"  # not critical: skipped by policy, the run goes on
    assert states["rollback"] == "OK"
    assert states["notify_failure"] == "OK"
    assert states["notify_success"] == "SKIPPED"
    (attempt,) = db_rows(state_db, "SELECT * FROM attempts WHERE node_id = 'health_check'")
    assert attempt["status"] == "NOK" and attempt["exit_code"] == 1 and "unhealthy" in attempt["stderr"]
    assert json.loads(run["variables"])["HEALTHY"] is False

    nb = executed_notebook(state_db, run)
    assert_every_cell_ran(nb)
    cells = node_cells(nb)
    assert "unhealthy" in cells["health_check"] and "error: exit code 1" in cells["health_check"]
    assert "skipped by policy" in cells["health_check"]
    assert "rolling back staging" in cells["rollback"]
    assert "failed and was rolled back" in cells["notify_failure"]
    assert "health_check:success" in cells["notify_success"]


def test_deploy_headless_approval_as_yaml_parameters(state_db):
    result = headless(
        str(DEPLOY),
        "-y",
        "{approvals: {approve_deploy: approve}, variables: {ENVIRONMENT: dev}}",
        db=state_db,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run = the_run(state_db)
    assert run["status"] == "OK"
    assert json.loads(run["variables"])["ENVIRONMENT"] == "dev"
    assert node_states(state_db, run["id"])["deploy_application"] == "OK"


def test_deploy_headless_without_approval_aborts_then_resume_finishes(state_db):
    result = headless(str(DEPLOY), "--var", "ENVIRONMENT=staging", db=state_db)
    assert result.returncode == 3, result.stdout + result.stderr
    run = the_run(state_db)
    assert run["status"] == "ABORTED" and "approve_deploy" in run["status_reason"]
    states = node_states(state_db, run["id"])
    assert states["approve_deploy"] == "WAITING" and states["deploy_application"] == "PENDING"

    nb = executed_notebook(state_db, run)
    for cell in nb.cells:  # every cell ran, the summary included
        if cell.cell_type == "code":
            assert cell.execution_count is not None
    cells = node_cells(nb)
    assert "building myapp" in cells["build_app"]
    for node in ("deploy_application", "health_check", "notify_success"):
        assert "is ABORTED" in cells[node] and "resume it to continue" in cells[node], cells[node]
        assert "deploying" not in cells[node]
    summary = role_cell(nb, "summary")
    (error,) = [o for o in summary.outputs if o["output_type"] == "error"]
    assert error["ename"] == "RunNotOK"
    assert "ABORTED" in error["evalue"] and "approve_deploy" in error["evalue"]

    resumed = run_cli("resume", str(DEPLOY), str(run["id"]), "--approve", "approve_deploy",
                      "--state-path", str(state_db))  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    run = the_run(state_db)
    assert run["status"] == "OK"
    assert node_states(state_db, run["id"]) == HEALTHY_STATES
    counts = attempt_counts(state_db, run["id"])
    assert counts["build_app"] == 1 and counts["run_tests"] == 1  # kept, not run again
    assert len(db_rows(state_db, "SELECT * FROM runs")) == 1


def test_run_a_compiled_notebook(state_db, tmp_path):
    notebook = tmp_path / "deploy.ipynb"
    compiled = run_cli("compile", str(DEPLOY), "-o", str(notebook))
    assert compiled.returncode == 0, compiled.stderr
    result = run_cli("run", str(notebook), "--var", "ENVIRONMENT=prod", "--approve", "approve_deploy",
                     "--state-path", str(state_db), timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    run = the_run(state_db)
    states = node_states(state_db, run["id"])
    assert run["status"] == "OK" and run["trigger"] == "papermill"
    assert states["security_scan"] == "OK"  # prod: the scan runs
    nb = executed_notebook(state_db, run)
    assert "no high findings" in node_cells(nb)["security_scan"]
    assert nbformat.read(notebook, as_version=4).cells[5].get("outputs") == []  # the input stays clean


def test_plain_papermill_default_engine_records_the_run(state_db, tmp_path):
    notebook = tmp_path / "deploy.ipynb"
    assert run_cli("compile", str(DEPLOY), "-o", str(notebook)).returncode == 0
    out = tmp_path / "out.ipynb"
    papermill = Path(sys.executable).with_name("papermill")
    assert papermill.exists()
    result = subprocess.run(
        [str(papermill), str(notebook), str(out),
         "-p", "variables", '{"ENVIRONMENT": "staging"}',
         "-p", "gate_policy", "approve-all", "-p", "state_path", str(state_db)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = the_run(state_db)
    assert run["status"] == "OK" and run["trigger"] == "papermill"
    assert node_states(state_db, run["id"]) == HEALTHY_STATES
    (decision,) = db_rows(state_db, "SELECT * FROM decisions")
    assert decision["actor"].startswith("policy:approve-all (")
    assert len(db_rows(state_db, "SELECT * FROM attempts WHERE run_id = ?", (run["id"],))) == 5
    nb = nbformat.read(out, as_version=4)
    assert "deploying myapp to staging" in node_cells(nb)["deploy_application"]
    assert f"Run {run['id']} (#1): OK" in cell_text(role_cell(nb, "summary"))
    # issue 14 point 15: the default engine sets nothing, yet the record knows the executed notebook
    # (papermill's own output path, from the command line of the papermill process that started the kernel)
    assert run["notebook_path"] == str(out.resolve())
    copy = tmp_path / "exported.ipynb"
    exported = run_cli("export", str(run["id"]), "--notebook", str(copy), "--state-path", str(state_db))
    assert exported.returncode == 0, exported.stderr
    assert "deploying myapp to staging" in node_cells(nbformat.read(copy, as_version=4))["deploy_application"]


def test_plain_papermill_without_headless_fails_closed_whatever_its_environment(state_db, tmp_path):
    """Issue 19.5: nobody passes `-p headless True` and the environment looks like a Jupyter server's
    (JPY_SESSION_NAME inherited): papermill's execute requests do not allow stdin, so no human is assumed;
    the gate is refused, the run ends ABORTED and papermill exits non-zero."""
    notebook = tmp_path / "deploy.ipynb"
    assert run_cli("compile", str(DEPLOY), "-o", str(notebook)).returncode == 0
    out = tmp_path / "out.ipynb"
    papermill = Path(sys.executable).with_name("papermill")
    result = subprocess.run(
        [str(papermill), str(notebook), str(out),
         "-p", "variables", '{"ENVIRONMENT": "staging"}', "-p", "state_path", str(state_db)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
        env={**os.environ, "JPY_SESSION_NAME": str(notebook)},
    )  # fmt: skip
    assert result.returncode != 0, result.stderr[-3000:]
    assert "RunNotOK" in result.stderr and "approve_deploy" in result.stderr
    run = the_run(state_db)
    assert (run["status"], run["mode"]) == ("ABORTED", "headless")
    assert "approve_deploy" in run["status_reason"]
    states = node_states(state_db, run["id"])
    assert states["approve_deploy"] == "WAITING" and states["deploy_application"] == "PENDING"
    decided = db_rows(state_db, "SELECT decision FROM decisions WHERE node_id = 'approve_deploy'")
    assert not [row for row in decided if "approv" in row["decision"].lower()]


def test_cli_refuses_headless_false_for_a_notebook_it_runs(state_db, tmp_path):
    notebook = tmp_path / "deploy.ipynb"
    assert run_cli("compile", str(DEPLOY), "-o", str(notebook)).returncode == 0
    result = run_cli("run", str(notebook), "-p", "headless", "false", "--state-path", str(state_db))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "-p headless: a notebook the CLI runs is always headless" in result.stderr
    assert "Traceback" not in result.stderr
    assert not state_db.exists() or db_rows(state_db, "SELECT * FROM runs") == []


# ------------------------------------------------------------------------------ other runbooks
def test_incident_disk_full_headless_python_node_runs_in_the_kernel(state_db, tmp_path):
    workdir = tmp_path / "drill"
    result = headless(str(DISK), "--var", f"WORKDIR={workdir}", "--approve", "approve_cleanup", db=state_db)
    assert result.returncode == 0, result.stdout + result.stderr
    run = the_run(state_db)
    assert run["status"] == "OK"
    assert set(node_states(state_db, run["id"]).values()) == {"OK"}
    assert sorted(p.name for p in workdir.iterdir()) == ["app.1.log"]
    (analysis,) = db_rows(state_db, "SELECT * FROM attempts WHERE node_id = 'analyse'")
    assert analysis["status"] == "OK"
    nb = executed_notebook(state_db, run)
    cells = node_cells(nb)
    assert "total bytes: 1200000" in cells["analyse"]
    analyse_cell = next(
        c
        for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("playbook_nb", {}).get("node") == "analyse"
    )
    assert "needs_cleanup = total >" in analyse_cell.source  # the Python node's cell holds its own code
    assert "app.1.log" in cells["inspect_usage"]
    assert "Disk cleanup in" in cells["announce"]


def test_secret_never_reaches_the_notebook_or_the_index(state_db, tmp_path):
    token = "tok-9f8e7d6c5b4a-do-not-leak"
    output = tmp_path / "copy.ipynb"
    result = headless(str(SECRET), "--var", f"API_TOKEN={token}", "-o", str(output), db=state_db)
    assert result.returncode == 0, result.stdout + result.stderr
    run = the_run(state_db)
    assert run["status"] == "OK"
    (call,) = db_rows(state_db, "SELECT * FROM attempts WHERE node_id = 'call_api'")
    assert "calling status API for billing with token" in call["stdout"]  # the node did run
    notebook = Path(run["notebook_path"])
    cells = node_cells(nbformat.read(notebook, as_version=4))
    assert "calling status API for billing" in cells["call_api"]
    secret = token.encode()
    leaks = [
        str(path)
        for path in [notebook, output, *state_db.parent.rglob("*")]
        if path.is_file() and secret in path.read_bytes()
    ]
    assert leaks == []
    assert token not in result.stdout + result.stderr


def test_critical_failure_headless_runs_the_failure_branch_and_the_summary_says_why(state_db, tmp_path):
    book = write_runbook(
        tmp_path,
        "crit",
        "critical headless",
        """
[migrate]
type = "Command"
command_name = "echo schema locked >&2; exit 3"
critical = true

[serve]
type = "Command"
command_name = "echo serving"
depends_on = ["migrate"]

[restore]
type = "Command"
command_name = "echo restoring"
depends_on = ["migrate:failure"]
""",
    )
    result = headless(str(book), db=state_db)
    assert result.returncode == 1, result.stdout + result.stderr
    run = the_run(state_db)
    assert run["status"] == "NOK"
    assert node_states(state_db, run["id"]) == {"migrate": "NOK", "serve": "SKIPPED", "restore": "OK"}
    nb = executed_notebook(state_db, run)
    assert_every_cell_ran(nb)
    cells = node_cells(nb)
    assert "schema locked" in cells["migrate"] and "error: exit code 3" in cells["migrate"]
    assert "SKIPPED" in cells["serve"] and "critical node migrate" in cells["serve"]
    assert "restoring" in cells["restore"]
    (error,) = [o for o in role_cell(nb, "summary").outputs if o["output_type"] == "error"]
    assert "NOK" in error["evalue"] and "migrate" in error["evalue"]


def test_killed_kernel_leaves_a_partial_notebook_and_the_run_resumes(state_db, tmp_path):
    marker = tmp_path / "killed-once"
    book = write_runbook(
        tmp_path,
        "killer",
        "kernel killer",
        """
[before]
type = "Command"
command_name = "echo before"

[boom]
type = "Python"
code = '''
import os, pathlib, signal
marker = pathlib.Path(MARKER)
if not marker.exists():
    marker.touch()
    print("killing my own kernel", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
print("second time lucky")
'''

[after]
type = "Command"
command_name = "echo after"
""",
        variables=f'MARKER = {{ default = "{marker}" }}',
    )
    result = headless(str(book), db=state_db)
    assert result.returncode == 3, result.stdout + result.stderr
    assert marker.exists()
    run = the_run(state_db)
    assert run["status"] == "ABORTED"
    assert "kernel" in run["status_reason"].lower()
    states = node_states(state_db, run["id"])
    assert states["before"] == "OK" and states["after"] == "PENDING"
    (cut,) = db_rows(state_db, "SELECT * FROM attempts WHERE node_id = 'boom'")
    assert cut["status"] == "INTERRUPTED"
    nb = executed_notebook(state_db, run)  # the partial notebook, filed with the run
    cells = node_cells(nb)
    assert "before" in cells["before"]
    assert "after" not in cells["after"]
    # never reached by the kernel, but filled in from the index when filed: the notebook agrees with it
    assert "Run 1 (#1): ABORTED (kernel died" in cell_text(role_cell(nb, "summary"))

    resumed = run_cli("resume", str(book), str(run["id"]), "--state-path", str(state_db))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "second time lucky" in resumed.stdout
    run = the_run(state_db)
    assert run["status"] == "OK"
    assert attempt_counts(state_db, run["id"]) == {"before": 1, "boom": 2, "after": 1}


def test_headless_bad_parameters_are_one_line_and_start_no_run(state_db):
    for args, message in [
        (["-p", "approvals"], "-p approvals: expected -p NAME VALUE"),
        (["-p", "approvals", "{unclosed"], "-p approvals"),
        (["--var", "ENVIRONMENT=moon"], "'moon' is not one of dev, staging, prod"),
        ([], "missing required variable: ENVIRONMENT"),
    ]:
        result = headless(str(DEPLOY), *args, db=state_db, env={**os.environ})
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip() and "IPKernelApp" not in line]
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
    assert not state_db.exists() or db_rows(state_db, "SELECT COUNT(*) AS n FROM runs")[0]["n"] == 0
