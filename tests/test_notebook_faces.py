"""The committed example notebooks (`notebooks/`) stay in step with the runbooks and the compiler.

A compiled notebook that no longer matches what `playbook-nb compile` makes would mislead the first person who
opens it; these tests fail instead, and `notebooks/regenerate.sh` fixes them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import REPO, VALID_RUNBOOKS

from playbook_nb.adapters.notebook.compile import compile_runbook
from playbook_nb.app.inputs import load_runbook

NOTEBOOKS = REPO / "notebooks"
REGENERATE = "run notebooks/regenerate.sh"


def _cells(nb) -> list[tuple[str, str, dict]]:
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


# The one deliberate difference (notebooks/regenerate.sh makes it): the project's deploy example marks
# health_check critical, so its rollback drill ends NOK; the acceptance fixture keeps the seed's behaviour.
HEALTH_CHECK = '[health_check]\ntype = "Command"\n'
CRITICAL_HEALTH_CHECK = (
    HEALTH_CHECK + "critical = true  # a failed health check fails the run, after the rollback\n"
)


def example_text(fixture: Path) -> str:
    text = fixture.read_text()
    if fixture.name == "deploy_pipeline.playbook.toml":
        assert HEALTH_CHECK in text
        return text.replace(HEALTH_CHECK, CRITICAL_HEALTH_CHECK, 1)
    return text


def test_every_acceptance_runbook_has_an_identical_copy_here():
    assert VALID_RUNBOOKS
    for fixture in VALID_RUNBOOKS:
        copy = NOTEBOOKS / fixture.name
        assert copy.exists(), f"{copy.name} missing: {REGENERATE}"
        assert copy.read_text() == example_text(fixture), (
            f"{copy.name} differs from its fixture: {REGENERATE}"
        )


@pytest.mark.parametrize("runbook", sorted(NOTEBOOKS.glob("*.playbook.toml")), ids=lambda p: p.name)
def test_committed_notebook_is_what_the_compiler_makes_now(runbook: Path):
    committed_path = NOTEBOOKS / runbook.name.replace(".playbook.toml", ".ipynb")
    assert committed_path.exists(), f"{committed_path.name} missing: {REGENERATE}"
    committed = nbformat.read(committed_path, as_version=4)
    fresh = compile_runbook(load_runbook(runbook), source_path=runbook.name)
    assert [c[0] for c in _cells(committed)] == [c[0] for c in _cells(fresh)], REGENERATE
    for old, new in zip(_cells(committed), _cells(fresh), strict=True):
        assert old == new, f"{committed_path.name}: cell differs from a fresh compile: {REGENERATE}"
    meta_old, meta_new = committed.metadata["playbook_nb"], fresh.metadata["playbook_nb"]
    for key in ("runbook_text", "runbook_sha256", "title", "version", "source_path"):
        assert meta_old[key] == meta_new[key], f"{committed_path.name}: metadata {key} is stale: {REGENERATE}"
    assert all(not c.get("outputs") for c in committed.cells if c.cell_type == "code")  # no stray outputs
    assert "/home/" not in committed_path.read_text() and "/work/" not in committed_path.read_text()


def test_executed_example_is_a_finished_run_of_the_committed_runbook():
    path = NOTEBOOKS / "deploy_pipeline.executed.ipynb"
    nb = nbformat.read(path, as_version=4)
    runbook = load_runbook(NOTEBOOKS / "deploy_pipeline.playbook.toml")
    assert nb.metadata["playbook_nb"]["runbook_sha256"] == runbook.sha256, REGENERATE
    fresh = compile_runbook(runbook, source_path="deploy_pipeline.playbook.toml")
    node_sources = {
        c.metadata["playbook_nb"]["node"]: c.source
        for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("playbook_nb", {}).get("role") == "node"
    }
    expected = {
        c.metadata["playbook_nb"]["node"]: c.source
        for c in fresh.cells
        if c.cell_type == "code" and c.metadata.get("playbook_nb", {}).get("role") == "node"
    }
    assert node_sources == expected, REGENERATE
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None
            assert not [o for o in cell.outputs if o["output_type"] == "error"]
    text = path.read_text()
    assert "deploying myapp to staging" in text
    assert "Run 1 (#1): OK" in text
    assert "/home/" not in text and "/work/" not in text and "/root" not in text
