"""Resuming from the terminal with other variable values than the run recorded (issue 13): refused in one line
unless `--allow-changed-vars`; then the change is an event and every approved gate waits again, and `show` and
the HTML export say what each attempt actually ran (from the record, never a re-rendering)."""

from __future__ import annotations

import json

from conftest import db_rows, run_cli, write_runbook

BODY = """
[prepare]
type = "Command"
command_name = "echo preparing {{ TARGET }}"

[approve_wipe]
type = "Manual"
prompt_after = "Wipe {{ TARGET }}?"
critical = true

[last_check]
type = "Manual"
prompt_after = "Really?"
critical = true

[wipe]
type = "Command"
command_name = "echo wiping {{ TARGET }}"
"""


def states(db, run_id):
    rows = db_rows(db, "SELECT node_id, state FROM node_states WHERE run_id = ?", (run_id,))
    return {r["node_id"]: r["state"] for r in rows}


def test_resume_with_a_changed_variable_refused_then_allowed_reopens_the_approved_gate(tmp_path):
    runbook = write_runbook(
        tmp_path, "wipe", "wipe drill", BODY, variables='TARGET = { default = "staging" }'
    )
    db = tmp_path / "runs.db"
    common = ("--state-path", str(db), "--actor", "ci")
    first = run_cli("run", str(runbook), "--approve", "approve_wipe", *common)
    assert first.returncode == 3, first.stderr  # ABORTED at last_check (fail closed)
    assert states(db, 1) == {
        "prepare": "OK",
        "approve_wipe": "OK",
        "last_check": "WAITING",
        "wipe": "PENDING",
    }

    refused = run_cli("resume", str(runbook), "1", "--var", "TARGET=prod", "--approve", "last_check", *common)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "run 1 was recorded with other variable values (TARGET='staging' -> 'prod')" in refused.stderr
    assert "--allow-changed-vars" in refused.stderr and "Traceback" not in refused.stderr
    assert db_rows(db, "SELECT status FROM runs WHERE id = 1")[0]["status"] == "ABORTED"
    assert not db_rows(db, "SELECT * FROM attempts WHERE node_id = 'wipe'")

    allowed = run_cli(
        "resume", str(runbook), "1", "--var", "TARGET=prod", "--approve", "last_check", "--allow-changed-vars",
        *common,
    )  # fmt: skip
    assert allowed.returncode == 3, allowed.stderr  # the approval given for staging no longer counts
    assert states(db, 1)["approve_wipe"] == "WAITING" and states(db, 1)["wipe"] == "PENDING"
    assert not db_rows(db, "SELECT * FROM attempts WHERE node_id = 'wipe'")
    (event,) = db_rows(db, "SELECT payload FROM events WHERE kind = 'variables_changed'")
    payload = json.loads(event["payload"])
    assert payload["changes"] == {"TARGET": {"from": "staging", "to": "prod"}}
    assert payload["gates_reopened"] == ["approve_wipe"] and payload["actor"] == "ci"

    # The gate behind it waits its turn again (PENDING), so it is asked after approve_wipe, not before.
    assert states(db, 1)["last_check"] == "PENDING"
    # The next resume compares with the values now recorded (prod): no flag needed, and once both gates are
    # approved for prod the wipe runs on prod.
    done = run_cli(
        "resume", str(runbook), "1", "--approve", "approve_wipe", "--approve", "last_check", *common
    )
    assert done.returncode == 0, done.stderr
    shown = run_cli("show", "1", "--state-path", str(db))
    assert "ran: prepare attempt 1: echo preparing staging" in shown.stdout  # as it ran, before the change
    assert "ran: wipe attempt 1: echo wiping prod" in shown.stdout
    as_json = json.loads(run_cli("show", "1", "--json", "--state-path", str(db)).stdout)
    ran = {a["node"]: a["ran"] for a in as_json["attempts"]}
    assert ran == {"prepare": {"command": "echo preparing staging"}, "wipe": {"command": "echo wiping prod"}}
    html = tmp_path / "run1.html"
    exported = run_cli("export", "1", "--state-path", str(db), "--html", str(html))
    assert exported.returncode == 0, exported.stderr
    text = html.read_text()
    assert "echo preparing staging" in text and "echo wiping prod" in text
    assert "echo preparing prod" not in text  # never re-rendered with the run's current variables
