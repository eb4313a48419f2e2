"""Replay (`playbook-nb replay RUN`): really re-executes with the recorded variables and decisions."""

from __future__ import annotations

import json

from conftest import FIXTURES, run_cli

from playbook_nb.adapters.store import Store

DEPLOY = FIXTURES / "deploy_pipeline.playbook.toml"
SECRET = FIXTURES / "secret_token.playbook.toml"


def test_identical_replay_of_a_headless_run_with_an_approved_gate(tmp_path):
    db = tmp_path / "runs.db"
    first = run_cli(
        "run", str(DEPLOY), "--var", "ENVIRONMENT=staging", "--approve", "approve_deploy", "--actor", "alice",
        "--state-path", str(db),
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    done = run_cli("replay", "1", "--state-path", str(db))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REPLAY VERIFIED" in done.stdout
    with Store.open(db) as store:
        replayed = store.get_run(2)
        assert replayed.params["replay_of"] == 1
        assert replayed.variables["ENVIRONMENT"] == "staging"
        (decision,) = store.decisions(2)
        assert (decision.node_id, decision.decision) == ("approve_deploy", "approve")
        assert decision.actor == "replay of run 1: alice"


def test_a_rejected_gate_is_rejected_again(tmp_path):
    db = tmp_path / "runs.db"
    run_cli(
        "run",
        str(DEPLOY),
        "--var",
        "ENVIRONMENT=dev",
        "--approve",
        "approve_deploy=reject",
        "--state-path",
        str(db),
    )
    done = run_cli("replay", "1", "--state-path", str(db), "--json")
    assert done.returncode == 0, done.stdout
    doc = json.loads(done.stdout)
    assert doc["identical"] and doc["status"] == {"original": "NOK", "replay": "NOK"}


def test_deviations_are_reported_with_exit_1(tmp_path):
    db = tmp_path / "runs.db"
    flag = tmp_path / "healthy"
    flag.write_text("yes")
    book = tmp_path / "drift.playbook.toml"
    book.write_text(
        f"""[runbook]
title = "drift"
[probe]
type = "Command"
command_name = "cat {flag} && echo 'load 3'"
outputs = {{ load = 'regex:load (\\d+)' }}
[fix]
type = "Command"
command_name = "echo fixing"
depends_on = ["probe:failure"]
[done]
type = "Command"
command_name = "echo done"
depends_on = ["probe:success"]
"""
    )
    assert run_cli("run", str(book), "--state-path", str(db)).returncode == 0
    flag.unlink()  # the world changed: the probe now fails
    done = run_cli("replay", "1", "--state-path", str(db), "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    what = {d["what"] for d in doc["deviations"]}
    assert {"node 'probe' state", "node 'probe' exit_code", "node 'probe' outputs", "path"} <= what
    assert "node 'fix' state" in what and "node 'done' state" in what
    probe = doc["nodes"]["probe"]
    assert probe["original"]["outputs"] == {"load": "3"} and probe["replay"]["outputs"] == {}


def test_secrets_must_be_given_again_or_replay_refuses(tmp_path):
    db = tmp_path / "runs.db"
    first = run_cli("run", str(SECRET), "--var", "API_TOKEN=tok-123", "--state-path", str(db))
    assert first.returncode == 0, first.stdout + first.stderr
    refused = run_cli("replay", "1", "--state-path", str(db))
    assert refused.returncode == 2
    assert "API_TOKEN" in refused.stderr and "PLAYBOOK_SECRET_API_TOKEN" in refused.stderr
    with Store.open(db) as store:
        assert len(store.list_runs()) == 1  # refused before anything ran
    from_env = run_cli("replay", "1", "--state-path", str(db), env={"PLAYBOOK_SECRET_API_TOKEN": "tok-123"})
    assert from_env.returncode == 0, from_env.stdout + from_env.stderr
    from_var = run_cli("replay", "1", "--state-path", str(db), "--var", "API_TOKEN=tok-123")
    assert from_var.returncode == 0
