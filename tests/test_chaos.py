"""Fault injection (issue 24 point 7): a chain of short commands cut with SIGKILL at points chosen by observed
state (a node's command seen running; between a command's end and its record; in the middle of a notebook
save), in the terminal and headless faces. After each cut no process of the run is left after 2 s, the index
is intact, and the resumed run ends OK with every node OK exactly once and its event chain intact. The same
trials, more of them at random nodes, are the chaos benchmark (benchmarks/chaos.py)."""

from __future__ import annotations

import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from chaos import run_trial

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("face", "kind", "node"),
    [
        ("terminal", "command", 2),
        ("terminal", "record", 3),
        ("headless", "command", 2),
        ("headless", "record", 3),
        ("headless", "save", 12),
    ],
    ids=lambda v: str(v),
)
def test_killed_run_leaves_nothing_behind_and_resumes_to_ok(tmp_path, face, kind, node):
    trial = run_trial(tmp_path, face, kind, node)
    assert trial.orphans == 0, f"{trial.name}: {trial.orphans} processes outlived their driver"
    assert trial.doubled == 0, f"{trial.name}: nodes run twice: {trial.detail}"
    assert trial.recovered, f"{trial.name}: {trial.detail}"
    assert trial.detail != "killed before the run was recorded", trial.name  # the cut landed inside a run
