"""`timeout` applies to Python and Function nodes too, in every face (issue 13 point 4): the code is stopped,
the attempt fails with "... timed out after N seconds", and nothing of it runs on in the background."""

from __future__ import annotations

import time

import pytest
from conftest import db_rows, run_cli, write_runbook

BODY = """
[slow_python]
type = "Python"
code = "import time\\ntime.sleep(30)"
timeout = 1

[slow_function]
type = "Function"
plugin = "python"
function = "sleep"
function_params = { seconds = "30" }
timeout = 1
depends_on = []

[after]
type = "Command"
command_name = "echo after"
depends_on = ["slow_python", "slow_function"]
"""


@pytest.mark.slow
@pytest.mark.parametrize("headless", [False, True], ids=["terminal", "headless"])
def test_python_and_function_timeouts_stop_the_code(tmp_path, headless):
    runbook = write_runbook(tmp_path, "timeouts", "timeouts", BODY)
    db = tmp_path / "runs.db"
    started = time.monotonic()
    done = run_cli("run", str(runbook), "--state-path", str(db), *(["--headless"] if headless else []))
    elapsed = time.monotonic() - started
    assert elapsed < 28, f"a 30 s sleep was not cut short ({elapsed:.0f}s)"
    errors = dict(db_rows(db, "SELECT node_id, error FROM attempts WHERE status = 'NOK'"))
    assert errors["slow_python"] == "Python node timed out after 1 seconds", (errors, done.stdout[-1500:])
    assert errors["slow_function"] == "Function timed out after 1 seconds", errors
    # headless, non-critical failures are skipped by policy and the run goes on: the chain ends OK
    states = dict(db_rows(db, "SELECT node_id, state FROM node_states"))
    assert states["slow_python"] == "SKIPPED" and states["slow_function"] == "SKIPPED", states
