"""POST /playbook-nb/api/runs/{id}/resume (issue 17.3), through pytest-jupyter's real in-process server: an
ABORTED run gets a notebook that resumes it (compiled from the run's recorded runbook, `run_id = N` in its
parameters cell, no variable value written); a finished run, a run another live session drives and an
unknown run are refused in one line and nothing is written."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.store import Store
from playbook_nb.adapters.store.owner import Owner
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.validation import parse_runbook

GATED = """
[runbook]
title = "Resume me"

[variables]
TARGET = { default = "staging" }
TOKEN = { secret = true }

[look]
type = "Command"
command_name = "echo looking at {{ TARGET }}"

[gate]
type = "Manual"
prompt_after = "Act on {{ TARGET }}?"
depends_on = ["look"]

[act]
type = "Command"
command_name = "echo acting on {{ TARGET }}"
depends_on = ["gate"]
"""
SECRET = "tok-5e4d3c2b"


def headless_run(store: Store, values: dict[str, str]) -> int:
    """A real headless run: fail-closed at its gate, it ends ABORTED (resumable)."""
    session = RunSession.start(
        parse_runbook(GATED), values, store, RunOptions(headless=True, actor="alice"),
        namespace={}, executor=LocalExecutor(),
    )  # fmt: skip
    session.drive(lambda *args: None)
    session.close()
    return session.run_id


@pytest.fixture
def runs(tmp_path, monkeypatch):
    location = str(tmp_path / "index" / "runs.db")
    monkeypatch.setenv("PLAYBOOK_DB_PATH", location)
    monkeypatch.setenv("PLAYBOOK_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    with Store.open(location) as store:
        aborted = headless_run(store, {"TARGET": "web-3", "TOKEN": SECRET})
        done = headless_run(store, {})
        store.set_status_manually(done, "OK", force=True, actor="alice", reason="finished by hand")
        me = Owner.this_process("carol", kind="playbook-nb run")
        live = store.create_run(
            workflow="Resume me", title="Resume me", runbook_text=GATED, runbook_sha256="0" * 64,
            runbook_version=None, variables={}, params={}, trigger="terminal", actor="carol", host=me.host,
            mode="interactive", node_ids=["look", "gate", "act"], owner=me,
        ).id  # fmt: skip
        assert store.get_run(aborted).status == "ABORTED"
    return {"aborted": aborted, "done": done, "live": live}


async def post_resume(jp_fetch, run_id, directory: str = ""):
    return await jp_fetch(
        "playbook-nb", "api", "runs", str(run_id), "resume", method="POST",
        body=json.dumps({"directory": directory}),
    )  # fmt: skip


async def test_an_aborted_run_gets_a_notebook_that_resumes_it(jp_fetch, jp_root_dir, runs):
    (jp_root_dir / "ops").mkdir()
    response = await post_resume(jp_fetch, runs["aborted"], "ops")
    assert response.code == 201
    path = json.loads(response.body)["path"]
    assert path == f"ops/resume_run_{runs['aborted']}.ipynb"
    written = (jp_root_dir / path).read_text()
    nb = nbformat.reads(written, as_version=4)
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert f"\nrun_id = {runs['aborted']}  " in params.source
    assert "\nallow_changed_vars = False" in params.source and "\napprovals = {}" in params.source
    with Store.open(os.environ["PLAYBOOK_DB_PATH"]) as store:
        assert nb.metadata["playbook_nb"]["runbook_sha256"] == store.get_run(runs["aborted"]).runbook_sha256
        assert store.get_run(runs["aborted"]).status == "ABORTED"  # nothing resumes until the notebook runs
    assert SECRET not in written and "web-3" not in written  # the resume takes the recorded values

    again = await post_resume(jp_fetch, runs["aborted"], "ops")  # asked again: the same notebook, opened
    assert again.code == 200 and json.loads(again.body) == {"path": path, "created": False}


@pytest.mark.parametrize(
    ("which", "code", "message"),
    [
        ("done", 409, "is OK: only an ABORTED run can be resumed"),
        ("live", 409, "is RUNNING, driven by carol (playbook-nb run, pid "),
        ("unknown", 404, "no run"),
    ],
)
async def test_a_run_that_cannot_resume_is_refused_in_one_line(
    jp_fetch, jp_root_dir, runs, which, code, message
):
    run_id = runs.get(which, 9999)
    with pytest.raises(HTTPClientError) as err:
        await post_resume(jp_fetch, run_id)
    assert err.value.code == code
    text = json.loads(err.value.response.body)["message"]
    assert message in text and "\n" not in text
    assert not list(jp_root_dir.glob("resume_run_*.ipynb"))
