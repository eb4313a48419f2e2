"""Rehearsal (`playbook-nb test`): fixtures answer for the executors, nothing runs, expected states are checked."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FIXTURES, REPO, run_cli

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.app.rehearsal import rehearse
from playbook_nb.domain.validation import parse_runbook

PACK = REPO / "examples" / "acceptance" / "deploy_pipeline"
DEPLOY = FIXTURES / "deploy_pipeline.playbook.toml"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_nothing_executes_in_a_rehearsal(tmp_path):
    marker = tmp_path / "created-by-the-command"
    book = write(
        tmp_path / "touch.playbook.toml",
        f'[runbook]\ntitle = "touch"\n[touch]\ntype = "Command"\ncommand_name = "touch {marker}"\n'
        "[py]\ntype = \"Python\"\ncode = \"open('/nonexistent/x', 'w')\"\n",
    )
    fixture = write(tmp_path / "f.toml", '[expected]\nrun = "OK"\ntouch = "OK"\npy = "OK"\n')
    done = run_cli("test", str(book), "--fixture", str(fixture))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not marker.exists()
    assert "PASS" in done.stdout


def test_mismatches_are_listed_and_exit_1(tmp_path):
    fixture = write(
        tmp_path / "f.toml",
        '[variables]\nENVIRONMENT = "staging"\n[nodes.approve_deploy]\ndecision = "approve"\n'
        '[nodes.health_check]\nstatus = "nok"\n[expected]\nrun = "NOK"\nrollback = "SKIPPED"\n',
    )
    done = run_cli("test", str(DEPLOY), "--fixture", str(fixture))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "✗ Expected: run (NOK expected, got OK)" in lines
    assert "✗ Expected: rollback (SKIPPED expected, got OK)" in lines and lines[-1] == "FAIL"


def test_invalid_fixture_exits_2_naming_the_problem(tmp_path):
    fixture = write(tmp_path / "f.toml", '[nodes.nope]\nstatus = "ok"\n')
    done = run_cli("test", str(DEPLOY), "--fixture", str(fixture))
    assert done.returncode == 2 and "node 'nope' is not in runbook" in done.stderr
    bad_state = write(tmp_path / "g.toml", '[expected]\nbuild_app = "GREAT"\n')
    assert run_cli("test", str(DEPLOY), "--fixture", str(bad_state)).returncode == 2


def test_outputs_attempt_sequences_and_json_fixtures():
    runbook = parse_runbook(
        """[runbook]
title = "disk"
[check]
type = "Command"
command_name = "df -h /"
outputs = { used_pct = 'regex:(\\d+)% used' }
retries = 1
[clean]
type = "Command"
command_name = "rm -rf /tmp/cache"
when = "{{ steps.check.outputs.used_pct | int > 90 }}"
[report]
type = "Command"
command_name = "echo {{ steps.check.outputs.used_pct }}"
outputs = { shown = "stdout" }
"""
    )
    fixture = json.loads(
        '{"nodes": {"check": {"status": ["nok", "ok"], "stdout": "/dev/sda1 95% used"},'
        ' "report": {"outputs": {"shown": "95"}}},'
        ' "expected": {"run": "OK", "clean": "OK", "outputs": {"check": {"used_pct": "95"}}}}'
    )
    result = rehearse(runbook, fixture, executor=LocalExecutor())
    assert result.ok, result.mismatches
    assert result.executed == ["check", "check", "clean", "report"]
    low = dict(fixture, nodes={"check": {"stdout": "/dev/sda1 12% used"}})
    result = rehearse(runbook, low, executor=LocalExecutor())
    assert [m.what for m in result.mismatches] == ["clean", "check.outputs.used_pct"]


def test_acceptance_pack_runs_every_case(tmp_path):
    done = run_cli("test", "--pack", str(PACK), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = {c["name"]: c for c in json.loads(done.stdout)}
    assert set(cases) == {"healthy", "unhealthy-rollback", "gate-rejected", "prod-scan-fails"}
    assert cases["unhealthy-rollback"]["states"]["rollback"] == "OK"
    assert cases["gate-rejected"]["run"] == "NOK"


def test_a_pack_with_a_wrong_expectation_fails_and_rehearsals_stay_out_of_the_real_index(tmp_path):
    pack = tmp_path / "pack"
    (pack / "fixtures").mkdir(parents=True)
    write(
        pack / "acceptance.toml",
        f'runbook = "{DEPLOY}"\n[[case]]\nname = "wrong"\nfixture = "fixtures/x.toml"\n',
    )
    write(
        pack / "fixtures" / "x.toml",
        '[variables]\nENVIRONMENT = "dev"\n[nodes.approve_deploy]\ndecision = "approve"\n[expected]\nrun = "NOK"\n',
    )
    db = tmp_path / "runs.db"
    done = run_cli("test", "--pack", str(pack), env={"PLAYBOOK_DB_PATH": str(db)})
    assert done.returncode == 1 and "0/1 cases passed" in done.stdout
    assert not db.exists()
    assert run_cli("test", "--pack", str(tmp_path / "missing")).returncode == 2
