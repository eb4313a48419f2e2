"""Per-node failure policy (`on_failure = "abort" | "continue"`) and `rollback = "node"`."""

from __future__ import annotations

import pytest

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.store import Store
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.decisions import GateDecision
from playbook_nb.domain.engine import Decision
from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.model import DepCondition, Dependency
from playbook_nb.domain.validation import parse_runbook

HEAD = '[runbook]\ntitle = "policy"\n'


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "runs.db") as s:
        yield s


def run(text, store, *, headless=True, decide=None):
    runbook = parse_runbook(HEAD + text)
    session = RunSession.start(
        runbook, {}, store, RunOptions(headless=headless, actor="op"), namespace={}, executor=LocalExecutor()
    )
    asked = []

    def decider(session, node_id, kind):
        asked.append((node_id, kind))
        return decide(node_id, kind) if decide else None

    session.drive(decider)
    session.close()
    states = {r.node_id: (r.state, r.reason) for r in store.node_states(session.run_id)}
    return session, states, asked


FLAKY = """
[step]
type = "Command"
command_name = "exit 4"
{policy}

[next]
type = "Command"
command_name = "echo next"
"""


@pytest.mark.parametrize("headless", [True, False])
def test_continue_records_the_failure_and_goes_on_without_asking(store, headless):
    session, states, asked = run(FLAKY.format(policy='on_failure = "continue"'), store, headless=headless)
    assert session.status == "OK"
    assert states["step"][0] == "SKIPPED" and "on_failure = continue" in states["step"][1]
    assert states["next"][0] == "OK"
    assert asked == []  # interactive too: nobody is prompted
    (attempt,) = store.attempts(session.run_id, "step")
    assert attempt.status == "NOK" and attempt.exit_code == 4  # the failure is on record


@pytest.mark.parametrize("headless", [True, False])
def test_abort_stops_the_run_like_a_critical_failure_even_for_a_non_critical_node(store, headless):
    session, states, asked = run(FLAKY.format(policy='on_failure = "abort"'), store, headless=headless)
    assert session.status == "NOK"
    assert states["step"][0] == "NOK" and states["next"][0] == "SKIPPED"
    assert asked == []


def test_without_a_policy_the_old_rules_hold(store):
    session, states, asked = run(FLAKY.format(policy=""), store, headless=False, decide=lambda n, k: None)
    assert asked == [("step", "failure")]  # interactive: the operator is asked
    session, states, _ = run(FLAKY.format(policy=""), store, headless=True)
    assert states["step"][0] == "SKIPPED" and session.status == "OK"  # headless: skip by policy


def test_automatic_retries_come_before_the_policy(store):
    session, states, _ = run(FLAKY.format(policy='on_failure = "abort"\nretries = 2'), store)
    assert len(store.attempts(session.run_id, "step")) == 3 and session.status == "NOK"


ROLLBACK = """
[deploy]
type = "Command"
command_name = "{command}"
critical = true
rollback = "undo"

[verify]
type = "Command"
command_name = "echo verified"

[undo]
type = "Command"
command_name = "echo rolled back"
"""


def test_rollback_runs_only_when_the_node_fails(store):
    session, states, _ = run(ROLLBACK.format(command="exit 1"), store)
    assert session.status == "NOK"
    assert states["deploy"][0] == "NOK" and states["verify"][0] == "SKIPPED" and states["undo"][0] == "OK"
    session, states, _ = run(ROLLBACK.format(command="echo ok"), store)
    assert session.status == "OK"
    assert states["verify"][0] == "OK" and states["undo"][0] == "SKIPPED"


def test_rollback_is_a_failure_dependency_and_replaces_the_implicit_one():
    runbook = parse_runbook(HEAD + ROLLBACK.format(command="echo"))
    assert runbook.node("undo").depends_on == [Dependency("deploy", DepCondition.FAILURE)]


def test_rollback_with_explicit_dependencies_and_shared_by_two_nodes():
    runbook = parse_runbook(
        HEAD
        + """
[a]
type = "Command"
command_name = "echo a"
rollback = "undo"
[b]
type = "Command"
command_name = "echo b"
rollback = "undo"
[undo]
type = "Command"
command_name = "echo undo"
depends_on = ["a:failure"]
"""
    )
    assert {str(d) for d in runbook.node("undo").depends_on} == {"a:failure", "b:failure"}


@pytest.mark.parametrize(
    "body, message",
    [
        (
            '[a]\ntype = "Command"\ncommand_name = "x"\nrollback = "nope"\n',
            "rollback node 'nope' does not exist",
        ),
        ('[a]\ntype = "Command"\ncommand_name = "x"\nrollback = "a"\n', "cannot be its own rollback"),
        ('[a]\ntype = "Command"\ncommand_name = "x"\non_failure = "retry"\n', "expected abort or continue"),
        (
            '[a]\ntype = "Command"\ncommand_name = "x"\ncritical = true\non_failure = "continue"\n',
            "contradicts critical = true",
        ),
        (
            '[a]\ntype = "Command"\ncommand_name = "x"\nrollback = "u"\n[u]\ntype = "Command"\ncommand_name = "y"\n'
            'depends_on = ["a"]\n',
            "is the rollback of 'a' but depends on 'a'",
        ),
    ],
)
def test_policy_and_rollback_validation(body, message):
    with pytest.raises(RunbookError, match=message):
        parse_runbook(HEAD + body)


def test_interactive_critical_failure_with_rollback_after_operator_aborts_retrying(store):
    # interactive, no policy: the operator retries once then gives up -> still NOK, rollback ran
    answers = iter([Decision.RETRY])

    def decide(node_id, kind):
        choice = next(answers, None)
        return GateDecision(choice, "op", None) if choice else None

    session, states, asked = run(ROLLBACK.format(command="exit 1"), store, headless=False, decide=decide)
    assert asked[0] == ("deploy", "failure")
    assert len(store.attempts(session.run_id, "deploy")) == 2
