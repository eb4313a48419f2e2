"""Reopening a notebook with a new kernel: the setup cell re-attaches to the notebook's unfinished run instead of
starting over, the finished nodes stay finished, and the graph shows the recorded states."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

pytest.importorskip("ipycytoscape")

import playbook_nb.kernel_ext.notebook_run as notebook_run

from playbook_nb.domain.engine import Decision
from playbook_nb.domain.errors import RunOwned, StaleWrite

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


def kernel_gone(db, run_id):
    """The first kernel died (a restart): its recorded owner is a process that no longer exists. (In these
    tests both "kernels" live in the test process.)"""
    dead = subprocess.Popen(["true"])
    dead.wait()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET owner_pid = ?, owner_pid_start = NULL WHERE id = ?", (dead.pid, run_id))
    conn.close()


def test_a_new_kernel_reattaches_to_the_unfinished_run_and_restores_the_graph(tmp_path, capsys):
    db = tmp_path / "runs.db"
    first = open_interactive(db)
    first.cell("look")
    first.cell("gate")  # the gate waits as state: nothing blocks
    first.cell("act")
    assert "waits for gate 'gate'" in capsys.readouterr().out
    run_id = first.session.run_id

    # The kernel is restarted: a brand-new NotebookRun from the same notebook text.
    first.session.lease.stop()
    kernel_gone(db, run_id)
    second = open_interactive(db)
    assert not second.session.watch_only
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


def test_a_second_live_kernel_gets_a_watch_only_view_and_a_stale_reject_changes_nothing(tmp_path, capsys):
    """Issue 13 points 1 and 2: kernel B opens the run kernel A drives: watch-only (states, who drives it,
    no buttons, actions refused); after A finishes OK, a Reject from B's stale view is refused and the run
    stays OK with its nodes' states."""
    db = tmp_path / "runs.db"
    first = open_interactive(db)
    first.cell("look")
    first.cell("gate")
    run_id = first.session.run_id

    second = notebook_run.open_run(RUNBOOK, state_path=str(db), headless=False, actor="erin", run_id=run_id)
    second.show()
    assert second.session.watch_only
    assert second.session.states() == {"look": "OK", "gate": "WAITING", "act": "PENDING"}
    banner = second.widget.watch_banner.value
    assert "Watch-only" in banner and "driven by dana" in banner
    second.widget.select("gate")
    assert second.widget.enabled_buttons() == set()
    assert all(b.layout.display == "none" for b in second.widget.buttons.values())
    with pytest.raises(RunOwned, match=r"driven by dana .*watch-only"):
        second.session.decide("gate", Decision.APPROVE, "erin")
    second.cell("act")  # a node cell in the watching kernel: one line, nothing runs
    assert "watch-only" in capsys.readouterr().out

    first.session.decide("gate", Decision.APPROVE, "dana")
    first.cell("act")
    first.summary()
    assert second.widget.watch_tick()  # the watching cockpit follows the record
    assert {nid: el.data["state"] for nid, el in second.widget.nodes.items()} == {
        "look": "OK", "gate": "OK", "act": "OK"
    }  # fmt: skip

    with pytest.raises(
        StaleWrite, match=rf"^run {run_id} is OK \(finished\); the decision on 'gate' is refused"
    ):
        second.session.decide("gate", Decision.REJECT, "erin")
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("OK",)]
        assert conn.execute("SELECT node_id, state FROM node_states ORDER BY position").fetchall() == [
            ("look", "OK"), ("gate", "OK"), ("act", "OK")
        ]  # fmt: skip
        assert conn.execute("SELECT decision, actor FROM decisions").fetchall() == [("approve", "dana")]
    finally:
        conn.close()
