"""The dependency graph: edges and conditions, deterministic order, layers, and graph errors."""

from __future__ import annotations

import random

import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from playbook_nb.app.inputs import load_runbook
from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.model import DepCondition
from playbook_nb.domain.parsing import parse_structure
from playbook_nb.domain.plan import build_plan, layers, leaves, roots, topological_order
from playbook_nb.domain.validation import parse_runbook

META = '[runbook]\ntitle = "T"\n'


def node(node_id: str, depends_on: str | None = None) -> str:
    line = f"depends_on = {depends_on}\n" if depends_on is not None else ""
    return f'\n[{node_id}]\ntype = "Command"\ncommand_name = "echo {node_id}"\n{line}'


def test_graph_has_node_and_condition_attributes():
    runbook = load_runbook(FIXTURES / "deploy_pipeline.playbook.toml")
    graph = build_plan(runbook)
    assert graph.nodes["rollback"]["node"] is runbook.nodes["rollback"]
    assert graph.edges["health_check", "rollback"]["condition"] is DepCondition.FAILURE
    assert graph.edges["health_check", "notify_success"]["condition"] is DepCondition.SUCCESS
    assert graph.edges["build_app", "run_tests"]["condition"] is DepCondition.PLAIN
    assert roots(graph) == ["build_app"]
    assert leaves(graph) == ["notify_success", "notify_failure"]


def test_topological_order_breaks_ties_by_declaration():
    runbook = parse_runbook(
        META + node("z", "[]") + node("y", "[]") + node("x", '["y"]') + node("w", '["z"]')
    )
    assert topological_order(runbook) == ["z", "y", "x", "w"]


def test_layers_are_topological_generations_in_declaration_order():
    runbook = load_runbook(FIXTURES / "parallel_fanout.playbook.toml")
    assert layers(runbook) == [["start"], ["check_a", "check_b", "check_c", "check_d"], ["merge"]]


def test_cycle_names_the_nodes_on_it():
    with pytest.raises(RunbookError) as info:
        parse_runbook(META + node("a", '["c"]') + node("b", '["a"]') + node("c", '["b"]') + node("d"))
    assert str(info.value) == "Runbook contains a cycle: a -> b -> c -> a"


def test_cycle_fixture_message():
    with pytest.raises(RunbookError) as info:
        load_runbook(FIXTURES / "invalid" / "cycle.playbook.toml")
    assert str(info.value).endswith("cycle.playbook.toml: Runbook contains a cycle: a -> b -> a")


def test_unknown_dependency_with_suggestion():
    with pytest.raises(RunbookError) as info:
        parse_runbook(META + node("build") + node("deploy", '["biuld"]'), "r.toml")
    assert str(info.value) == "r.toml: node 'deploy' depends on unknown node 'biuld' (did you mean 'build'?)"
    with pytest.raises(RunbookError, match="node 'a' depends on unknown node 'ghost'$"):
        parse_runbook(META + node("a", '["ghost"]'))


def test_self_dependency():
    with pytest.raises(RunbookError, match="node 'a' depends on itself"):
        parse_runbook(META + node("a", '"a:success"'))


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=14), st.randoms(use_true_random=False), st.data())
def test_random_dags_in_random_order_sort_consistently(size, rnd: random.Random, data):
    # A DAG over 0..size-1 (edges only from lower to higher rank), declared in a random order.
    edges = {
        (u, v) for v in range(size) for u in range(v) if data.draw(st.booleans(), label=f"edge {u}->{v}")
    }
    declared = list(range(size))
    rnd.shuffle(declared)
    text = META
    for v in declared:
        upstream = [
            f'"n{u}:{rnd.choice(["success", "failure"])}"' if rnd.random() < 0.3 else f'"n{u}"'
            for u in sorted(u for (u, w) in edges if w == v)
        ]
        text += node(f"n{v}", "[" + ", ".join(upstream) + "]")
    runbook = parse_runbook(text)
    order = topological_order(runbook)
    assert sorted(order) == sorted(f"n{v}" for v in range(size))
    position = {n: i for i, n in enumerate(order)}
    for u, v in edges:
        assert position[f"n{u}"] < position[f"n{v}"]
    assert order == topological_order(parse_structure(text))  # deterministic
    flat = [n for layer in layers(runbook) for n in layer]
    assert sorted(flat) == sorted(order)
