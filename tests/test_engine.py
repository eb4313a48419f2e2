"""The pure run engine: every rule of DESIGN.md "Rules the engine owns", without I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook_nb.domain.engine import (
    AttemptOutcome,
    Decision,
    Engine,
    EngineError,
    EngineEvent,
    NodeState,
    RunState,
)
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.model import DepCondition, Dependency, Node, NodeType, Runbook, RunbookMeta

OK, NOK, SKIPPED, PENDING, RUNNING, WAITING = (
    NodeState.OK,
    NodeState.NOK,
    NodeState.SKIPPED,
    NodeState.PENDING,
    NodeState.RUNNING,
    NodeState.WAITING,
)

# ------------------------------------------------------------------------------------------------- helpers


def dep(text: str) -> Dependency:
    name, _, cond = text.partition(":")
    return Dependency(name, DepCondition(cond) if cond else DepCondition.PLAIN)


def make_runbook(spec: dict[str, dict]) -> Runbook:
    """{"a": {}, "b": {"deps": ["a"], "critical": True}, "g": {"type": "Manual"}} -> Runbook."""
    nodes = {}
    for order, (node_id, fields) in enumerate(spec.items()):
        fields = dict(fields)
        deps = [dep(d) for d in fields.pop("deps", [])]
        node_type = NodeType(fields.pop("type", "Command"))
        nodes[node_id] = Node(id=node_id, type=node_type, order=order, depends_on=deps, **fields)
    return Runbook(meta=RunbookMeta(title="t"), variables={}, nodes=nodes, source_text="", sha256="")


@dataclass
class Trace:
    started: list[tuple[str, int]] = field(default_factory=list)
    delays: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ran(self) -> list[str]:
        return [node for node, _ in self.started]


def drive(engine: Engine, outcomes=None, decisions=None, max_steps: int = 500) -> Trace:
    """Sequential driver: start one ready node at a time, finish it with the scripted outcome.

    outcomes: {node: [True | "error", ...]} one per attempt (the last one repeats; default: success).
    decisions: {node: [Decision, ...]} answered in order while the engine waits for decisions.
    Stops when the run has ended or a decision is needed that the script does not hold.
    """
    outcomes = outcomes or {}
    decisions = {k: list(v) for k, v in (decisions or {}).items()}
    trace = Trace()
    for _ in range(max_steps):
        if engine.is_done():
            if engine.run_state is not RunState.RUNNING:
                return trace
            waiting = [n for n in engine.awaiting_decision() if decisions.get(n)]
            if not waiting:
                return trace
            engine.decided(waiting[0], decisions[waiting[0]].pop(0), actor="tester")
            continue
        ready = engine.get_ready()
        assert ready, "engine is not done but nothing is ready (sequential driver, nothing running)"
        node_id = ready[0]
        delay = engine.retry_delay(node_id)
        if delay is not None:
            trace.delays.setdefault(node_id, []).append(delay)
        attempt = engine.started(node_id)
        trace.started.append((node_id, attempt))
        if engine.runbook.node(node_id).is_gate:
            continue
        script = outcomes.get(node_id) or [True]
        result = script[min(attempt, len(script)) - 1]
        if result is True:
            engine.finished(node_id, AttemptOutcome(ok=True))
        else:
            engine.finished(node_id, AttemptOutcome(ok=False, error=str(result)))
    raise AssertionError("driver did not finish")


def states(engine: Engine) -> dict[str, NodeState]:
    return {node_id: engine.state(node_id) for node_id in engine.runbook.nodes}


def when_table(table: dict):
    """A `when` evaluator for tests: node.when is a key into `table` of callables taking the engine."""

    def evaluate(node: Node, engine: Engine) -> bool:
        return table[node.when](engine)

    return evaluate


def boom(_engine):
    raise ValueError("'ENVIRONMENT' is undefined")


# -------------------------------------------------------------------------------------------------- basics


def test_linear_run_is_ok_and_get_ready_is_in_declaration_order():
    engine = Engine(make_runbook({"a": {}, "c": {}, "b": {"deps": ["a", "c"]}}), headless=True)
    assert engine.get_ready() == ["a", "c"]
    trace = drive(engine)
    assert trace.ran == ["a", "c", "b"]
    assert engine.run_state is RunState.OK
    assert set(states(engine).values()) == {OK}


def test_ready_node_is_returned_until_started_and_cannot_start_twice():
    engine = Engine(make_runbook({"a": {}, "b": {"deps": ["a"]}}), headless=True)
    assert engine.get_ready() == ["a"]
    assert engine.get_ready() == ["a"]
    assert engine.started("a") == 1
    assert engine.state("a") is RUNNING
    assert engine.get_ready() == []
    with pytest.raises(EngineError, match="cannot start 'a': it is not ready"):
        engine.started("a")
    with pytest.raises(EngineError, match="cannot start 'b': it is not ready"):
        engine.started("b")
    assert not engine.is_done()


def test_engine_error_is_a_playbook_error_with_one_line():
    engine = Engine(make_runbook({"a": {}}), headless=True)
    with pytest.raises(PlaybookError) as err:
        engine.finished("a", AttemptOutcome(ok=True))
    assert "\n" not in str(err.value)
    with pytest.raises(EngineError, match="unknown node 'zz'"):
        engine.state("zz")


def test_diamond_waits_for_both_sides():
    engine = Engine(
        make_runbook({"a": {}, "b": {"deps": ["a"]}, "c": {"deps": ["a"]}, "d": {"deps": ["b", "c"]}}),
        headless=True,
    )
    engine.started("a")
    engine.finished("a", AttemptOutcome(ok=True))
    assert engine.get_ready() == ["b", "c"]
    engine.started("b")
    engine.finished("b", AttemptOutcome(ok=True))
    assert engine.get_ready() == ["c"]
    engine.started("c")
    engine.finished("c", AttemptOutcome(ok=True))
    assert engine.get_ready() == ["d"]
    drive(engine)
    assert engine.run_state is RunState.OK


def test_diamond_with_one_side_skipped_by_condition_still_joins():
    runbook = make_runbook(
        {"a": {}, "b": {"deps": ["a"], "when": "no"}, "c": {"deps": ["a"]}, "d": {"deps": ["b", "c"]}}
    )
    engine = Engine(runbook, headless=True, when=when_table({"no": lambda e: False}))
    trace = drive(engine)
    assert trace.ran == ["a", "c", "d"]
    assert engine.state("b") is SKIPPED
    assert engine.run_state is RunState.OK


def test_skip_true_in_runbook_skips_once_dependencies_are_final():
    engine = Engine(
        make_runbook({"a": {}, "b": {"deps": ["a"], "skip": True}, "c": {"deps": ["b"]}}), headless=True
    )
    engine.get_ready()
    assert engine.state("b") is PENDING  # a is not final yet
    trace = drive(engine)
    assert trace.ran == ["a", "c"]
    assert engine.state("b") is SKIPPED
    assert engine.reason("b") == "skip = true in runbook"
    assert engine.attempts("b") == 0


def test_unknown_dependency_and_cycle_are_refused():
    with pytest.raises(EngineError, match="unknown node 'nope'"):
        Engine(make_runbook({"a": {"deps": ["nope"]}}), headless=True)
    with pytest.raises(EngineError, match="cycle"):
        Engine(make_runbook({"a": {"deps": ["b"]}, "b": {"deps": ["a"]}}), headless=True)


# ------------------------------------------------------------------------------------------------ failures


def test_critical_failure_stops_everything_downstream_and_run_is_nok():
    runbook = make_runbook(
        {
            "a": {},
            "b": {"deps": ["a"], "critical": True},
            "c": {"deps": ["b"]},
            "d": {"deps": ["a"]},  # independent of b, but no new node starts after a critical failure
        }
    )
    engine = Engine(runbook, headless=True)
    trace = drive(engine, outcomes={"b": ["disk full"]})
    assert trace.ran == ["a", "b"]
    assert states(engine) == {"a": OK, "b": NOK, "c": SKIPPED, "d": SKIPPED}
    assert engine.reason("c") == "not started: run failed at critical node b"
    assert engine.reason("d") == "not started: run failed at critical node b"
    assert engine.reason("b") == "disk full"
    assert engine.has_failed("b")
    assert engine.run_state is RunState.NOK
    assert engine.failing == {
        "node": "b",
        "cause": "critical_failure",
        "reason": "not started: run failed at critical node b",
    }
    assert engine.is_done()


def test_non_critical_failure_headless_is_skipped_by_policy_and_the_run_goes_on():
    engine = Engine(make_runbook({"a": {}, "b": {"deps": ["a"]}, "c": {"deps": ["b"]}}), headless=True)
    trace = drive(engine, outcomes={"b": ["exit 1"]})
    assert trace.ran == ["a", "b", "c"]
    assert engine.state("b") is SKIPPED
    assert engine.reason("b") == "skipped by policy (non-critical failure)"
    assert engine.has_failed("b")
    assert not engine.has_succeeded("b")
    assert engine.run_state is RunState.OK


@pytest.mark.parametrize("critical", [True, False])
def test_failure_branch_runs_only_on_failure(critical):
    spec = {
        "deploy": {"critical": critical},
        "rollback": {"deps": ["deploy:failure"]},
        "notify_failure": {"deps": ["rollback:success"]},
        "notify_success": {"deps": ["deploy:success"]},
    }
    healthy = Engine(make_runbook(spec), headless=True)
    assert drive(healthy).ran == ["deploy", "notify_success"]
    assert healthy.reason("rollback") == "dependency condition not met: deploy:failure"
    assert healthy.reason("notify_failure") == "dependency condition not met: rollback:success"
    assert healthy.run_state is RunState.OK

    failing = Engine(make_runbook(spec), headless=True)
    assert drive(failing, outcomes={"deploy": ["boom"]}).ran == ["deploy", "rollback", "notify_failure"]
    assert failing.state("notify_success") is SKIPPED
    assert failing.run_state is (RunState.NOK if critical else RunState.OK)


def test_failure_branch_that_itself_fails_ends_the_run_nok():
    spec = {
        "deploy": {"critical": True},
        "rollback": {"deps": ["deploy:failure"]},
        "notify_failure": {"deps": ["rollback:success"]},
        "page_oncall": {"deps": ["rollback:failure"]},
    }
    engine = Engine(make_runbook(spec), headless=True)
    trace = drive(engine, outcomes={"deploy": ["boom"], "rollback": ["rollback failed"]})
    assert trace.ran == ["deploy", "rollback", "page_oncall"]
    assert engine.state("rollback") is SKIPPED  # non-critical, headless: skipped by policy
    assert engine.reason("notify_failure") == "dependency condition not met: rollback:success"
    assert engine.run_state is RunState.NOK


def test_automatic_retries_with_backoff_1_2_4():
    runbook = make_runbook({"flaky": {"retries": 3, "retry_backoff": 1.0}, "after": {"deps": ["flaky"]}})
    engine = Engine(runbook, headless=True)
    trace = drive(engine, outcomes={"flaky": ["e1", "e2", "e3", True]})
    assert trace.started[:4] == [("flaky", 1), ("flaky", 2), ("flaky", 3), ("flaky", 4)]
    assert trace.delays == {"flaky": [1.0, 2.0, 4.0]}
    assert engine.attempts("flaky") == 4
    assert engine.state("flaky") is OK and not engine.has_failed("flaky")
    assert engine.run_state is RunState.OK
    assert engine.retry_delay("flaky") is None


def test_automatic_retry_is_announced_then_exhausted_retries_follow_the_failure_rules():
    engine = Engine(
        make_runbook({"flaky": {"retries": 2, "retry_backoff": 0.5, "critical": True}}), headless=True
    )
    engine.started("flaky")
    engine.pop_events()
    engine.finished("flaky", AttemptOutcome(ok=False, error="timeout"))
    assert engine.state("flaky") is PENDING
    assert engine.retry_delay("flaky") == 0.5
    assert engine.get_ready() == ["flaky"]
    events = engine.pop_events()
    assert [(e.kind, e.state) for e in events] == [("node_state", "PENDING"), ("retry_scheduled", "PENDING")]
    assert events[1].data == {"retry": 1, "retries": 2, "delay": 0.5, "error": "timeout"}
    assert events[1].attempt == 1
    drive(engine, outcomes={"flaky": ["timeout"]})
    assert engine.attempts("flaky") == 3
    assert engine.state("flaky") is NOK
    assert engine.run_state is RunState.NOK


def test_no_automatic_retry_unless_the_node_asks():
    engine = Engine(make_runbook({"a": {}}), headless=True)
    engine.started("a")
    engine.finished("a", AttemptOutcome(ok=False, error="x"))
    assert engine.retry_delay("a") is None
    assert engine.attempts("a") == 1
    assert engine.state("a") is SKIPPED


# --------------------------------------------------------------------------------------------- interactive


def test_interactive_failure_waits_for_a_decision_and_is_not_final():
    engine = Engine(make_runbook({"a": {}, "b": {"deps": ["a"]}}), headless=False)
    engine.started("a")
    engine.finished("a", AttemptOutcome(ok=False, error="exit 2"))
    assert engine.state("a") is NOK
    assert engine.pending_decision("a") == "failure"
    assert not engine.is_final("a")
    assert engine.allowed_decisions("a") == {Decision.RETRY, Decision.SKIP, Decision.ABORT}
    assert engine.get_ready() == []
    assert engine.is_done()  # only a decision can make progress
    assert engine.run_state is RunState.RUNNING
    assert engine.state("b") is PENDING


def test_operator_retry_then_success():
    engine = Engine(make_runbook({"a": {}, "b": {"deps": ["a"]}}), headless=False)
    trace = drive(engine, outcomes={"a": ["boom", True]}, decisions={"a": [Decision.RETRY]})
    assert trace.started == [("a", 1), ("a", 2), ("b", 1)]
    assert engine.run_state is RunState.OK
    assert not engine.has_failed("a")


def test_operator_skip_keeps_the_failed_flag_and_failure_branches_run():
    spec = {"a": {}, "undo": {"deps": ["a:failure"]}, "b": {"deps": ["a"]}}
    engine = Engine(make_runbook(spec), headless=False)
    trace = drive(engine, outcomes={"a": ["boom"]}, decisions={"a": [Decision.SKIP]})
    assert trace.ran == ["a", "undo", "b"]
    assert engine.reason("a") == "skipped by operator"
    assert engine.has_failed("a")
    assert engine.run_state is RunState.OK


def test_max_retries_is_enforced_for_a_non_critical_node():
    engine = Engine(make_runbook({"a": {}}), headless=False, max_retries=2)
    trace = drive(engine, outcomes={"a": ["boom"]}, decisions={"a": [Decision.RETRY, Decision.RETRY]})
    assert trace.started == [("a", 1), ("a", 2), ("a", 3)]
    assert engine.pending_decision("a") == "failure"
    assert engine.allowed_decisions("a") == {Decision.SKIP, Decision.ABORT}
    before = engine.snapshot()
    engine.pop_events()
    with pytest.raises(EngineError, match=r"^cannot retry 'a': max retries \(2\) reached$"):
        engine.decided("a", Decision.RETRY, actor="ops")
    assert engine.snapshot() == before
    assert engine.pop_events() == []
    engine.decided("a", Decision.SKIP, actor="ops")  # the operator may still skip it
    assert engine.run_state is RunState.OK


def test_max_retries_exhausted_on_a_critical_node_fails_the_run():
    spec = {"a": {"critical": True}, "b": {"deps": ["a"]}}
    engine = Engine(make_runbook(spec), headless=False, max_retries=1)
    trace = drive(engine, outcomes={"a": ["boom"]}, decisions={"a": [Decision.RETRY]})
    assert trace.started == [("a", 1), ("a", 2)]
    assert engine.state("a") is NOK and engine.is_final("a")
    assert engine.pending_decision("a") is None
    assert engine.allowed_decisions("a") == set()
    assert engine.state("b") is SKIPPED
    assert engine.run_state is RunState.NOK
    with pytest.raises(EngineError, match="cannot retry 'a': run is NOK"):
        engine.decided("a", Decision.RETRY, actor="ops")


def test_a_critical_node_cannot_be_skipped():
    engine = Engine(make_runbook({"a": {"critical": True}}), headless=False)
    engine.started("a")
    engine.finished("a", AttemptOutcome(ok=False, error="boom"))
    assert engine.allowed_decisions("a") == {Decision.RETRY, Decision.ABORT}
    before = engine.snapshot()
    with pytest.raises(EngineError, match=r"^cannot skip 'a': critical nodes cannot be skipped$"):
        engine.decided("a", Decision.SKIP, actor="ops")
    assert engine.snapshot() == before


def test_critical_override_wins_over_the_node_field():
    runbook = make_runbook({"a": {"critical": "{{ ENV == 'prod' }}"}, "b": {"critical": True}})
    engine = Engine(runbook, headless=False, critical={"a": True, "b": False})
    assert engine.is_critical("a") and not engine.is_critical("b")
    with pytest.raises(EngineError, match="node 'a': critical is a template"):
        Engine(runbook, headless=True)
    with pytest.raises(EngineError, match="critical: unknown node 'x'"):
        Engine(runbook, headless=True, critical={"a": True, "x": True})


def test_invalid_decisions_are_refused_with_one_line():
    engine = Engine(make_runbook({"a": {}, "g": {"type": "Manual", "deps": ["a"]}}), headless=False)
    with pytest.raises(EngineError, match="cannot approve 'a': it does not wait for a decision"):
        engine.decided("a", Decision.APPROVE, actor="ops")
    engine.started("a")
    engine.finished("a", AttemptOutcome(ok=False, error="boom"))
    with pytest.raises(EngineError, match="cannot approve 'a': only a gate"):
        engine.decided("a", Decision.APPROVE, actor="ops")
    with pytest.raises(EngineError, match="unknown decision 'later' for 'a'"):
        engine.decided("a", "later", actor="ops")
    engine.decided("a", "retry", actor="ops")  # plain strings are accepted too
    drive(engine)
    assert engine.pending_decision("g") == "gate"
    with pytest.raises(EngineError, match="cannot retry 'g': a gate is approved or rejected"):
        engine.decided("g", Decision.RETRY, actor="ops")
    with pytest.raises(EngineError, match="cannot finish 'g': it is not running .*decided"):
        engine.finished("g", AttemptOutcome(ok=True))
    engine.decided("g", Decision.APPROVE, actor="ops")
    assert engine.run_state is RunState.OK
    with pytest.raises(EngineError, match="cannot skip 'g': run is OK"):
        engine.decided("g", Decision.SKIP, actor="ops")
    with pytest.raises(EngineError, match="cannot abort: run is OK"):
        engine.abort("ops", "late")


# ---------------------------------------------------------------------------------------------------- when


def test_when_false_gives_skipped_with_a_condition_reason():
    runbook = make_runbook({"a": {}, "scan": {"deps": ["a"], "when": "{{ ENVIRONMENT == 'prod' }}"}})
    seen = []

    def when(node, engine):
        seen.append((node.id, engine.has_succeeded("a")))
        return False

    engine = Engine(runbook, headless=True, when=when)
    trace = drive(engine)
    assert trace.ran == ["a"]
    assert seen == [("scan", True)]  # evaluated once, after its dependencies are final
    assert engine.state("scan") is SKIPPED
    assert engine.reason("scan") == "condition false: {{ ENVIRONMENT == 'prod' }}"
    assert engine.run_state is RunState.OK


def test_dependency_conditions_are_checked_before_when():
    calls = []
    runbook = make_runbook({"a": {}, "b": {"deps": ["a:failure"], "when": "w"}})
    engine = Engine(runbook, headless=True, when=lambda n, e: calls.append(n.id) or True)
    drive(engine)
    assert calls == []
    assert engine.reason("b") == "dependency condition not met: a:failure"


@pytest.mark.parametrize("critical", [True, False])
def test_error_in_when_fails_the_node_and_never_runs_it_headless(critical):
    runbook = make_runbook({"a": {"when": "bad", "critical": critical, "retries": 2}, "b": {"deps": ["a"]}})
    engine = Engine(runbook, headless=True, when=when_table({"bad": boom}))
    trace = drive(engine)
    assert "a" not in trace.ran
    assert engine.attempts("a") == 0
    assert engine.error("a") == "when: 'ENVIRONMENT' is undefined"
    assert engine.has_failed("a")
    if critical:
        assert engine.state("a") is NOK
        assert engine.reason("a") == "when: 'ENVIRONMENT' is undefined"
        assert engine.run_state is RunState.NOK
        assert trace.ran == []
    else:
        assert engine.state("a") is SKIPPED
        assert engine.reason("a") == "skipped by policy (non-critical failure)"
        assert engine.run_state is RunState.OK
        assert trace.ran == ["b"]


def test_error_in_when_interactive_waits_for_a_decision_and_retry_evaluates_again():
    answers = iter([ValueError("boom"), True])

    def when(node, engine):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    engine = Engine(make_runbook({"a": {"when": "w"}}), headless=False, when=when)
    assert engine.get_ready() == []
    assert engine.state("a") is NOK
    assert engine.reason("a") == "when: boom"
    assert engine.pending_decision("a") == "failure"
    engine.decided("a", Decision.RETRY, actor="ops")
    assert engine.get_ready() == ["a"]
    drive(engine)
    assert engine.run_state is RunState.OK
    assert engine.attempts("a") == 1


# ---------------------------------------------------------------------------------------- conditional deps


@pytest.mark.parametrize(
    ("outcomes", "ran", "cleanup"),
    [
        ({}, ["deploy", "cleanup"], OK),  # deploy:success satisfied
        ({"deploy": ["boom"]}, ["deploy", "rollback", "cleanup"], OK),  # rollback:success satisfied
        ({"deploy": ["boom"], "rollback": ["boom"]}, ["deploy", "rollback"], SKIPPED),  # neither
    ],
)
def test_two_conditional_dependencies_any_one_is_enough(outcomes, ran, cleanup):
    spec = {
        "deploy": {},
        "rollback": {"deps": ["deploy:failure"]},
        "cleanup": {"deps": ["deploy:success", "rollback:success"]},
    }
    engine = Engine(make_runbook(spec), headless=True)
    assert drive(engine, outcomes=outcomes).ran == ran
    assert engine.state("cleanup") is cleanup
    if cleanup is SKIPPED:
        assert engine.reason("cleanup") == "dependency condition not met: deploy:success or rollback:success"
    assert engine.run_state is RunState.OK


def test_plain_dependencies_must_all_be_met_alongside_conditional_ones():
    spec = {"a": {}, "b": {"type": "Manual"}, "c": {"deps": ["a:success", "b"]}, "r": {"deps": ["b:failure"]}}
    engine = Engine(make_runbook(spec), headless=False)
    drive(engine, decisions={"b": [Decision.REJECT]})
    assert engine.state("c") is SKIPPED  # b (plain) ended NOK; the run is failing anyway
    assert engine.state("r") is OK


def test_skipped_upstream_satisfies_plain_but_not_success():
    spec = {"a": {"skip": True}, "plain": {"deps": ["a"]}, "succ": {"deps": ["a:success"]}}
    engine = Engine(make_runbook(spec), headless=True)
    assert drive(engine).ran == ["plain"]
    assert engine.reason("succ") == "dependency condition not met: a:success"


# --------------------------------------------------------------------------------------------------- gates


def gate_spec(critical=False):
    return {
        "prepare": {},
        "gate": {"type": "Manual", "deps": ["prepare"], "critical": critical},
        "deploy": {"deps": ["gate"]},
        "announce": {"deps": ["gate:success"]},
        "on_reject": {"deps": ["gate:failure"]},
        "after_reject": {"deps": ["on_reject:success"]},
    }


def test_a_gate_waits_and_the_engine_never_decides_it_in_either_mode():
    for headless in (True, False):
        engine = Engine(make_runbook(gate_spec()), headless=headless)
        drive(engine)
        assert engine.state("gate") is WAITING
        assert engine.pending_decision("gate") == "gate"
        assert engine.awaiting_decision() == ["gate"]
        assert engine.is_done()
        assert engine.run_state is RunState.RUNNING


def test_approve_lets_downstream_run_and_records_who():
    engine = Engine(make_runbook(gate_spec(critical=True)), headless=True)
    drive(engine)
    assert engine.allowed_decisions("gate") == {Decision.APPROVE, Decision.REJECT, Decision.ABORT}
    engine.pop_events()
    engine.decided("gate", Decision.APPROVE, actor="alice", comment="change 42 approved")
    events = engine.pop_events()
    assert events[0] == EngineEvent(
        "decision",
        "gate",
        1,
        None,
        None,
        {"decision": "approve", "actor": "alice", "comment": "change 42 approved", "pending": "gate"},
    )
    assert (events[1].kind, events[1].state, events[1].reason) == ("node_state", "OK", "approved by alice")
    trace = drive(engine)
    assert trace.ran == ["deploy", "announce"]
    assert engine.reason("on_reject") == "dependency condition not met: gate:failure"
    assert engine.run_state is RunState.OK


@pytest.mark.parametrize("critical", [True, False])
def test_reject_ends_nok_and_runs_the_failure_branch_critical_or_not(critical):
    engine = Engine(make_runbook(gate_spec(critical=critical)), headless=False)
    trace = drive(engine, decisions={"gate": [Decision.REJECT]})
    assert trace.ran == ["prepare", "gate", "on_reject", "after_reject"]
    assert engine.state("gate") is NOK and engine.has_failed("gate")
    assert engine.state("deploy") is SKIPPED and engine.state("announce") is SKIPPED
    assert engine.reason("deploy") == "not started: gate gate rejected"
    assert engine.run_state is RunState.NOK
    assert engine.run_reason == "gate gate rejected"


def test_skip_a_gate_only_if_non_critical():
    engine = Engine(make_runbook(gate_spec(critical=False)), headless=False)
    drive(engine)
    engine.decided("gate", Decision.SKIP, actor="bob")
    assert engine.reason("gate") == "skipped by operator"
    assert not engine.has_failed("gate")
    assert drive(engine).ran == ["deploy"]
    assert engine.run_state is RunState.OK

    critical = Engine(make_runbook(gate_spec(critical=True)), headless=False)
    drive(critical)
    with pytest.raises(EngineError, match="cannot skip 'gate': critical"):
        critical.decided("gate", Decision.SKIP, actor="bob")


def test_failing_mode_skips_a_gate_still_waiting_on_another_branch():
    spec = {"g": {"type": "Manual"}, "x": {"deps": [], "critical": True}, "after_g": {"deps": ["g"]}}
    engine = Engine(make_runbook(spec), headless=True)
    assert engine.get_ready() == ["g", "x"]
    engine.started("g")
    engine.started("x")
    engine.finished("x", AttemptOutcome(ok=False, error="boom"))
    assert engine.state("g") is SKIPPED
    assert engine.reason("g") == "not started: run failed at critical node x"
    assert engine.pending_decision("g") is None
    assert engine.run_state is RunState.NOK


def test_parallel_node_running_when_the_run_starts_failing_may_finish_and_has_its_failure_branch():
    spec = {
        "a": {"critical": True},
        "b": {},
        "b_undo": {"deps": ["b:failure"]},
        "c": {"deps": ["b"]},
    }
    engine = Engine(make_runbook(spec), headless=True)
    engine.started("a")
    engine.started("b")
    engine.finished("a", AttemptOutcome(ok=False, error="boom"))
    assert engine.state("c") is SKIPPED
    assert engine.state("b_undo") is PENDING  # b may still fail
    engine.finished("b", AttemptOutcome(ok=False, error="also boom"))
    assert engine.get_ready() == ["b_undo"]
    drive(engine)
    assert engine.state("b_undo") is OK
    assert engine.run_state is RunState.NOK


def test_interactive_failure_outside_the_failure_branch_stands_once_the_run_fails():
    spec = {"a": {"critical": True}, "b": {}}
    engine = Engine(make_runbook(spec), headless=False, max_retries=0)
    engine.started("a")
    engine.started("b")
    engine.finished("b", AttemptOutcome(ok=False, error="b failed"))
    assert engine.pending_decision("b") == "failure"
    engine.finished("a", AttemptOutcome(ok=False, error="a failed"))
    assert engine.pending_decision("b") is None
    assert engine.state("b") is NOK and engine.reason("b") == "b failed"
    assert engine.run_state is RunState.NOK


# --------------------------------------------------------------------------------------------- abort, resume


def test_abort_then_running_node_may_still_finish_but_nothing_new_starts():
    engine = Engine(make_runbook({"a": {}, "b": {"deps": ["a"]}}), headless=True)
    engine.started("a")
    engine.abort("ops", "ctrl-c")
    assert engine.run_state is RunState.ABORTED
    assert engine.run_reason == "ctrl-c"
    engine.finished("a", AttemptOutcome(ok=True))
    assert engine.state("a") is OK
    assert engine.get_ready() == []
    assert engine.is_done()
    with pytest.raises(EngineError, match="cannot start 'b': run is ABORTED"):
        engine.started("b")


def test_abort_snapshot_restore_resume_continues_and_keeps_finished_nodes():
    spec = {"a": {}, "b": {"deps": ["a"]}, "c": {"deps": ["b"]}}
    engine = Engine(make_runbook(spec), headless=True)
    engine.started("a")
    engine.finished("a", AttemptOutcome(ok=True))
    engine.started("b")
    engine.abort("ops", "ctrl-c")
    snap = json.loads(json.dumps(engine.snapshot()))  # JSON-serialisable
    assert snap["run_state"] == "ABORTED"
    assert snap["nodes"]["b"]["state"] == "RUNNING"

    restored = Engine.restore(make_runbook(spec), snap, headless=True)
    assert restored.run_state is RunState.ABORTED
    assert restored.state("a") is OK and restored.attempts("a") == 1
    assert restored.state("b") is PENDING  # its attempt was interrupted
    assert restored.reason("b") == "interrupted: attempt 1 stopped (its process ended); runs again on resume"
    events = restored.pop_events()
    assert [(e.kind, e.node, e.state) for e in events] == [("node_state", "b", "PENDING")]
    assert restored.get_ready() == []
    with pytest.raises(EngineError, match=r"^only ABORTED runs can be resumed \(run is RUNNING\)$"):
        Engine(make_runbook(spec), headless=True).resume("ops")

    restored.resume("ops")
    assert restored.run_state is RunState.RUNNING
    trace = drive(restored)
    assert trace.started == [("b", 2), ("c", 1)]
    assert restored.run_state is RunState.OK


def test_resume_a_nok_run_is_refused():
    engine = Engine(make_runbook({"a": {"critical": True}}), headless=True)
    drive(engine, outcomes={"a": ["boom"]})
    with pytest.raises(EngineError, match=r"^only ABORTED runs can be resumed \(run is NOK\)$"):
        engine.resume("ops")


def test_headless_gate_aborted_then_approved_after_resume():
    spec = gate_spec(critical=True)
    engine = Engine(make_runbook(spec), headless=True)
    drive(engine)
    engine.decided("gate", Decision.ABORT, actor="policy:fail-closed", comment="no approval given")
    assert engine.run_state is RunState.ABORTED
    assert engine.run_reason == "no approval given"
    assert engine.pending_decision("gate") == "gate"
    with pytest.raises(EngineError, match="cannot approve 'gate': run is ABORTED .resume it first."):
        engine.decided("gate", Decision.APPROVE, actor="alice")

    restored = Engine.restore(make_runbook(spec), engine.snapshot(), headless=True)
    assert restored.state("gate") is WAITING and restored.pending_decision("gate") == "gate"
    restored.resume("alice")
    restored.decided("gate", Decision.APPROVE, actor="alice")
    assert drive(restored).ran == ["deploy", "announce"]
    assert restored.run_state is RunState.OK


def test_restore_keeps_retry_counters_and_failing_mode():
    spec = {"a": {"critical": True}, "r": {"deps": ["a:failure"]}, "b": {"deps": ["a"]}}
    engine = Engine(make_runbook(spec), headless=True)
    engine.started("a")
    engine.finished("a", AttemptOutcome(ok=False, error="boom"))
    engine.started("r")
    engine.abort("ops", "stop")
    restored = Engine.restore(make_runbook(spec), engine.snapshot(), headless=True)
    assert restored.failing == engine.failing
    assert restored.has_failed("a")
    restored.resume("ops")
    assert restored.get_ready() == ["r"]
    drive(restored)
    assert restored.run_state is RunState.NOK


def test_restore_refuses_a_snapshot_of_another_runbook():
    engine = Engine(make_runbook({"a": {}}), headless=True)
    snap = engine.snapshot()
    with pytest.raises(EngineError, match="unknown node 'a'"):
        Engine.restore(make_runbook({"b": {}}), snap, headless=True)
    with pytest.raises(EngineError, match="snapshot version"):
        Engine.restore(make_runbook({"a": {}}), {**snap, "version": 99}, headless=True)


# -------------------------------------------------------------------------------------------------- events


def test_events_are_emitted_in_order_for_every_transition():
    spec = {
        "a": {"retries": 1, "retry_backoff": 2.0},
        "g": {"type": "Manual"},
        "b": {"deps": ["g"], "when": "n"},
    }
    engine = Engine(make_runbook(spec), headless=False, when=when_table({"n": lambda e: False}))
    drive(engine, outcomes={"a": ["flaky", True]})
    engine.decided("g", Decision.APPROVE, actor="alice")
    got = [(e.kind, e.node, e.attempt, e.state, e.reason) for e in engine.pop_events()]
    assert got == [
        ("node_state", "a", 1, "RUNNING", None),
        ("node_state", "a", 1, "PENDING", "automatic retry 1 of 1 in 2s after: flaky"),
        ("retry_scheduled", "a", 1, "PENDING", "flaky"),
        ("node_state", "a", 2, "RUNNING", None),
        ("node_state", "a", 2, "OK", None),
        ("node_state", "g", 1, "WAITING", "waiting for a decision"),
        ("decision", "g", 1, None, None),
        ("node_state", "g", 1, "OK", "approved by alice"),
        ("node_state", "b", None, "SKIPPED", "condition false: n"),
        ("run_state", None, None, "OK", None),
    ]
    assert engine.pop_events() == []


# -------------------------------------------------------------------------------------- acceptance runbook


def deploy_pipeline() -> Runbook:
    """/work/shared/fixtures/runbooks/deploy_pipeline.playbook.toml, by hand (dependencies resolved)."""
    return make_runbook(
        {
            "build_app": {},
            "run_tests": {"deps": ["build_app"], "when": "{{ not SKIP_TESTS }}"},
            "security_scan": {"deps": ["build_app"], "when": "{{ ENVIRONMENT == 'prod' }}", "critical": True},
            "approve_deploy": {"type": "Manual", "deps": ["run_tests", "security_scan"], "critical": True},
            "deploy_application": {
                "deps": ["approve_deploy"],
                "when": "{{ (SKIP_TESTS or has_succeeded('run_tests')) and "
                "(ENVIRONMENT != 'prod' or has_succeeded('security_scan')) }}",
            },
            "health_check": {
                "deps": ["deploy_application"],
                "when": "{{ has_succeeded('deploy_application') }}",
            },
            "rollback": {"deps": ["health_check:failure"]},
            "notify_success": {"type": "Function", "deps": ["health_check:success"]},
            "notify_failure": {"type": "Function", "deps": ["rollback:success"]},
        }
    )


def staging_when(node: Node, engine: Engine) -> bool:
    """The `when` templates of deploy_pipeline, hand-evaluated for ENVIRONMENT=staging, SKIP_TESTS=false."""
    env, skip_tests = "staging", False
    rules = {
        "run_tests": lambda: not skip_tests,
        "security_scan": lambda: env == "prod",
        "deploy_application": lambda: (
            (skip_tests or engine.has_succeeded("run_tests"))
            and (env != "prod" or engine.has_succeeded("security_scan"))
        ),
        "health_check": lambda: engine.has_succeeded("deploy_application"),
    }
    return rules[node.id]()


def test_deploy_pipeline_healthy_path_is_ok():
    engine = Engine(deploy_pipeline(), headless=True, when=staging_when)
    trace = drive(engine, decisions={"approve_deploy": [Decision.APPROVE]})
    assert trace.ran == [
        "build_app",
        "run_tests",
        "approve_deploy",
        "deploy_application",
        "health_check",
        "notify_success",
    ]
    assert engine.reason("security_scan") == "condition false: {{ ENVIRONMENT == 'prod' }}"
    assert engine.state("rollback") is SKIPPED and engine.state("notify_failure") is SKIPPED
    assert engine.run_state is RunState.OK


def test_deploy_pipeline_unhealthy_path_rolls_back_and_notifies_failure():
    engine = Engine(deploy_pipeline(), headless=True, when=staging_when)
    trace = drive(
        engine,
        outcomes={"health_check": ["unhealthy"]},
        decisions={"approve_deploy": [Decision.APPROVE]},
    )
    assert trace.ran[-3:] == ["health_check", "rollback", "notify_failure"]
    assert engine.state("health_check") is SKIPPED
    assert engine.reason("health_check") == "skipped by policy (non-critical failure)"
    assert engine.state("rollback") is OK and engine.state("notify_failure") is OK
    assert engine.state("notify_success") is SKIPPED
    assert engine.reason("notify_success") == "dependency condition not met: health_check:success"
    assert engine.run_state is RunState.OK


def test_deploy_pipeline_without_approval_waits_at_the_gate():
    engine = Engine(deploy_pipeline(), headless=True, when=staging_when)
    trace = drive(engine)
    assert trace.ran == ["build_app", "run_tests", "approve_deploy"]
    assert engine.is_done() and engine.awaiting_decision() == ["approve_deploy"]


# ---------------------------------------------------------------------------------------------- properties


@st.composite
def random_runs(draw):
    n = draw(st.integers(min_value=1, max_value=7))
    spec = {}
    for i in range(n):
        deps = []
        for j in draw(st.lists(st.integers(min_value=0, max_value=max(i - 1, 0)), max_size=3, unique=True)):
            if j < i:
                cond = draw(st.sampled_from(["", ":success", ":failure"]))
                deps.append(f"n{j}{cond}")
        spec[f"n{i}"] = {
            "deps": deps,
            "critical": draw(st.booleans()),
            "type": draw(st.sampled_from(["Command", "Command", "Manual"])),
            "skip": draw(st.integers(min_value=0, max_value=5)) == 0,
            "retries": draw(st.integers(min_value=0, max_value=1)),
        }
    outcomes = {nid: draw(st.lists(st.sampled_from([True, "boom"]), min_size=1, max_size=3)) for nid in spec}
    answers = {nid: [draw(st.sampled_from([Decision.APPROVE, Decision.REJECT]))] for nid in spec}
    headless = draw(st.booleans())
    return spec, outcomes, answers, headless


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_runs())
def test_any_run_ends_ok_or_nok_with_every_node_final_and_consistent(case):
    spec, outcomes, answers, headless = case
    runbook = make_runbook(spec)
    engine = Engine(runbook, headless=headless, max_retries=1)
    for nid, node in runbook.nodes.items():
        if not node.is_gate and not headless:
            answers[nid] = [Decision.SKIP if not node.critical else Decision.RETRY, Decision.SKIP]
    started_with: dict[str, dict[str, NodeState]] = {}
    original_started = engine.started

    def spy(node_id):
        started_with[node_id] = {d.node: engine.state(d.node) for d in runbook.node(node_id).depends_on}
        return original_started(node_id)

    engine.started = spy  # type: ignore[method-assign]
    drive(engine, outcomes=outcomes, decisions=answers)
    assert engine.run_state in (RunState.OK, RunState.NOK)
    assert all(engine.is_final(nid) for nid in runbook.nodes)
    for nid in runbook.nodes:
        if engine.state(nid) is SKIPPED:
            assert engine.reason(nid)
    # every node that started had only final upstream nodes satisfying its conditions
    for nid, ups in started_with.items():
        node = runbook.node(nid)
        for d in node.depends_on:
            assert ups[d.node] in (OK, NOK, SKIPPED)
            if d.condition is DepCondition.PLAIN:
                assert ups[d.node] in (OK, SKIPPED)
        conditional = [d for d in node.depends_on if d.condition is not DepCondition.PLAIN]
        if conditional:
            assert any(
                (d.condition is DepCondition.SUCCESS and ups[d.node] is OK)
                or (d.condition is DepCondition.FAILURE and engine.has_failed(d.node))
                for d in conditional
            )
    # NOK exactly when a critical node failed for good or a gate was rejected
    failed_hard = [nid for nid in runbook.nodes if engine.state(nid) is NOK]
    assert (engine.run_state is RunState.NOK) == bool(failed_hard)
    # replaying the events gives the final states
    last = {}
    for event in engine.pop_events():
        if event.kind == "node_state":
            last[event.node] = event.state
    assert {nid: last.get(nid, "PENDING") for nid in runbook.nodes} == {
        nid: str(engine.state(nid)) for nid in runbook.nodes
    }


# ------------------------------------------------------------------ typed protocol, queries (issue 15 pt 3)


def test_queries_never_change_state_and_the_protocol_is_typed():
    from playbook_nb.domain.engine import EngineSnapshot, EventKind, PendingDecision

    runbook = make_runbook(
        {
            "a": {},
            "off": {"skip": True},
            "cond": {"when": "{{ false }}", "deps": ["a"]},
            "gate": {"type": "Manual", "deps": ["a"]},
            "after": {"deps": ["gate"]},
        }
    )
    engine = Engine(runbook, headless=False, when=lambda node, e: node.id != "cond")
    first = engine.pop_events()  # construction is a transition: the certain skip is applied there
    assert [(e.kind, e.node, e.state) for e in first] == [(EventKind.NODE_STATE, "off", NodeState.SKIPPED)]

    def ask_everything():
        return (
            engine.is_done(),
            engine.run_state,
            {n: engine.state(n) for n in runbook.nodes},
            {n: engine.allowed_decisions(n) for n in runbook.nodes},
            engine.awaiting_decision(),
            engine.snapshot(),
        )

    for step in ("start", "a started", "a finished", "gate started"):
        before = ask_everything()
        assert ask_everything() == before, step  # asking twice gives the same answers ...
        assert engine.pop_events() == [], step  # ... and records nothing
        if step == "start":
            engine.started("a")
        elif step == "a started":
            engine.finished("a", AttemptOutcome(ok=True))
        elif step == "a finished":
            assert engine.get_ready() == ["gate"]  # cond was skipped by the transition
            assert engine.state("cond") is SKIPPED
            engine.started("gate")
        engine.pop_events()

    # is_done is exact after every transition: the gate waits, nothing else can move
    assert engine.is_done() and engine.run_state is RunState.RUNNING
    assert engine.pending_decision("gate") is PendingDecision.GATE
    engine.decided("gate", Decision.APPROVE, actor="ann")
    events = engine.pop_events()
    assert all(isinstance(e.kind, EventKind) for e in events)
    decision = next(e for e in events if e.kind is EventKind.DECISION)
    assert decision.data["pending"] == "gate" and type(decision.data["pending"]) is str  # plain JSON
    assert {type(e.state) for e in events if e.kind is EventKind.NODE_STATE} == {NodeState}

    # the snapshot is a type; its JSON round-trips through restore
    typed = engine.snapshot_of()
    assert isinstance(typed, EngineSnapshot) and typed.nodes["gate"].state is OK
    assert EngineSnapshot.from_json(json.loads(json.dumps(typed.to_json()))) == typed
    restored = Engine.restore(runbook, typed.to_json(), headless=False)
    assert restored.snapshot_of() == typed and restored.pop_events() == []
    with pytest.raises(EngineError, match="unknown pending decision 'later'"):
        bad = typed.to_json()
        bad["nodes"]["gate"]["pending"] = "later"
        Engine.restore(runbook, bad, headless=False)
