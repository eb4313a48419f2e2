"""Run ownership and compare-and-set (issue 13 points 1 and 2), orphans and one live attempt per node (issue
24 points 2 and 3), on both backends: a SQLite file and a real PostgreSQL server (tests/pg_server.py).

What a user sees: who drives a run, a refused second driver (one line), a take-over recorded as an event,
a stale decision refused with the run and its nodes unchanged, an orphaned run recovered by `resume` with its
leftover command killed, and two processes racing to start the same node: one wins, one is refused.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time

import pytest
from conftest import new_run

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.executors.tether import TOKEN_ENV
from playbook_nb.adapters.store import Store
from playbook_nb.adapters.store.owner import LEASE_ENV, Owner, process_start
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.engine import Decision, RunState
from playbook_nb.domain.errors import RunOwned, StaleWrite
from playbook_nb.domain.validation import parse_runbook

GATED = """\
[runbook]
title = "owned drill"

[look]
type = "Command"
command_name = "echo looking"

[gate]
type = "Manual"
prompt_after = "Ship it?"

[ship]
type = "Command"
command_name = "echo shipping"
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url, tmp_path):
    with Store.open(db_url, artifacts_root=tmp_path / "artifacts") as s:
        yield s


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def owner(actor: str, **changes) -> Owner:
    base = Owner.this_process(actor, kind="test")
    return Owner(**{**base.__dict__, **changes})


def kinds(store: Store, run_id: int) -> list[str]:
    return [e.kind for e in store.events(run_id)]


# ---- the store: owner, lease, take-over, compare-and-set ------------------------------------------------


def test_one_owner_drives_a_run_a_take_over_is_an_event_and_fences_the_old_owner(store):
    alice = owner("alice")
    run = store.create_run(**{**_run_fields(), "owner": alice})
    assert run.version == 1 and run.owner_actor == "alice" and run.owner_pid == os.getpid()
    status = store.owner_status(run.id)
    assert status.live and status.describe() == f"driven by alice (test, pid {os.getpid()} on {alice.host})"

    bob = owner("bob")
    with pytest.raises(RunOwned, match=rf"^run {run.id} is driven by alice \(test, pid {os.getpid()}"):
        store.claim_run(run.id, bob)
    assert store.get_run(run.id).owner_actor == "alice" and kinds(store, run.id) == ["run_started"]

    taken = store.claim_run(run.id, bob, take_over=True)
    assert (taken.owner_actor, taken.version) == ("bob", 2)
    (event,) = [e for e in store.events(run.id) if e.kind == "run_taken_over"]
    assert event.payload["actor"] == "bob" and event.payload["from"]["actor"] == "alice"
    assert store.verify_events(run.id) == []

    # alice's session is fenced off: each of its writes is refused, and changes nothing
    with pytest.raises(StaleWrite, match=rf"^run {run.id} is now driven by bob .*no longer drives it"):
        store.advance(run.id, token=alice.token, version=1)
    with pytest.raises(StaleWrite, match="no longer drives it"):
        store.start_attempt(run.id, "build", 1, token=alice.token)
    assert store.attempts(run.id) == [] and store.get_run(run.id).version == 2

    # bob's own write against an old version is refused too; at the current one it moves the version on
    with pytest.raises(StaleWrite, match=rf"^run {run.id} changed since this view was loaded"):
        store.advance(run.id, token=bob.token, version=1)
    assert store.advance(run.id, token=bob.token, version=2) == 3


def test_a_decision_on_a_finished_run_or_a_node_that_no_longer_waits_is_refused(store):
    run = store.create_run(**{**_run_fields(), "owner": owner("alice")})
    store.set_node_state(run.id, "gate", "WAITING")
    store.check_decision(run.id, "gate", version=1, states=("WAITING",))  # valid: nothing raised
    with pytest.raises(
        StaleWrite, match=r"'build' of run \d+ no longer waits for a decision \(it is PENDING\)"
    ):
        store.check_decision(run.id, "build", version=1, states=("WAITING",))
    with pytest.raises(StaleWrite, match="changed since this view was loaded"):
        store.check_decision(run.id, "gate", version=0, states=("WAITING",))
    store.set_run_status(run.id, "OK")
    with pytest.raises(
        StaleWrite, match=rf"^run {run.id} is OK \(finished\); the decision on 'gate' is refused"
    ):
        store.check_decision(run.id, "gate", version=1, states=("WAITING",))


def test_an_owner_is_gone_when_its_process_is_gone_here_or_its_lease_expired_elsewhere(store, monkeypatch):
    here = store.create_run(**{**_run_fields(), "owner": owner("alice", pid=dead_pid(), pid_start=None)})
    gone = store.owner_status(here.id)
    assert gone.orphaned and gone.describe().startswith("orphaned (owner gone since ")

    reused = store.create_run(**{**_run_fields(), "owner": owner("alice", pid_start=1)})  # our pid, not us
    assert store.owner_status(reused.id).orphaned

    monkeypatch.setenv(LEASE_ENV, "1")
    far = owner("carol", host="another-host", pid=1)
    elsewhere = store.create_run(**{**_run_fields(), "owner": far})
    assert store.owner_status(elsewhere.id).live  # another host: only the lease tells
    assert store.renew_lease(elsewhere.id, far.token) and not store.renew_lease(elsewhere.id, "someone-else")
    time.sleep(1.3)
    assert store.owner_status(elsewhere.id).orphaned
    store.set_run_status(elsewhere.id, "OK")
    assert store.owner_status(elsewhere.id).state == "none" and not store.renew_lease(elsewhere.id, far.token)


# ---- one live attempt per node, whoever asks -----------------------------------------------------------


def _start_attempt(location: str, run_id: int, attempt: int, start_at: float) -> str:
    with Store.open(location, artifacts_root=os.devnull + "-unused") as store:
        time.sleep(max(0.0, start_at - time.time()))
        try:
            store.start_attempt(run_id, "build", attempt)
        except StaleWrite as err:
            return f"refused: {err}"
    return "started"


def test_a_node_never_has_two_live_attempts_even_when_two_processes_race(db_url, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with Store.open(db_url, artifacts_root=tmp_path / "a") as store:
        runs = [new_run(store).id for _ in range(3)]
    with ctx.Pool(2) as pool:
        for run_id in runs:
            start_at = time.time() + 1.5  # both processes are up and connected by then
            results = pool.starmap(
                _start_attempt, [(db_url, run_id, 1, start_at), (db_url, run_id, 2, start_at)]
            )
            assert sorted(r.split(":")[0] for r in results) == ["refused", "started"], results
            (refused,) = [r for r in results if r.startswith("refused")]
            assert "already has a live attempt" in refused and "never runs twice at once" in refused
    with Store.open(db_url, artifacts_root=tmp_path / "a") as store:
        for run_id in runs:
            assert [a.status for a in store.attempts(run_id, "build")] == ["RUNNING"]
            live = store.attempts(run_id, "build")[0].attempt
            store.finish_attempt(run_id, "build", live, status="NOK")
            store.start_attempt(run_id, "build", 3 - live)  # once it ended, the next attempt may start


# ---- sessions: watch-only views, stale decisions, orphans --------------------------------------------


def _session(store: Store, actor: str) -> RunSession:
    runbook = parse_runbook(GATED)
    options = RunOptions(headless=False, trigger="notebook", actor=actor)
    return RunSession.start(runbook, {}, store, options, executor=LocalExecutor())


def test_a_stale_view_cannot_change_a_finished_run(store):
    """The regression of issue 13: a run finishes OK in session A; a Reject from B's stale view is refused and
    the run stays OK, its nodes keep their states."""
    a = _session(store, "alice")
    a.run_node("look")
    a.run_node("gate")
    runbook = parse_runbook(GATED)
    options = RunOptions(headless=False, trigger="notebook", actor="bob")
    b = RunSession.watch(runbook, {}, store, a.run_id, options, executor=LocalExecutor())
    assert b.states() == {"look": "OK", "gate": "WAITING", "ship": "PENDING"}
    assert b.owner_line().startswith("driven by alice")
    with pytest.raises(RunOwned, match="watch-only"):
        b.run_node("ship")

    a.decide("gate", Decision.APPROVE, "alice")
    a.run_node("ship")
    a.close()
    assert a.status is RunState.OK
    before = [(n.node_id, n.state, n.attempts) for n in store.node_states(a.run_id)]
    events = len(store.events(a.run_id))

    with pytest.raises(
        StaleWrite, match=rf"^run {a.run_id} is OK \(finished\); the decision on 'gate' is refused"
    ):
        b.decide("gate", Decision.REJECT, "bob")
    assert store.get_run(a.run_id).status == "OK"
    assert [(n.node_id, n.state, n.attempts) for n in store.node_states(a.run_id)] == before
    assert [(d.decision, d.actor) for d in store.decisions(a.run_id)] == [("approve", "alice")]
    assert len(store.events(a.run_id)) == events
    assert b.sync() and b.states() == {"look": "OK", "gate": "OK", "ship": "OK"}  # the view catches up


def test_a_taken_over_session_cannot_decide_any_more(store):
    a = _session(store, "alice")
    a.run_node("look")
    a.run_node("gate")
    runbook = parse_runbook(GATED)
    options = RunOptions(headless=False, trigger="notebook", actor="bob")
    with pytest.raises(RunOwned, match=r"driven by alice .*--take-over"):
        RunSession.resume(runbook, {}, store, a.run_id, options, executor=LocalExecutor())
    b = RunSession.resume(runbook, {}, store, a.run_id, options, executor=LocalExecutor(), take_over=True)
    assert "run_taken_over" in kinds(store, a.run_id)
    with pytest.raises(StaleWrite):
        a.decide("gate", Decision.REJECT, "alice")
    assert store.decisions(a.run_id) == []
    b.decide("gate", Decision.APPROVE, "bob")
    b.run_node("ship")
    b.close()
    assert store.get_run(a.run_id).status == "OK"
    assert [(d.decision, d.actor) for d in store.decisions(a.run_id)] == [("approve", "bob")]


def test_resume_of_an_orphaned_run_kills_its_recorded_process_group_first(store):
    """Issue 24 point 2: the owner died and left a command running: `resume` (no set-status) kills the
    recorded group (an event with the actor), marks the attempt INTERRUPTED and the run ABORTED, goes on."""
    a = _session(store, "alice")
    a.run_node("look")
    a.lease.stop()
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        store.start_attempt(a.run_id, "look", 2, token=a.owner.token)  # as if its Retry was running
        store.set_attempt_process(
            a.run_id, "look", 2, host=a.owner.host, pgid=leftover.pid, pgid_start=process_start(leftover.pid)
        )
        store.claim_run(a.run_id, owner("alice", pid=dead_pid(), pid_start=None), take_over=True)  # it died
        assert store.owner_status(a.run_id).orphaned
        runbook = parse_runbook(GATED)
        options = RunOptions(headless=False, trigger="resume", actor="oncall")
        b = RunSession.resume(runbook, {}, store, a.run_id, options, executor=LocalExecutor())
        assert leftover.wait(timeout=5) is not None  # killed (and reaped here)
    finally:
        if leftover.poll() is None:
            leftover.kill()
    (killed,) = [e for e in store.events(a.run_id) if e.kind == "process_group_killed"]
    assert killed.payload["pgid"] == leftover.pid and killed.payload["actor"] == "oncall"
    (manual,) = [e for e in store.events(a.run_id) if e.kind == "status_set_manually"]
    assert manual.payload["to"] == "ABORTED" and "orphaned (owner gone since" in manual.payload["reason"]
    assert [x.status for x in store.attempts(a.run_id, "look")] == ["OK", "INTERRUPTED"]
    assert store.get_run(a.run_id).status == "RUNNING" and store.owner_status(a.run_id).live
    assert b.owner is not None and store.get_run(a.run_id).owner_actor == "oncall"


def test_resume_kills_a_command_found_by_its_token_when_no_group_was_recorded(store):
    """Issue 18.2: a command's group is recorded only once it has run 50 ms, its watchdog token with the
    attempt's start. An owner that died in between (or was stopped) leaves no group in the index: `resume`
    finds the command's processes by the token in their environment, a process that left the group too."""
    a = _session(store, "alice")
    a.run_node("look")
    look = store.attempts(a.run_id, "look")[0]
    assert look.host == a.owner.host and look.pgid is None  # `echo` ends within 50 ms: no group recorded
    a.lease.stop()
    token = "f" * 32
    env = {**os.environ, TOKEN_ENV: token}
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True, env=env)
    runaway = subprocess.Popen(["sleep", "61"], start_new_session=True, env=env)  # a group of its own
    bystander = subprocess.Popen(["sleep", "62"], start_new_session=True)
    try:
        store.start_attempt(a.run_id, "look", 2, token=a.owner.token, process_token=token, host=a.owner.host)
        store.claim_run(a.run_id, owner("alice", pid=dead_pid(), pid_start=None), take_over=True)  # it died
        runbook = parse_runbook(GATED)
        options = RunOptions(headless=False, trigger="resume", actor="oncall")
        b = RunSession.resume(runbook, {}, store, a.run_id, options, executor=LocalExecutor())
        assert leftover.wait(timeout=5) is not None and runaway.wait(timeout=5) is not None
        assert bystander.poll() is None  # what does not carry the token is left alone
    finally:
        for proc in (leftover, runaway, bystander):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    (killed,) = [e for e in store.events(a.run_id) if e.kind == "process_group_killed"]
    assert killed.payload["pgid"] is None and sorted(killed.payload["pids"]) == sorted(
        [leftover.pid, runaway.pid]
    )
    assert killed.payload["actor"] == "oncall" and killed.node_id == "look" and killed.attempt == 2
    assert [x.status for x in store.attempts(a.run_id, "look")] == ["OK", "INTERRUPTED"]
    b.close()


def test_a_command_still_running_after_50_ms_records_its_group(store):
    """Its group is in the index while it runs (what a recovery from another process reads first)."""
    book = GATED.replace('command_name = "echo looking"', 'command_name = "sleep 0.4"')
    session = RunSession.start(
        parse_runbook(book), {}, store, RunOptions(headless=False, actor="alice"), executor=LocalExecutor()
    )
    session.run_node("look")
    (look,) = store.attempts(session.run_id, "look")
    assert look.status == "OK" and look.pgid is not None and look.process_token and look.host
    session.close()


def _run_fields() -> dict:
    run = {
        "workflow": "Deploy {{APP}}",
        "title": "Deploy web",
        "runbook_text": "x",
        "runbook_sha256": "0" * 64,
        "runbook_version": None,
        "variables": {},
        "params": {},
        "trigger": "terminal",
        "actor": "alice",
        "host": "box1",
        "mode": "interactive",
        "node_ids": ["build", "gate", "ship"],
    }
    return run
