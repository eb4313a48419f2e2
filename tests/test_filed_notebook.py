"""The executed notebook is the run's immutable record (issue 13): every face files a snapshot in the run's
artifacts that agrees with the index, `export --notebook` returns that snapshot, and running a filed notebook
again never starts a run (its injected approvals apply to the original run only)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nbformat
import pytest
from conftest import db_rows, run_cli, write_runbook
from nbclient import NotebookClient

pytest.importorskip("ipycytoscape")

import playbook_nb.kernel_ext.notebook_run as notebook_run
from playbook_nb.domain.engine import Decision

BODY = """
[look]
type = "Command"
command_name = "echo looking at {{ TARGET }}"

[gate]
type = "Manual"
prompt_after = "Act?"
critical = true

[act]
type = "Command"
command_name = "echo acting on {{ TARGET }}"
"""


def cells_by_role(nb) -> dict[str, list]:
    roles: dict[str, list] = {}
    for cell in nb.cells:
        role = cell.get("metadata", {}).get("playbook_nb", {}).get("role")
        roles.setdefault(role, []).append(cell)
    return roles


def text_of(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        for mime in ("text/html", "text/plain"):
            if mime in output.get("data", {}):
                parts.append(output["data"][mime])
    return "".join(parts)


def node_text(nb, node_id: str) -> str:
    (cell,) = [c for c in cells_by_role(nb)["node"] if c.metadata["playbook_nb"]["node"] == node_id]
    return text_of(cell)


def test_a_headless_run_resumed_from_the_cli_files_a_notebook_that_agrees_with_the_index_and_stays_a_record(
    tmp_path,
):
    runbook = write_runbook(
        tmp_path, "drill", "filed drill", BODY, variables='TARGET = { default = "staging" }'
    )
    db = tmp_path / "runs.db"
    first = run_cli("run", str(runbook), "--headless", "--state-path", str(db))
    assert first.returncode == 3, first.stderr  # the gate fails closed: ABORTED
    (row,) = db_rows(db, "SELECT notebook_path, status FROM runs WHERE id = 1")
    filed = Path(row["notebook_path"])
    assert filed.name == "notebook.ipynb" and "artifacts" in str(filed)
    nb = nbformat.read(filed, as_version=4)
    assert "Run 1 (#1): ABORTED" in text_of(cells_by_role(nb)["summary"][0])
    assert nb.metadata["playbook_nb"]["record"]["status"] == "ABORTED"

    resumed = run_cli("resume", str(runbook), "1", "--approve", "gate", "--state-path", str(db))
    assert resumed.returncode == 0, resumed.stderr
    assert db_rows(db, "SELECT status FROM runs WHERE id = 1")[0]["status"] == "OK"
    nb = nbformat.read(filed, as_version=4)  # the same filed notebook, brought to the final state
    summary = text_of(cells_by_role(nb)["summary"][0])
    assert "Run 1 (#1): OK" in summary and "ABORTED" not in summary
    assert nb.metadata["playbook_nb"]["record"]["status"] == "OK"
    assert "acting on staging" in node_text(nb, "act") and "✔ act: OK (attempt 1" in node_text(nb, "act")
    assert "✔ gate: OK (approved by" in node_text(nb, "gate")
    # the graph is an image JupyterLab shows untrusted (PNG), with the SVG for a trusted notebook
    dag = [o for o in cells_by_role(nb)["summary"][0].outputs if "image/png" in o.get("data", {})]
    assert dag and base64.b64decode(dag[0]["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "image/svg+xml" in dag[0]["data"]
    assert not any(
        "<svg" in o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", [])
    )

    # Running the filed notebook again never starts a run, whatever its parameters say.
    again = run_cli("run", str(filed), "--approve", "gate", "--state-path", str(db))
    assert again.returncode == 2
    assert "is the record of run 1 (an executed notebook): it never starts a run" in again.stderr
    # Run All (nbclient runs every cell, as JupyterLab or nbconvert would), approvals in its parameters cell:
    # no run is added, the setup cell says it is a record, each node cell shows the recorded outcome.
    (parameters,) = cells_by_role(nb)["parameters"]
    parameters.source += '\napprovals = {"gate": "approve"}\ngate_policy = "approve-all"\n'
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert db_rows(db, "SELECT count(*) AS n FROM runs")[0]["n"] == 1
    assert db_rows(db, "SELECT count(*) AS n FROM attempts")[0]["n"] == 2  # look and act, once each
    setup = text_of(cells_by_role(nb)["setup"][0])
    assert "This notebook is the record of run 1: running it shows that run and starts nothing" in setup
    assert "✔ act: OK (attempt 1" in node_text(nb, "act") and "(recorded)" in node_text(nb, "act")
    assert "Run 1 (#1): OK" in text_of(cells_by_role(nb)["summary"][0])


def open_interactive(db, **params):
    run = notebook_run.open_run(RUNBOOK_TEXT, state_path=str(db), headless=False, actor="dana", **params)
    run.show()
    return run


RUNBOOK_TEXT = (
    '[runbook]\ntitle = "interactive filing"\n\n[variables]\nTARGET = { default = "staging" }\n' + BODY
)


def test_an_interactive_run_files_its_own_snapshot_when_it_ends_or_aborts(tmp_path):
    db = tmp_path / "runs.db"
    first = open_interactive(db)
    first.cell("look")
    first.cell("gate")
    assert db_rows(db, "SELECT notebook_path FROM runs WHERE id = 1")[0]["notebook_path"] is None  # not yet
    refused = run_cli("export", "1", "--notebook", str(tmp_path / "early.ipynb"), "--state-path", str(db))
    assert (
        refused.returncode == 2
        and "run 1 is RUNNING: its notebook is filed when it ends or aborts" in refused.stderr
    )
    first.session.abort("dana", "stopping here")  # Abort: the notebook is filed at once, ABORTED
    filed_1 = Path(db_rows(db, "SELECT notebook_path FROM runs WHERE id = 1")[0]["notebook_path"])
    assert "Run 1 (#1): ABORTED" in text_of(cells_by_role(nbformat.read(filed_1, as_version=4))["summary"][0])

    second = open_interactive(db)  # a new run of the same notebook, to the end
    second.cell("look")
    second.cell("gate")
    second.session.decide("gate", Decision.APPROVE, "dana")
    second.cell("act")
    second.summary()
    filed_2 = Path(db_rows(db, "SELECT notebook_path FROM runs WHERE id = 2")[0]["notebook_path"])
    assert filed_2 != filed_1 and filed_2.parent.name == "2"

    # export --notebook returns each run's own snapshot, never another run's file
    out_1, out_2 = tmp_path / "one.ipynb", tmp_path / "two.ipynb"
    assert run_cli("export", "1", "--notebook", str(out_1), "--state-path", str(db)).returncode == 0
    assert run_cli("export", "2", "--notebook", str(out_2), "--state-path", str(db)).returncode == 0
    one, two = nbformat.read(out_1, as_version=4), nbformat.read(out_2, as_version=4)
    assert one.metadata["playbook_nb"]["record"]["run_id"] == 1
    assert "Run 1 (#1): ABORTED" in text_of(cells_by_role(one)["summary"][0])
    assert "act: PENDING" in node_text(one, "act")
    assert "Run 2 (#2): OK" in text_of(cells_by_role(two)["summary"][0])
    assert "✔ act: OK (attempt 1" in node_text(two, "act")
    assert "open_record(2" in cells_by_role(two)["setup"][0].source
    assert json.loads(json.dumps(two.metadata["playbook_nb"]["record"]))["status"] == "OK"
