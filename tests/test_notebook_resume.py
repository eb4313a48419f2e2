"""Reopening a notebook with a new kernel never resumes a run by itself (issue 13): the setup cell starts a new
run and says which unfinished run it did not resume; naming that run (`run_id`) resumes it, with the finished
nodes kept and the graph showing the recorded states; naming it with other variable values is refused in one
line unless allowed, and then every approved gate is open again."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

pytest.importorskip("ipycytoscape")

import playbook_nb.kernel_ext.notebook_run as notebook_run
from playbook_nb.domain.engine import Decision
from playbook_nb.domain.errors import PlaybookError, RunOwned, StaleWrite

RUNBOOK = """\
[runbook]
title = "resume drill"

[variables]
TARGET = { default = "staging" }

[look]
type = "Command"
command_name = "echo looking at {{ TARGET }}"

[gate]
type = "Manual"
prompt_after = "Act on {{ TARGET }}?"
critical = true

[act]
type = "Command"
command_name = "echo acting on {{ TARGET }}"
"""


def open_interactive(db, **params):
    run = notebook_run.open_run(RUNBOOK, state_path=str(db), headless=False, actor="dana", **params)
    run.show()  # the setup cell: builds the widget from the recorded states
    return run


def kernel_gone(db, run_id):
    """The kernel that drove the run died (a restart): its recorded owner is a process that no longer exists.
    (In these tests every "kernel" lives in the test process.)"""
    dead = subprocess.Popen(["true"])
    dead.wait()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET owner_pid = ?, owner_pid_start = NULL WHERE id = ?", (dead.pid, run_id))
    conn.close()


def query(db, sql, params=()):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_a_new_kernel_starts_a_new_run_and_names_the_unfinished_one_resumed_only_when_named(tmp_path, capsys):
    db = tmp_path / "runs.db"
    first = open_interactive(db)
    first.cell("look")
    first.cell("gate")  # the gate waits as state: nothing blocks
    first.cell("act")
    assert "waits for gate 'gate'" in capsys.readouterr().out
    run_id = first.session.run_id

    # The kernel is restarted and the notebook run again: a new run, and a line naming the unfinished one.
    second = open_interactive(db)
    assert second.session.run_id != run_id
    assert set(second.session.states().values()) == {"PENDING"}
    out = capsys.readouterr().out
    assert (
        f"started a new run {second.session.run_id}; run {run_id} of this runbook is RUNNING, driven by "
        in out
    )
    assert f"set run_id = {run_id} in the parameters cell" in out
    assert query(db, "SELECT status FROM runs WHERE id = ?", (run_id,)) == [("RUNNING",)]  # untouched

    # Named explicitly: that run is resumed (its first kernel is gone: recovered first), its finished nodes
    # kept, the graph shows the recorded states.
    first.session.lease.stop()
    kernel_gone(db, run_id)
    fourth = open_interactive(db)  # a new run's note says the unfinished one is orphaned (issue 24 point 2)
    out = capsys.readouterr().out
    assert f"run {run_id} of this runbook is RUNNING, orphaned (owner gone since " in out
    fourth.session.lease.stop()
    third = open_interactive(db, run_id=run_id)
    assert third.session.run_id == run_id
    assert f"resumed run {run_id}" in capsys.readouterr().out
    assert third.session.states() == {"look": "OK", "gate": "WAITING", "act": "PENDING"}
    assert {nid: el.data["state"] for nid, el in third.widget.nodes.items()}["look"] == "OK"
    third.session.decide("gate", Decision.APPROVE, "dana", "after the restart")
    third.cell("act")
    third.summary()
    assert query(db, "SELECT status FROM runs WHERE id = ?", (run_id,)) == [("OK",)]
    assert query(db, "SELECT count(*) FROM attempts WHERE run_id = ? AND node_id = 'look'", (run_id,)) == [
        (1,)
    ]
    assert query(db, "SELECT actor, comment FROM decisions WHERE run_id = ?", (run_id,)) == [
        ("dana", "after the restart")
    ]


def test_resuming_with_a_changed_variable_is_refused_unless_allowed_then_the_old_approval_is_void(
    tmp_path, capsys
):
    db = tmp_path / "runs.db"
    first = open_interactive(db)
    first.cell("look")
    first.cell("gate")
    first.session.decide("gate", Decision.APPROVE, "dana", "staging is fine")
    first.session.abort("dana", "stop before acting")
    run_id = first.session.run_id
    events_before = query(db, "SELECT count(*) FROM events WHERE run_id = ?", (run_id,))

    # The parameters cell now says prod: naming the run is refused in one line, nothing changes.
    with pytest.raises(PlaybookError) as refused:
        open_interactive(db, run_id=run_id, variables={"TARGET": "prod"})
    message = str(refused.value)
    assert "\n" not in message
    assert f"run {run_id} was recorded with other variable values (TARGET='staging' -> 'prod')" in message
    assert "allow_changed_vars = True" in message
    assert query(db, "SELECT status FROM runs WHERE id = ?", (run_id,)) == [("ABORTED",)]
    assert query(db, "SELECT count(*) FROM events WHERE run_id = ?", (run_id,)) == events_before

    # Allowed explicitly: the change is an event, the gate approved for staging waits again.
    resumed = open_interactive(db, run_id=run_id, variables={"TARGET": "prod"}, allow_changed_vars=True)
    assert resumed.session.states() == {"look": "OK", "gate": "WAITING", "act": "PENDING"}
    resumed.cell("act")
    assert "waits for gate 'gate'" in capsys.readouterr().out
    assert query(db, "SELECT count(*) FROM attempts WHERE run_id = ? AND node_id = 'act'", (run_id,)) == [
        (0,)
    ]
    (payload,) = query(
        db, "SELECT payload FROM events WHERE run_id = ? AND kind = 'variables_changed'", (run_id,)
    )
    assert '"TARGET":{"from":"staging","to":"prod"}' in payload[0]
    assert '"gates_reopened":["gate"]' in payload[0]
    assert query(db, "SELECT variables FROM runs WHERE id = ?", (run_id,)) == [('{"TARGET":"prod"}',)]
    resumed.session.decide("gate", Decision.APPROVE, "dana", "prod now")
    resumed.cell("act")
    resumed.summary()
    ran = query(
        db,
        "SELECT node_id, payload FROM events WHERE run_id = ? AND kind = 'attempt_ran' ORDER BY seq",
        (run_id,),
    )
    assert ran == [
        ("look", '{"ran":{"command":"echo looking at staging"}}'),
        ("act", '{"ran":{"command":"echo acting on prod"}}'),
    ]


def test_a_finished_run_is_not_resumed_a_new_run_starts(tmp_path, capsys):
    db = tmp_path / "runs.db"
    first = open_interactive(db)
    for node_id in ("look", "gate"):
        first.cell(node_id)
    first.session.decide("gate", Decision.APPROVE, "dana")
    first.cell("act")
    first.summary()
    capsys.readouterr()
    second = open_interactive(db)
    assert second.session.run_id != first.session.run_id
    assert set(second.session.states().values()) == {"PENDING"}
    assert "note:" not in capsys.readouterr().out  # nothing unfinished to mention


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
