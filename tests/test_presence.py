"""Whether a human is at the notebook (issue 19.5), when the `headless` parameter does not say: decided from
the execute_request of the setup cell (`allow_stdin`: JupyterLab, Notebook, VS Code send true, nbclient and
papermill false), never from environment variables such as JPY_SESSION_NAME. A real kernel, two requests."""

from __future__ import annotations

import os
import sqlite3

import jupyter_client
import pytest
from test_two_kernels import RUNBOOK, execute

PROBE = "from playbook_nb.kernel_ext.notebook_run import has_front_end; print(has_front_end())"


def run(client, code: str, *, allow_stdin: bool) -> str:
    return execute(client, code, allow_stdin=allow_stdin).strip()


@pytest.fixture
def kernel(request):
    """A kernel whose environment says "Jupyter server" (JPY_SESSION_NAME), or not."""
    env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
    if request.param:
        env["JPY_SESSION_NAME"] = "/somewhere/runbook.ipynb"
    manager, client = jupyter_client.manager.start_new_kernel(kernel_name="python3", env=env)
    try:
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.mark.parametrize(
    "kernel", [True, False], ids=["jpy-session-name", "no-jpy-session-name"], indirect=True
)
def test_presence_follows_allow_stdin_not_the_environment(kernel, tmp_path):
    assert run(kernel, PROBE, allow_stdin=False) == "False"  # nbclient / papermill
    assert run(kernel, PROBE, allow_stdin=True) == "True"  # JupyterLab, Notebook, VS Code
    db = tmp_path / "runs.db"
    opened = (
        "from playbook_nb.kernel_ext import open_run; r = open_run({!r}, state_path={!r}); print(r.headless)"
    )
    assert run(kernel, opened.format(RUNBOOK, str(db)), allow_stdin=False) == "True"
    assert run(kernel, opened.format(RUNBOOK, str(db)), allow_stdin=True).splitlines()[-1] == "False"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT mode FROM runs ORDER BY id").fetchall() == [
            ("headless",),
            ("interactive",),
        ]
