"""The parts RunSession is made of: the gate policy (one place for the headless gate decision), the resume
rules (domain.lifecycle), exit codes, and the executor and clock a session is given at construction."""

from __future__ import annotations

import threading

import pytest

from playbook_nb.adapters.plugins.registry import INSTALLED
from playbook_nb.adapters.store import Store
from playbook_nb.app.ports import AttemptResult, NodeCall
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.decisions import GateDecision, GatePolicy
from playbook_nb.domain.engine import Decision, RunState
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.exit_codes import ExitCode, exit_code_for
from playbook_nb.domain.lifecycle import LifecycleError, check_resumable, resume_snapshot
from playbook_nb.domain.validation import parse_runbook

BOOK = """[runbook]
title = "parts"
[check]
type = "Command"
command_name = "echo {{ ENV }}"
[gate]
type = "Manual"
[after]
type = "Command"
command_name = "true"
[variables]
ENV = "prod"
"""


def test_gate_policy_asks_the_record_then_the_parameters_then_the_policy():
    recorded = {"g1": GateDecision(Decision.REJECT, "bob", "as before")}
    policy = GatePolicy(
        {"g1": Decision.APPROVE, "g2": Decision.APPROVE}, "reject-all", actor="ci", recorded=recorded.get
    )
    assert policy.decide("g1") == recorded["g1"]  # replay: the recorded decision wins
    assert policy.decide("g2") == GateDecision(
        Decision.APPROVE, "ci", "decided by run parameters", source="parameter"
    )
    assert policy.decide("g3") == GateDecision(
        Decision.REJECT, "policy:reject-all (ci)", "gate policy reject-all", source="policy"
    )
    assert policy.approval("g3") is None  # parameters only: the policy is not asked
    closed = GatePolicy(actor="ci")
    assert closed.decide("g3") is None
    assert closed.fail_closed_reason("g3") == (
        "gate 'g3' awaits approval: no approval given and gate policy is fail-closed (resume with --approve g3)"
    )


@pytest.mark.parametrize(
    ("status", "recorded", "allow", "message"),
    [
        ("RUNNING", "a" * 64, False, "run 7 is RUNNING; if its process is gone, mark it first"),
        ("OK", "a" * 64, False, "only ABORTED runs can be resumed (run 7 is OK)"),
        (
            "ABORTED",
            "b" * 64,
            False,
            "runbook changed since run 7 started (sha256 bbbbbbbbbbbb -> aaaaaaaaaaaa)",
        ),
    ],
)
def test_resume_rules_refuse_in_one_line(status, recorded, allow, message):
    with pytest.raises(LifecycleError) as err:
        check_resumable(
            7,
            status=status,
            workflow="w",
            title="w",
            recorded_sha256=recorded,
            sha256="a" * 64,
            allow_changed=allow,
        )
    assert str(err.value).startswith(message)
    check_resumable(
        7, status="ABORTED", workflow="w", title="w", recorded_sha256="b", sha256="a", allow_changed=True
    )


def test_a_snapshot_left_running_resumes_as_aborted():
    assert resume_snapshot({"run_state": "RUNNING", "x": 1}, "killed") == {
        "run_state": "ABORTED",
        "run_reason": "killed",
        "x": 1,
    }
    assert resume_snapshot({"run_state": "ABORTED"}, "killed") == {"run_state": "ABORTED"}


def test_exit_codes():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4]  # 4: a storage fault
    assert [exit_code_for(s) for s in ("OK", "NOK", "ABORTED", "RUNNING")] == [0, 1, 3, 3]


class FixedClock:
    def __init__(self, now: float):
        self.now = now
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class AnsweringExecutor:
    """Answers every call without running anything, and keeps the rendered calls it was given."""

    plugins = INSTALLED  # the installed plugins, as the real executor has

    def __init__(self):
        self.calls: list[NodeCall] = []

    def run(self, call: NodeCall) -> AttemptResult:
        self.calls.append(call)
        return AttemptResult(ok=True, stdout="answered\n", started_at=1000.0, ended_at=1000.5)


def test_a_session_runs_with_the_executor_clock_and_gate_policy_it_was_given(tmp_path):
    store = Store.open(tmp_path / "runs.db")
    executor, clock = AnsweringExecutor(), FixedClock(1000.0)
    policy = GatePolicy({"gate": Decision.APPROVE}, actor="ci")
    session = RunSession.start(
        parse_runbook(BOOK),
        {"ENV": "prod"},
        store,
        RunOptions(headless=True, actor="ci"),
        executor=executor,
        clock=clock,
        gate_policy=policy,
        namespace={},
    )
    assert session.drive(lambda *_: None) is RunState.OK
    session.close()
    assert [(c.node.id, c.command) for c in executor.calls] == [("check", "echo prod"), ("after", "true")]
    attempts = {a.node_id: a for a in store.attempts(session.run_id)}
    assert attempts["check"].stdout == "answered\n"
    assert attempts["check"].started_at.timestamp() == pytest.approx(1000.0)  # the clock it was given
    decisions = store.decisions(session.run_id)
    assert [(d.node_id, d.decision, d.actor) for d in decisions] == [("gate", "approve", "ci")]
    store.close()


def test_a_second_thread_cannot_drive_the_session_and_its_abort_throws_the_switch(tmp_path):
    store = Store.open(tmp_path / "runs.db")
    session = RunSession.start(
        parse_runbook(BOOK),
        {"ENV": "prod"},
        store,
        RunOptions(headless=False, actor="dana"),
        executor=AnsweringExecutor(),
        clock=FixedClock(1000.0),
        namespace={},
    )
    session.run_until_gate()
    assert session.states() == {"check": "OK", "gate": "WAITING", "after": "PENDING"}
    seen: dict[str, object] = {}

    def elsewhere() -> None:
        for name, call in (
            ("decide", lambda: session.decide("gate", Decision.APPROVE, "erin")),
            ("run_node", lambda: session.run_node("after")),
            ("run_until_gate", session.run_until_gate),
        ):
            try:
                call()
                seen[name] = "done"
            except PlaybookError as err:
                seen[name] = str(err)
        session.abort("erin", "stop from a second thread")

    worker = threading.Thread(target=elsewhere, name="second")
    worker.start()
    worker.join()
    refused = f"run {session.run_id} is driven from thread 'MainThread', not from 'second': nothing was done"
    assert seen == {"decide": refused, "run_node": refused, "run_until_gate": refused}
    assert store.decisions(session.run_id) == []
    assert store.get_run(session.run_id).status == "RUNNING"  # nothing written from the second thread
    assert session.abort_switch.requested  # but its abort stops what runs and waits for the driver
    session.run_until_gate()  # the driver's next safe point records it
    assert store.get_run(session.run_id).status == "ABORTED"
    assert session.states() == {"check": "OK", "gate": "WAITING", "after": "PENDING"}
    session.close()
    store.close()


def test_set_status_rules_live_in_the_lifecycle_module():
    from playbook_nb.domain.lifecycle import manual_status_problem

    assert manual_status_problem(7, "RUNNING", "ABORTED", force=False) is None  # closing an orphan
    assert manual_status_problem(7, "ABORTED", "NOK", force=False) is None
    assert manual_status_problem(7, "OK", "OK", force=False) is None
    assert "RUNNING by hand needs --force" in manual_status_problem(7, "ABORTED", "RUNNING", force=False)
    assert manual_status_problem(7, "ABORTED", "RUNNING", force=True) is None  # the seed allows it, forced
    assert (
        manual_status_problem(7, "OK", "NOK", force=False)
        == "run 7 finished OK; changing it to NOK needs --force"
    )
    assert manual_status_problem(7, "OK", "NOK", force=True) is None
