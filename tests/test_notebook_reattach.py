"""Reopening a notebook with a new kernel: the setup cell re-attaches to the notebook's unfinished run instead of
starting over, the finished nodes stay finished, and the graph shows the recorded states."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("ipycytoscape")

import playbook_nb.kernel_ext.notebook_run as notebook_run

from playbook_nb.domain.engine import Decision

RUNBOOK = """\
[runbook]
title = "reattach drill"

[look]
type = "Command"
command_name = "echo looking"

[gate]
type = "Manual"
prompt_after = "Act?"
critical = true

[act]
type = "Command"
command_name = "echo acting"
"""


def open_interactive(db):
    run = notebook_run.open_run(RUNBOOK, state_path=str(db), headless=False, actor="dana")
    run.show()  # the setup cell: builds the widget from the recorded states
    return run


def test_a_new_kernel_reattaches_to_the_unfinished_run_and_restores_the_graph(tmp_path, capsys):
    db = tmp_path / "runs.db"
    first = open_interactive(db)
    first.cell("look")
    first.cell("gate")  # the gate waits as state: nothing blocks
    first.cell("act")
    assert "waits for gate 'gate'" in capsys.readouterr().out
    run_id = first.session.run_id

    # The kernel is restarted: a brand-new NotebookRun from the same notebook text.
    second = open_interactive(db)
    assert second.session.run_id == run_id
    assert second.session.states() == {"look": "OK", "gate": "WAITING", "act": "PENDING"}
    assert {nid: el.data["state"] for nid, el in second.widget.nodes.items()}["look"] == "OK"

    second.session.decide("gate", Decision.APPROVE, "dana", "after the restart")
    second.cell("act")
    second.summary()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        assert conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone() == ("OK",)
        look_attempts = conn.execute("SELECT count(*) FROM attempts WHERE node_id = 'look'").fetchone()
        assert look_attempts == (1,)  # not run again after the restart
        assert conn.execute("SELECT actor, comment FROM decisions").fetchall() == [
            ("dana", "after the restart")
        ]
    finally:
        conn.close()


def test_a_finished_run_is_not_reattached_a_new_run_starts(tmp_path):
    db = tmp_path / "runs.db"
    first = open_interactive(db)
    for node_id in ("look", "gate"):
        first.cell(node_id)
    first.session.decide("gate", Decision.APPROVE, "dana")
    first.cell("act")
    first.summary()
    second = open_interactive(db)
    assert second.session.run_id != first.session.run_id
    assert set(second.session.states().values()) == {"PENDING"}
