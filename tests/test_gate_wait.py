"""Waiting gates (issue 16.1) and `playbook-nb approve` from a second process (16.2).

A run with nobody at its gate and `--gate-wait` stays RUNNING with the node WAITING until someone decides from
another process (the real CLI, a real SQLite index or a real PostgreSQL server), or until the deadline: then
ABORTED, exit 3. The decision is recorded with who made it and where it came from.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import db_rows, run_cli, write_runbook

from playbook_nb.adapters.store import Store

GATED = """
[prepare]
type = "Command"
command_name = "echo prepared"

[gate]
type = "Manual"
prompt_after = "Ship it?"
depends_on = ["prepare"]

[ship]
type = "Command"
command_name = "echo shipped"
depends_on = ["gate"]
"""


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    env.pop("JUPYTERHUB_USER", None)
    return subprocess.Popen(
        [sys.executable, "-m", "playbook_nb", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_until_waiting(runner: subprocess.Popen, db: Path, timeout: float = 120) -> int:
    """The run id once its gate waits (an open gate wait in the index)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner.poll() is not None:
            raise AssertionError(runner.communicate())
        try:
            rows = db_rows(db, "SELECT run_id FROM gate_waits WHERE node_id = 'gate' AND status = 'waiting'")
        except Exception:  # the index is still being created
            rows = []
        if rows:
            return rows[0]["run_id"]
        time.sleep(0.2)
    raise AssertionError("the run never waited at its gate")


def test_a_headless_run_waits_at_its_gate_and_approve_from_a_second_process_lets_it_finish(tmp_path):
    book = write_runbook(tmp_path, "gated", "Gated deploy", GATED)
    db = tmp_path / "runs.db"
    runner = _start("run", str(book), "--headless", "--gate-wait", "5m", "--state-path", str(db))
    try:
        run_id = _wait_until_waiting(runner, db)
        # while it waits: RUNNING, the gate WAITING, the next node not started
        (run,) = db_rows(db, "SELECT status FROM runs WHERE id = ?", (run_id,))
        assert run["status"] == "RUNNING"
        states = {r["node_id"]: r["state"] for r in db_rows(db, "SELECT * FROM node_states")}
        assert states == {"prepare": "OK", "gate": "WAITING", "ship": "PENDING"}

        # every other case is refused with one line, and changes nothing
        wrong_node = run_cli("approve", str(run_id), "prepare", "--state-path", str(db))
        assert wrong_node.returncode == 2
        assert wrong_node.stderr.strip() == (
            f"error: 'prepare' of run {run_id} is a Command node, not a Manual gate"
        )
        no_run = run_cli("approve", "999", "gate", "--state-path", str(db))
        assert (no_run.returncode, no_run.stderr.count("\n")) == (2, 1)
        assert "no run 999" in no_run.stderr
        not_waiting = run_cli("approve", str(run_id), "ship", "--state-path", str(db))
        assert "'ship' of run" in not_waiting.stderr and not_waiting.returncode != 0

        approved = run_cli(
            "approve", str(run_id), "gate", "--comment", "looks good", "--state-path", str(db),
            env={"JUPYTERHUB_USER": ""},
        )  # fmt: skip
        assert approved.returncode == 0, approved.stderr
        me = getpass.getuser()
        assert f"gate 'gate' approved by {me}; the gate is OK" in approved.stdout

        out, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, out + err
    finally:
        if runner.poll() is None:
            runner.kill()
    (run,) = db_rows(db, "SELECT status FROM runs WHERE id = ?", (run_id,))
    assert run["status"] == "OK"
    (decision,) = db_rows(db, "SELECT * FROM decisions WHERE run_id = ?", (run_id,))
    assert (decision["decision"], decision["actor"], decision["source"], decision["comment"]) == (
        "approve",
        me,
        "cli",
        "looks good",
    )
    assert [r["status"] for r in db_rows(db, "SELECT status FROM gate_waits")] == ["applied"]
    kinds = [
        r["kind"] for r in db_rows(db, "SELECT kind FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
    ]
    assert kinds.index("gate_waiting") < kinds.index("decision")

    late = run_cli("approve", str(run_id), "gate", "--reject", "--state-path", str(db))
    assert late.returncode == 1
    assert late.stderr.strip() == f"error: run {run_id} is OK: it no longer waits for a decision"
    assert db_rows(db, "SELECT status FROM runs WHERE id = ?", (run_id,))[0]["status"] == "OK"


def test_the_terminal_face_without_a_tty_waits_too_a_reject_ends_the_run_nok(tmp_path):
    book = write_runbook(tmp_path, "gated", "Gated deploy", GATED)
    db = tmp_path / "runs.db"
    runner = _start("run", str(book), "--gate-wait", "5m", "--state-path", str(db))
    try:
        run_id = _wait_until_waiting(runner, db)
        rejected = run_cli("approve", str(run_id), "gate", "--reject", "--state-path", str(db))
        assert rejected.returncode == 0, rejected.stderr
        assert "rejected by" in rejected.stdout and "the gate is NOK" in rejected.stdout
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1, out + err
    states = {r["node_id"]: r["state"] for r in db_rows(db, "SELECT * FROM node_states")}
    assert states == {"prepare": "OK", "gate": "NOK", "ship": "SKIPPED"}


def test_a_wait_nobody_answers_ends_aborted_exit_3_and_a_late_approve_is_refused(tmp_path):
    book = write_runbook(tmp_path, "gated", "Gated deploy", GATED)
    db = tmp_path / "runs.db"
    result = run_cli("run", str(book), "--gate-wait", "1s", "--state-path", str(db))
    assert result.returncode == 3, result.stdout + result.stderr
    (run,) = db_rows(db, "SELECT * FROM runs")
    assert run["status"] == "ABORTED"
    assert run["status_reason"].startswith(
        "gate 'gate' waited 1s for approval: no decision before the deadline"
    )
    assert [r["status"] for r in db_rows(db, "SELECT status FROM gate_waits")] == ["expired"]
    late = run_cli("approve", str(run["id"]), "gate", "--state-path", str(db))
    assert late.returncode == 1 and f"run {run['id']} is ABORTED" in late.stderr


def test_without_gate_wait_the_run_fails_closed_at_once_and_approve_says_nobody_waits(tmp_path):
    book = write_runbook(tmp_path, "gated", "Gated deploy", GATED)
    db = tmp_path / "runs.db"
    result = run_cli("run", str(book), "--state-path", str(db))
    assert result.returncode == 3
    assert db_rows(db, "SELECT * FROM gate_waits") == []
    bad = run_cli("run", str(book), "--gate-wait", "soon", "--state-path", str(db))
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: --gate-wait: expected a duration")


def _store_with_waiting_gate(location: str) -> tuple[Store, int]:
    from conftest import new_run

    store = Store.open(location)
    run = new_run(store)
    store.set_node_state(run.id, "gate", "WAITING")
    return store, run.id


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_decision_is_compare_and_set_and_wakes_the_waiting_run(backend, tmp_path, request):
    location = str(tmp_path / "runs.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    waiter, run_id = _store_with_waiting_gate(location)
    decider = Store.open(location)
    try:
        assert decider.decide_gate_wait(run_id, "gate", "approve", actor="bob", source="cli") is None
        wait = waiter.open_gate_wait(run_id, "gate", time.time() + 60)
        seen = {}
        thread = threading.Thread(target=lambda: seen.update(row=waiter.wait_for_gate_decision(wait.id, 60)))
        thread.start()
        time.sleep(0.3)
        first = decider.decide_gate_wait(
            run_id, "gate", "approve", actor="bob", source="server", comment="ok"
        )
        second = decider.decide_gate_wait(run_id, "gate", "reject", actor="carol", source="cli")
        thread.join(timeout=30)
        assert first is not None and second is None  # two deciders racing: one wins
        assert (seen["row"].status, seen["row"].decision, seen["row"].actor) == ("decided", "approve", "bob")
        assert waiter.close_gate_wait(wait.id, "applied", expected="decided")
        assert not waiter.close_gate_wait(wait.id, "expired", expected="waiting")
        # a run that is no longer RUNNING takes no decision
        waiter.open_gate_wait(run_id, "gate", time.time() + 60)
        waiter.set_run_status(run_id, "OK")
        assert decider.decide_gate_wait(run_id, "gate", "approve", actor="bob", source="cli") is None
    finally:
        waiter.close()
        decider.close()


# ---- who may decide (16.3): approvers, groups from [groups], four eyes ---------------------------------
GUARDED = GATED.replace(
    'prompt_after = "Ship it?"',
    'prompt_after = "Ship it?"\napprovers = ["carol", "group:sre"]\nfour_eyes = true',
)


def test_approvers_and_four_eyes_decide_who_may_approve_from_anywhere(tmp_path):
    me = getpass.getuser()
    config = tmp_path / "team.toml"
    config.write_text(f'[groups]\nsre = ["alice", "{me}"]\n')
    book = write_runbook(tmp_path, "guarded", "Guarded deploy", GUARDED)
    db = tmp_path / "runs.db"
    env = {"PLAYBOOK_CONFIG": str(config)}

    # four eyes: the one who started the run cannot approve it, not even through its own parameters
    own = run_cli("run", str(book), "--approve", "gate", "--state-path", str(db), env=env)
    assert own.returncode == 3
    (first,) = db_rows(db, "SELECT * FROM runs")
    assert first["status_reason"].startswith(f"gate 'gate' needs four eyes: {me} started this run")

    runner = _start("run", str(book), "--gate-wait", "5m", "--state-path", str(db), env=env)
    try:
        run_id = _wait_until_waiting(runner, db)
        mine = run_cli(
            "approve", str(run_id), "gate", "--state-path", str(db), env={**env, "JUPYTERHUB_USER": ""}
        )
        assert mine.returncode == 1
        assert mine.stderr.strip() == (
            f"error: gate 'gate' needs four eyes: {me} started this run, so someone else must decide it"
        )
        outsider = run_cli(
            "approve", str(run_id), "gate", "--state-path", str(db), env={**env, "JUPYTERHUB_USER": "mallory"}
        )
        assert outsider.returncode == 1
        assert outsider.stderr.strip() == (
            "error: mallory may not decide gate 'gate' (approvers: carol, group:sre)"
        )
        assert (
            db_rows(db, "SELECT status FROM gate_waits WHERE run_id = ?", (run_id,))[0]["status"] == "waiting"
        )
        alice = run_cli(
            "approve", str(run_id), "gate", "--state-path", str(db), env={**env, "JUPYTERHUB_USER": "alice"}
        )
        assert alice.returncode == 0, alice.stderr
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, out + err
    (decision,) = db_rows(db, "SELECT * FROM decisions WHERE run_id = ?", (run_id,))
    assert (decision["actor"], decision["source"]) == ("alice", "cli")


def test_bad_approvers_and_groups_are_one_line_errors(tmp_path):
    bad = write_runbook(tmp_path, "bad", "Bad", GATED.replace('prompt_after = "Ship it?"', "approvers = [1]"))
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    assert "node 'gate', field 'approvers'" in result.stderr and result.stderr.count("\n") == 1
    config = tmp_path / "team.toml"
    config.write_text('[groups]\nsre = "alice"\n')
    book = write_runbook(tmp_path, "guarded", "Guarded", GUARDED)
    result = run_cli(
        "run", str(book), "--state-path", str(tmp_path / "r.db"), env={"PLAYBOOK_CONFIG": str(config)}
    )
    assert result.returncode == 2
    assert "groups.sre: expected a list of names" in result.stderr
