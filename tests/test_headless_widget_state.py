"""`run --headless --widget-state`: the executed notebook keeps the final graph as saved widget state (for
JupyterLab) beside the static SVG (for viewers without widgets); without the flag only the SVG is there."""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.conftest import FIXTURES, run_cli

pytest.importorskip("ipycytoscape")

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def run_headless(tmp_path, *extra):
    out = tmp_path / "out.ipynb"
    result = run_cli(
        "run",
        str(FIXTURES / "deploy_pipeline.playbook.toml"),
        "--headless",
        "--var",
        "ENVIRONMENT=staging",
        "--approve",
        "approve_deploy",
        "--state-path",
        str(tmp_path / "runs.db"),
        "-o",
        str(out),
        *extra,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return nbformat.read(out, as_version=4)


def summary_outputs(nb):
    summary = next(c for c in nb.cells if c.metadata.get("playbook_nb", {}).get("role") == "summary")
    return [output.get("data", {}) for output in summary.outputs]


def test_widget_state_of_the_final_graph_is_saved(tmp_path):
    nb = run_headless(tmp_path, "--widget-state")
    outputs = summary_outputs(nb)
    assert any(
        "image/png" in data and "<svg" in data["image/svg+xml"] for data in outputs
    )  # the static picture
    assert any(WIDGET_VIEW in data for data in outputs)
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    saved = json.dumps(state)
    # every node of the runbook is in the saved graph, with its final state
    for node_id in ("build_app", "approve_deploy", "health_check", "rollback", "notify_success"):
        assert f'"id": "{node_id}"' in saved
    assert '"state": "OK"' in saved and '"state": "SKIPPED"' in saved
    # a record, not a cockpit: a banner says so, and a node's recorded attempts are its click tooltip
    assert "<b>Record</b>: run 1 ended OK" in saved
    graph = next(m["state"] for m in state.values() if m["model_name"] == "CytoscapeModel")
    assert graph["tooltip_source"] == "record"
    assert '"record": "<div class=\\"pb-record-tip\\"' in saved


def test_without_the_flag_only_the_static_picture(tmp_path):
    nb = run_headless(tmp_path)
    outputs = summary_outputs(nb)
    assert any("image/png" in data and "<svg" in data["image/svg+xml"] for data in outputs)
    assert not any(WIDGET_VIEW in data for data in outputs)
    assert WIDGET_STATE not in nb.metadata.get("widgets", {})
