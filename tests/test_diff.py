"""`runs diff A B` and `runs diff A --against-last-ok` on real runs of the deploy pipeline."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, run_cli

DEPLOY = FIXTURES / "deploy_pipeline.playbook.toml"
SECRET = FIXTURES / "secret_token.playbook.toml"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Run 1: healthy deploy (terminal). Run 2: unhealthy deploy (headless, papermill)."""
    path = tmp_path_factory.mktemp("diff") / "runs.db"
    common = ["--var", "ENVIRONMENT=staging", "--approve", "approve_deploy", "--state-path", str(path)]
    healthy = run_cli("run", str(DEPLOY), "--var", "HEALTHY=true", *common)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    unhealthy = run_cli("run", str(DEPLOY), "--headless", "--var", "HEALTHY=false", *common, timeout=300)
    assert unhealthy.returncode == 0, unhealthy.stdout + unhealthy.stderr
    return path


def diff_json(db, *args):
    result = run_cli("runs", "diff", *args, "--json", "--state-path", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def by_node(result):
    return {n["node_id"]: n for n in result["nodes"]}


def test_diff_of_healthy_and_unhealthy_runs(db):
    result = diff_json(db, "1", "2")
    assert (result["old"]["id"], result["new"]["id"]) == (1, 2)
    nodes = by_node(result)

    health = nodes["health_check"]
    assert health["status"] == "OK -> SKIPPED (failed)"
    assert health["old"]["state"] == "OK" and health["new"]["state"] == "SKIPPED" and health["new"]["failed"]
    assert health["old"]["exit_codes"] == [0] and health["new"]["exit_codes"] == [1]
    assert health["old"]["attempt_statuses"] == ["OK"] and health["new"]["attempt_statuses"] == ["NOK"]
    assert "-healthy" in health["stdout_diff"]
    assert health["duration_change"] is not None

    rollback = nodes["rollback"]
    assert rollback["status"] == "SKIPPED -> OK"
    assert rollback["old"]["attempts"] == 0 and rollback["new"]["attempts"] == 1
    assert "+rolling back staging" in rollback["stdout_diff"]

    assert nodes["notify_success"]["status"] == "OK -> SKIPPED"
    assert nodes["notify_failure"]["status"] == "SKIPPED -> OK"
    assert not nodes["build_app"]["changed"] and nodes["build_app"]["status"] == "OK -> OK"
    assert set(result["changed_nodes"]) == {"health_check", "rollback", "notify_success", "notify_failure"}

    assert result["variables"] == [{"name": "HEALTHY", "old": True, "new": False, "only_in": None}]
    assert result["runbook"] == {"version_changed": False, "sha256_changed": False, "workflow_changed": False}


def test_against_last_ok_compares_with_the_earlier_ok_run(db):
    result = diff_json(db, "2", "--against-last-ok")
    assert (result["old"]["id"], result["new"]["id"]) == (1, 2)
    assert by_node(result)["health_check"]["status"] == "OK -> SKIPPED (failed)"


def test_table_output(db):
    result = run_cli("runs", "diff", "1", "2", "--state-path", str(db))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "diff run 1 (#1, OK) -> run 2 (#2, OK)" in out
    health = next(line for line in out.splitlines() if "health_check" in line and "->" in line)
    assert "OK -> SKIPPED" in health and "0 -> 1" in health  # status and exit codes
    rollback = next(line for line in out.splitlines() if "rollback" in line and "->" in line)
    assert "SKIPPED -> OK" in rollback
    assert "stdout of health_check:" in out and "-healthy" in out
    assert "HEALTHY" in out and "runbook: same text" in out
    assert "4 node(s) changed" in out


def test_runbook_changes_are_shown(db, tmp_path):
    changed = tmp_path / "deploy.playbook.toml"
    changed.write_text(DEPLOY.read_text().replace('version = "1.0.0"', 'version = "1.1.0"'))
    common = ["--var", "ENVIRONMENT=staging", "--approve", "approve_deploy", "--state-path", str(db)]
    run = run_cli("run", str(changed), *common)
    assert run.returncode == 0, run.stderr
    result = diff_json(db, "1", "3")
    assert result["runbook"]["version_changed"] and result["runbook"]["sha256_changed"]
    assert (result["old"]["runbook_version"], result["new"]["runbook_version"]) == ("1.0.0", "1.1.0")
    table = run_cli("runs", "diff", "1", "3", "--state-path", str(db))
    assert "runbook version: 1.0.0 -> 1.1.0" in table.stdout


def test_secret_variables_stay_masked(tmp_path):
    db = tmp_path / "runs.db"
    for token in ("tok-aaaa1111", "tok-bbbb2222"):
        result = run_cli("run", str(SECRET), "--var", f"API_TOKEN={token}", "--state-path", str(db))
        assert result.returncode == 0, result.stderr
    for extra in ([], ["--json"]):
        result = run_cli("runs", "diff", "1", "2", *extra, "--state-path", str(db))
        assert result.returncode == 0, result.stderr
        assert "tok-aaaa1111" not in result.stdout and "tok-bbbb2222" not in result.stdout
    assert diff_json(db, "1", "2")["variables"] == []  # both masked alike


@pytest.mark.parametrize(
    "args, message",
    [
        (["1"], "give two runs (A B), or one run and --against-last-ok"),
        (["1", "2", "--against-last-ok"], "give two runs"),
        (["1", "--against-last-ok"], "no earlier OK run"),
        (["1", "1"], "compared with itself"),
        (["1", "99"], "no run 99"),
    ],
)
def test_errors(db, args, message):
    result = run_cli("runs", "diff", *args, "--state-path", str(db))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
