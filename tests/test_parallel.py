"""Parallel branches: independent Command/Function nodes overlap in time (checked in the index); gates and
Python nodes stay one at a time; every engine call and store write stays on the driving thread."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import FIXTURES, run_cli

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.store import Store
from playbook_nb.app.config import parallel_workers
from playbook_nb.app.inputs import load_runbook
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.validation import parse_runbook

FANOUT = FIXTURES / "parallel_fanout.playbook.toml"
BRANCHES = ("check_a", "check_b", "check_c", "check_d")


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "runs.db") as s:
        yield s


def intervals(store, run_id, nodes):
    rows = {a.node_id: a for a in store.attempts(run_id) if a.node_id in nodes}
    return {n: (rows[n].started_at.timestamp(), rows[n].ended_at.timestamp()) for n in nodes}


def run(runbook, store, parallel, **kw):
    session = RunSession.start(
        runbook,
        {},
        store,
        RunOptions(headless=True, parallel=parallel, **kw),
        namespace={},
        executor=LocalExecutor(),
    )
    session.drive(lambda *_: None)
    session.close()
    return session


def test_fanout_branches_really_overlap_in_time_per_the_index(store):
    began = time.monotonic()
    session = run(load_runbook(FANOUT), store, parallel=4)
    elapsed = time.monotonic() - began
    assert session.status == "OK"
    spans = intervals(store, session.run_id, BRANCHES)
    latest_start = max(start for start, _ in spans.values())
    earliest_end = min(end for _, end in spans.values())
    assert latest_start < earliest_end, spans  # all four were running at one moment
    merge = intervals(store, session.run_id, ["merge"])["merge"]
    assert merge[0] >= max(end for _, end in spans.values())  # the join waited for every branch
    assert elapsed < 3.0  # about one branch (1s), not four


def test_parallel_one_runs_sequentially(store):
    session = run(load_runbook(FANOUT), store, parallel=1)
    spans = sorted(intervals(store, session.run_id, BRANCHES).values())
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end


def test_the_limit_caps_concurrency(store):
    session = run(load_runbook(FANOUT), store, parallel=2)
    spans = intervals(store, session.run_id, BRANCHES).values()
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    assert peak == 2


def test_engine_and_store_are_touched_only_by_the_driving_thread(store, monkeypatch):
    driver = threading.get_ident()
    seen = set()
    for name in ("finish_attempt", "start_attempt", "set_node_state", "append_event"):
        original = getattr(store, name)

        def spy(*args, _original=original, **kwargs):
            seen.add(threading.get_ident())
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, spy)
    session = run(load_runbook(FANOUT), store, parallel=4)
    assert session.status == "OK" and seen == {driver}


def test_gates_and_python_nodes_run_one_at_a_time_on_the_driving_thread(store):
    runbook = parse_runbook(
        """[runbook]
title = "mixed"
[root]
type = "Command"
command_name = "echo root"
[slow]
type = "Command"
command_name = "sleep 0.6"
depends_on = "root"
[py1]
type = "Python"
code = "import threading, time\\nt1 = (threading.get_ident(), time.time()); time.sleep(0.2); t1e = time.time()"
depends_on = "root"
[py2]
type = "Python"
code = "import threading, time\\nt2 = (threading.get_ident(), time.time()); time.sleep(0.2); t2e = time.time()"
depends_on = "root"
[gate]
type = "Manual"
depends_on = "root"
[end]
type = "Command"
command_name = "echo end"
depends_on = "*"
"""
    )
    namespace: dict = {}
    session = RunSession.start(
        runbook,
        {},
        store,
        RunOptions(headless=True, parallel=4, approvals={"gate": "approve"}),
        namespace=namespace,
        executor=LocalExecutor(),
    )
    session.drive(lambda *_: None)
    session.close()
    assert session.status == "OK"
    assert namespace["t1"][0] == namespace["t2"][0] == threading.get_ident()
    assert namespace["t2"][1] >= namespace["t1e"] or namespace["t1"][1] >= namespace["t2e"]
    spans = intervals(store, session.run_id, ["slow", "py1"])
    assert spans["py1"][0] < spans["slow"][1]  # the Command ran in the background meanwhile


def test_failure_in_one_branch_lets_running_siblings_finish_and_records_them(store):
    runbook = parse_runbook(
        """[runbook]
title = "branch fails"
[a]
type = "Command"
command_name = "sleep 0.3; exit 3"
critical = true
depends_on = []
[b]
type = "Command"
command_name = "sleep 0.6; echo b"
depends_on = []
[after]
type = "Command"
command_name = "echo after"
depends_on = ["a", "b"]
"""
    )
    session = run(runbook, store, parallel=2)
    states = {r.node_id: r.state for r in store.node_states(session.run_id)}
    assert session.status == "NOK"
    assert states == {"a": "NOK", "b": "OK", "after": "SKIPPED"}
    assert {a.node_id: a.status for a in store.attempts(session.run_id)} == {"a": "NOK", "b": "OK"}


def test_config_values_map_to_worker_counts():
    assert [parallel_workers(v) for v in (False, True, None, 1, 6)] == [1, 4, 1, 1, 6]


def test_cli_parallel_flag_and_config(tmp_path):
    db = tmp_path / "runs.db"
    began = time.monotonic()
    done = run_cli("run", str(FANOUT), "--parallel", "4", "--state-path", str(db))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began < 4.5
    with Store.open(db) as s:
        (r,) = s.list_runs()
        assert r.params["parallel"] == 4
    config = tmp_path / "playbook.toml"
    config.write_text("[execution]\nparallel = 3\n")
    from_config = run_cli("run", str(FANOUT), "--state-path", str(db), env={"PLAYBOOK_CONFIG": str(config)})
    assert from_config.returncode == 0, from_config.stderr
    with Store.open(db) as s:
        assert s.list_runs()[0].params["parallel"] == 3


def test_headless_notebook_cells_start_siblings_in_background_and_each_cell_shows_its_own_output(tmp_path):
    import nbformat

    db, out = tmp_path / "runs.db", tmp_path / "out.ipynb"
    done = run_cli(
        "run", str(FANOUT), "--headless", "--parallel", "4", "--state-path", str(db), "-o", str(out)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with Store.open(db) as s:
        (r,) = s.list_runs()
        spans = intervals(s, r.id, BRANCHES)
    assert max(a for a, _ in spans.values()) < min(b for _, b in spans.values())
    shown = {}
    for cell in nbformat.read(out, as_version=4).cells:
        if cell.cell_type == "code" and cell.source.startswith("%playbook_node"):
            shown[cell.source.split()[1]] = "".join(o.get("text", "") for o in cell.outputs)
    for node_id, letter in zip(BRANCHES, "abcd", strict=True):
        lines = shown[node_id].split()
        assert lines[0] == letter and f"{node_id}: OK" in shown[node_id]
        assert not ({"a", "b", "c", "d"} - {letter}) & set(lines)  # no sibling output under this cell
