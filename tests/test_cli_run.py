"""The terminal face end to end: `playbook-nb run / resume / set-status / show / runs list / info`.

Every test runs the real CLI in a subprocess (no TTY: stdin is /dev/null) against a real SQLite index, and
asserts what a user sees: exit codes, stderr lines, node and run states, rows in the index.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import DEPLOY, FIXTURES, HEADER, HEALTHY_STATES, db_rows, run_cli, write_runbook


# ---------------------------------------------------------------------------------------- the index
def run_row(db: Path, run_id: int) -> sqlite3.Row:
    (row,) = db_rows(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
    return row


def node_states(db: Path, run_id: int) -> dict[str, tuple[str, int, str | None]]:
    rows = db_rows(db, "SELECT node_id, state, attempts, reason FROM node_states WHERE run_id = ?", (run_id,))
    return {r["node_id"]: (r["state"], r["attempts"], r["reason"]) for r in rows}


def states(db: Path, run_id: int) -> dict[str, str]:
    return {node: value[0] for node, value in node_states(db, run_id).items()}


def attempts(db: Path, run_id: int, node_id: str) -> list[sqlite3.Row]:
    return db_rows(
        db, "SELECT * FROM attempts WHERE run_id = ? AND node_id = ? ORDER BY attempt", (run_id, node_id)
    )


def decisions(db: Path, run_id: int) -> list[sqlite3.Row]:
    return db_rows(db, "SELECT * FROM decisions WHERE run_id = ? ORDER BY id", (run_id,))


def run_count(db: Path) -> int:
    if not db.exists():
        return 0
    return db_rows(db, "SELECT COUNT(*) AS n FROM runs")[0]["n"]


def latest_run_id(db: Path) -> int:
    return db_rows(db, "SELECT MAX(id) AS id FROM runs")[0]["id"]


def deploy(db: Path, *extra: str, env=None):
    return run_cli(
        "run", str(DEPLOY), "--var", "ENVIRONMENT=staging", "--state-path", str(db), *extra, env=env
    )


# ------------------------------------------------------------------------- gates: fail closed, resume
def test_gate_without_tty_fails_closed_then_resume_with_approval_finishes_ok(state_db):
    first = deploy(state_db)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    run_id = latest_run_id(state_db)
    run = run_row(state_db, run_id)
    assert run["status"] == "ABORTED"
    assert "approve_deploy" in run["status_reason"]
    assert "run ABORTED" in first.stdout and "approve_deploy" in first.stdout
    before = node_states(state_db, run_id)
    assert before["build_app"][:2] == ("OK", 1)
    assert before["run_tests"][:2] == ("OK", 1)
    assert before["approve_deploy"][0] == "WAITING"
    assert before["deploy_application"][0] == "PENDING"

    resumed = run_cli(
        "resume", str(DEPLOY), str(run_id), "--approve", "approve_deploy", "--state-path", str(state_db)
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming run" in resumed.stdout and "myapp deployment pipeline" in resumed.stdout
    assert run_row(state_db, run_id)["status"] == "OK"
    after = node_states(state_db, run_id)
    assert {n: s[0] for n, s in after.items()} == HEALTHY_STATES
    # finished nodes were kept, not run again
    assert after["build_app"][1] == 1 and after["run_tests"][1] == 1
    assert len(attempts(state_db, run_id, "build_app")) == 1
    (decision,) = decisions(state_db, run_id)
    assert decision["node_id"] == "approve_deploy" and decision["decision"] == "approve"
    assert run_count(state_db) == 1  # the resume continued run 1, it did not start another


def test_approve_flag_decides_the_gate_and_approve_all_policy_is_recorded_as_such(state_db):
    approved = deploy(state_db, "--approve", "approve_deploy", "--actor", "alice")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    run_id = latest_run_id(state_db)
    assert states(state_db, run_id) == HEALTHY_STATES
    (decision,) = decisions(state_db, run_id)
    assert decision["actor"] == "alice" and decision["comment"] == "decided by run parameters"

    policy = deploy(state_db, "--gate-policy", "approve-all", "--actor", "ci-bot")
    assert policy.returncode == 0, policy.stdout + policy.stderr
    run_id = latest_run_id(state_db)
    assert run_row(state_db, run_id)["status"] == "OK"
    (decision,) = decisions(state_db, run_id)
    assert decision["actor"] == "policy:approve-all (ci-bot)"
    assert decision["decision"] == "approve"
    assert "policy:approve-all (ci-bot)" in policy.stdout


def test_reject_by_parameter_ends_nok_without_deploying(state_db):
    result = deploy(state_db, "--approve", "approve_deploy=reject")
    assert result.returncode == 1, result.stdout + result.stderr
    run_id = latest_run_id(state_db)
    assert run_row(state_db, run_id)["status"] == "NOK"
    got = states(state_db, run_id)
    assert got["approve_deploy"] == "NOK"
    assert got["deploy_application"] == "SKIPPED"
    assert attempts(state_db, run_id, "deploy_application") == []


def test_resume_refuses_a_nok_run_and_a_changed_runbook_unless_allowed(state_db, tmp_path):
    nok = deploy(state_db, "--gate-policy", "reject-all")
    assert nok.returncode == 1
    nok_id = latest_run_id(state_db)
    refused = run_cli("resume", str(DEPLOY), str(nok_id), "--state-path", str(state_db))
    assert refused.returncode == 2
    assert "only ABORTED runs can be resumed" in refused.stderr and "NOK" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert run_row(state_db, nok_id)["status"] == "NOK"

    copy = tmp_path / "deploy.playbook.toml"
    copy.write_text(DEPLOY.read_text())
    aborted = run_cli("run", str(copy), "--var", "ENVIRONMENT=staging", "--state-path", str(state_db))
    assert aborted.returncode == 3
    run_id = latest_run_id(state_db)
    copy.write_text(DEPLOY.read_text() + "\n# edited after the run started\n")
    changed = run_cli(
        "resume", str(copy), str(run_id), "--approve", "approve_deploy", "--state-path", str(state_db)
    )
    assert changed.returncode == 2
    assert "runbook changed since run" in changed.stderr and "--allow-changed" in changed.stderr
    assert run_row(state_db, run_id)["status"] == "ABORTED"
    allowed = run_cli(
        "resume", str(copy), str(run_id), "--approve", "approve_deploy", "--allow-changed",
        "--state-path", str(state_db),
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert run_row(state_db, run_id)["status"] == "OK"


def test_resume_without_run_id_takes_the_latest_aborted_run(state_db):
    assert deploy(state_db).returncode == 3
    run_id = latest_run_id(state_db)
    resumed = run_cli("resume", str(DEPLOY), "--approve", "approve_deploy", "--state-path", str(state_db))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert run_row(state_db, run_id)["status"] == "OK"


# ------------------------------------------------------------------------------------------ failures
def test_critical_failure_runs_the_failure_branch_and_ends_nok(state_db, tmp_path):
    book = write_runbook(
        tmp_path,
        "crit",
        "critical failure",
        """
[prepare]
type = "Command"
command_name = "echo preparing"

[migrate]
type = "Command"
command_name = "echo migration broke >&2; exit 4"
critical = true

[serve]
type = "Command"
command_name = "echo serving"
depends_on = ["migrate"]

[restore_backup]
type = "Command"
command_name = "echo restoring backup"
depends_on = ["migrate:failure"]
""",
    )
    result = run_cli("run", str(book), "--state-path", str(state_db))
    assert result.returncode == 1, result.stdout + result.stderr
    run_id = latest_run_id(state_db)
    run = run_row(state_db, run_id)
    assert run["status"] == "NOK" and "migrate" in run["status_reason"]
    got = node_states(state_db, run_id)
    assert got["prepare"][0] == "OK"
    assert got["migrate"][0] == "NOK"
    assert got["serve"][0] == "SKIPPED"
    assert got["restore_backup"][0] == "OK"
    (failed,) = attempts(state_db, run_id, "migrate")
    assert failed["status"] == "NOK" and failed["exit_code"] == 4
    assert "migration broke" in failed["stderr"]
    (rolled,) = attempts(state_db, run_id, "restore_backup")
    assert "restoring backup" in rolled["stdout"]
    assert "migration broke" in result.stdout  # streamed to the terminal


def test_non_critical_failure_without_tty_is_skipped_by_policy(state_db, tmp_path):
    book = write_runbook(
        tmp_path,
        "soft",
        "soft failure",
        """
[warm_cache]
type = "Command"
command_name = "exit 1"

[serve]
type = "Command"
command_name = "echo serving"
""",
    )
    result = run_cli("run", str(book), "--state-path", str(state_db))
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = latest_run_id(state_db)
    assert run_row(state_db, run_id)["status"] == "OK"
    got = node_states(state_db, run_id)
    assert got["warm_cache"][0] == "SKIPPED"
    assert got["warm_cache"][2] == "skipped by policy (non-critical failure)"
    assert got["serve"][0] == "OK"
    assert attempts(state_db, run_id, "warm_cache")[0]["status"] == "NOK"


def test_node_retries_with_backoff_until_it_succeeds(state_db, tmp_path):
    counter = tmp_path / "count"
    book = write_runbook(
        tmp_path,
        "retry",
        "retries",
        f"""
[flaky]
type = "Command"
command_name = "n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo try $n; test $n -ge 3"
retries = 2
retry_backoff = 0.3
critical = true
""",
    )
    started = time.monotonic()
    result = run_cli("run", str(book), "--state-path", str(state_db))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = latest_run_id(state_db)
    rows = attempts(state_db, run_id, "flaky")
    assert [r["status"] for r in rows] == ["NOK", "NOK", "OK"]
    assert node_states(state_db, run_id)["flaky"][:2] == ("OK", 3)
    waits = db_rows(
        state_db,
        "SELECT payload FROM events WHERE run_id = ? AND kind = 'retry_wait' ORDER BY seq",
        (run_id,),
    )
    assert [json.loads(w["payload"])["seconds"] for w in waits] == [0.3, 0.6]  # backoff doubles
    assert elapsed >= 0.9


def test_retries_exhausted_on_a_critical_node_end_nok(state_db, tmp_path):
    book = write_runbook(
        tmp_path,
        "never",
        "never works",
        """
[broken]
type = "Command"
command_name = "exit 2"
retries = 1
critical = true
""",
    )
    result = run_cli("run", str(book), "--state-path", str(state_db))
    assert result.returncode == 1
    run_id = latest_run_id(state_db)
    assert [r["status"] for r in attempts(state_db, run_id, "broken")] == ["NOK", "NOK"]
    assert run_row(state_db, run_id)["status"] == "NOK"


def test_max_retries_is_recorded_and_a_negative_value_is_refused_before_any_run(state_db, tmp_path):
    book = write_runbook(
        tmp_path, "one", "one node", '\n[hello]\ntype = "Command"\ncommand_name = "echo hi"\n'
    )
    bad = run_cli("run", str(book), "--max-retries", "-1", "--state-path", str(state_db))
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "max retries" in bad.stderr
    assert run_count(state_db) == 0
    good = run_cli("run", str(book), "--max-retries", "5", "--state-path", str(state_db))
    assert good.returncode == 0
    params = json.loads(run_row(state_db, latest_run_id(state_db))["params"])
    assert params["max_retries"] == 5


def test_command_timeout_fails_the_attempt_with_a_clear_message(state_db, tmp_path):
    book = write_runbook(
        tmp_path,
        "slow",
        "too slow",
        """
[hang]
type = "Command"
command_name = "sleep 20"
timeout = 1
critical = true
""",
    )
    started = time.monotonic()
    result = run_cli("run", str(book), "--state-path", str(state_db))
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    run_id = latest_run_id(state_db)
    (attempt,) = attempts(state_db, run_id, "hang")
    assert attempt["status"] == "NOK"
    assert attempt["error"] == "Command timed out after 1 seconds"
    assert "Command timed out after 1 seconds" in result.stdout


# --------------------------------------------------------------------- signals: SIGTERM and SIGKILL
def _start_runner(book: Path, db: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "playbook_nb", "run", str(book), "--state-path", str(db)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_sleeper(runner: subprocess.Popen, db: Path, node_id: str, timeout: float = 20):
    """Wait until `node_id` has a RUNNING attempt and its `sleep` child exists; return that process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert runner.poll() is None, runner.communicate()
        if db.exists():
            try:
                rows = db_rows(db, "SELECT status FROM attempts WHERE node_id = ?", (node_id,))
            except sqlite3.OperationalError:  # the runner is still creating the schema
                rows = []
            if rows and rows[-1]["status"] == "RUNNING":
                sleepers = [
                    p for p in psutil.Process(runner.pid).children(recursive=True) if p.name() == "sleep"
                ]
                if sleepers:
                    return sleepers[0]
        time.sleep(0.1)
    raise AssertionError(f"{node_id} never started")


def _recorded_group(db: Path, node_id: str, timeout: float = 10) -> int | None:
    """The process group the node's running attempt recorded (written as the command starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = db_rows(
            db, "SELECT pgid, host FROM attempts WHERE node_id = ? AND status = 'RUNNING'", (node_id,)
        )
        if rows and rows[-1]["pgid"]:
            assert rows[-1]["host"]
            return rows[-1]["pgid"]
        time.sleep(0.1)
    return None


def _gone(process: psutil.Process, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


SLOW_BODY = """
[first]
type = "Command"
command_name = "echo first"

[slow]
type = "Command"
command_name = "{command}"

[last]
type = "Command"
command_name = "echo last"
"""


def test_sigterm_aborts_the_run_and_kills_the_running_command(state_db, tmp_path):
    book = write_runbook(tmp_path, "term", "sigterm", SLOW_BODY.format(command="sleep 30"))
    runner = _start_runner(book, state_db)
    try:
        sleeper = _wait_for_sleeper(runner, state_db, "slow")
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=20)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 3, out + err
    assert "Traceback" not in err
    assert _gone(sleeper), "the command's process group survived SIGTERM"
    run_id = latest_run_id(state_db)
    run = run_row(state_db, run_id)
    assert run["status"] == "ABORTED"
    assert "SIGTERM" in run["status_reason"]
    assert states(state_db, run_id)["first"] == "OK"
    assert states(state_db, run_id)["last"] == "PENDING"
    assert attempts(state_db, run_id, "slow")[-1]["status"] == "INTERRUPTED"


def test_sigkill_leaves_an_orphaned_run_that_resume_recovers_without_set_status(state_db, tmp_path):
    """Issue 24 point 2: after `kill -9` of the runner the run shows as orphaned in `runs list` and `show`,
    and a plain `resume` recovers it (attempt INTERRUPTED, run ABORTED, as an event with its actor) and
    goes on."""
    marker = tmp_path / "slept-once"
    command = f"if [ -f {marker} ]; then echo fast; else touch {marker}; sleep 30; fi"
    book = write_runbook(tmp_path, "kill", "sigkill", SLOW_BODY.format(command=command))
    runner = _start_runner(book, state_db)
    sleeper = None
    try:
        sleeper = _wait_for_sleeper(runner, state_db, "slow")
        group = os.getpgid(sleeper.pid)
        assert _recorded_group(state_db, "slow") == group  # where the attempt's command runs, in the index
        runner.send_signal(signal.SIGKILL)
        runner.communicate(timeout=20)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert sleeper is not None and _gone(sleeper, timeout=5)  # its command died with it (the tether)
    run_id = latest_run_id(state_db)
    assert run_row(state_db, run_id)["status"] == "RUNNING"  # nobody could write the end
    assert states(state_db, run_id)["slow"] == "RUNNING"

    listed = run_cli("runs", "list", "--json", "--state-path", str(state_db))
    (row,) = [r for r in json.loads(listed.stdout) if r["id"] == run_id]
    assert row["orphaned"] is True and row["owner_note"].startswith("orphaned (owner gone since ")
    table = run_cli("runs", "list", "--state-path", str(state_db), env={"COLUMNS": "250"})
    assert "RUNNING orphaned (owner gone since" in table.stdout
    shown = run_cli("show", str(run_id), "--state-path", str(state_db), env={"COLUMNS": "250"})
    assert "orphaned (owner gone since" in shown.stdout

    resumed = run_cli("resume", str(book), str(run_id), "--actor", "oncall", "--state-path", str(state_db))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert run_row(state_db, run_id)["status"] == "OK"
    got = node_states(state_db, run_id)
    assert got["first"][:2] == ("OK", 1)
    assert got["slow"][:2] == ("OK", 2)
    assert got["last"][:2] == ("OK", 1)
    assert [a["status"] for a in attempts(state_db, run_id, "slow")] == ["INTERRUPTED", "OK"]
    events = db_rows(state_db, "SELECT kind, payload FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
    (recovered,) = [json.loads(e["payload"]) for e in events if e["kind"] == "status_set_manually"]
    assert recovered["actor"] == "oncall" and recovered["from"] == "RUNNING" and recovered["to"] == "ABORTED"
    assert "orphaned (owner gone since" in recovered["reason"]


def test_a_run_with_a_live_owner_is_refused_to_resume_and_set_status_needs_force(state_db, tmp_path):
    """Issues 13 point 1 and 24 point 2: another CLI process cannot drive a run whose owner lives (one clear
    line); `set-status` is refused without --force, and with it the owner's running command is killed first,
    as an event; the owner then stops with one line, and a plain resume finishes the run."""
    marker = tmp_path / "slept-once"
    command = f"if [ -f {marker} ]; then echo fast; else touch {marker}; sleep 30; fi"
    book = write_runbook(tmp_path, "live", "live owner", SLOW_BODY.format(command=command))
    runner = _start_runner(book, state_db)
    try:
        sleeper = _wait_for_sleeper(runner, state_db, "slow")
        run_id = latest_run_id(state_db)
        refused = run_cli("resume", str(book), str(run_id), "--state-path", str(state_db))
        assert refused.returncode == 2
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"run {run_id} is driven by " in lines[0] and "--take-over" in lines[0]
        assert f"pid {runner.pid}" in lines[0]
        shown = run_cli("show", str(run_id), "--state-path", str(state_db), env={"COLUMNS": "250"})
        assert "driven by " in shown.stdout

        no_force = run_cli("set-status", str(book), str(run_id), "ABORTED", "--state-path", str(state_db))
        assert no_force.returncode == 2 and "alive; pass --force" in no_force.stderr
        assert run_row(state_db, run_id)["status"] == "RUNNING" and sleeper.is_running()

        forced = run_cli(
            "set-status", str(book), str(run_id), "ABORTED", "--force", "--actor", "lead",
            "--state-path", str(state_db),
        )  # fmt: skip
        assert forced.returncode == 0, forced.stderr
        assert _gone(sleeper, timeout=5), "the owner's command survived set-status --force"
        out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert "Traceback" not in err
    assert run_row(state_db, run_id)["status"] == "ABORTED"
    assert [a["status"] for a in attempts(state_db, run_id, "slow")] == ["INTERRUPTED"]
    kinds = [
        e["kind"]
        for e in db_rows(state_db, "SELECT kind FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
    ]
    assert "process_group_killed" in kinds and kinds.index("process_group_killed") < kinds.index(
        "status_set_manually"
    )
    resumed = run_cli("resume", str(book), str(run_id), "--state-path", str(state_db))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert run_row(state_db, run_id)["status"] == "OK"
    assert [a["status"] for a in attempts(state_db, run_id, "slow")] == ["INTERRUPTED", "OK"]


# -------------------------------------------------------------------------------- reading the index
def test_show_runs_list_and_info_read_the_index(state_db):
    assert deploy(state_db, "--approve", "approve_deploy").returncode == 0
    assert deploy(state_db).returncode == 3
    ok_id, aborted_id = 1, 2

    shown = run_cli("show", str(ok_id), "--state-path", str(state_db))
    assert shown.returncode == 0, shown.stderr
    assert f"run {ok_id} (#1) myapp deployment pipeline: OK" in shown.stdout
    assert "ENVIRONMENT=staging" in shown.stdout
    assert "decision: approve on approve_deploy" in shown.stdout
    for node in HEALTHY_STATES:
        assert node in shown.stdout

    shown_json = json.loads(run_cli("show", str(ok_id), "--json", "--state-path", str(state_db)).stdout)
    assert {n["node"]: n["state"] for n in shown_json["nodes"]} == HEALTHY_STATES
    assert shown_json["decisions"][0]["decision"] == "approve"

    aborted = run_cli("show", str(aborted_id), "--state-path", str(state_db))
    assert aborted.returncode == 0 and "ABORTED" in aborted.stdout, aborted.stderr

    by_title = run_cli("show", "myapp deployment pipeline", "--state-path", str(state_db))
    assert by_title.returncode == 0, by_title.stderr
    assert "OK" in by_title.stdout and "ABORTED" in by_title.stdout
    by_workflow = run_cli("show", "{{APP_NAME}} deployment pipeline", "--json", "--state-path", str(state_db))
    assert [r["id"] for r in json.loads(by_workflow.stdout)] == [aborted_id, ok_id]
    unknown = run_cli("show", "no such runbook", "--state-path", str(state_db))
    assert unknown.returncode == 2 and "no runs of 'no such runbook'" in unknown.stderr

    listed = run_cli("runs", "list", "--json", "--state-path", str(state_db))
    assert listed.returncode == 0
    runs = json.loads(listed.stdout)
    assert [r["id"] for r in runs] == [aborted_id, ok_id]  # newest first
    first = runs[1]
    assert first["status"] == "OK" and first["title"] == "myapp deployment pipeline"
    assert first["workflow"] == "{{APP_NAME}} deployment pipeline"
    assert first["trigger"] == "terminal" and first["number"] == 1
    assert first["variables"]["ENVIRONMENT"] == "staging"
    assert first["counts"] == {"OK": 6, "SKIPPED": 3}
    assert len(first["runbook_sha256"]) == 64 and first["ended_at"] is not None
    assert runs[0]["status"] == "ABORTED" and "approve_deploy" in runs[0]["reason"]

    only_aborted = json.loads(
        run_cli("runs", "list", "--status", "aborted", "--json", "--state-path", str(state_db)).stdout
    )
    assert [r["id"] for r in only_aborted] == [aborted_id]
    table = run_cli("runs", "list", "--status", "OK", "--state-path", str(state_db))
    assert table.returncode == 0 and "OK" in table.stdout and "ABORTED" not in table.stdout

    info = run_cli("info", "--state-path", str(state_db))
    assert info.returncode == 0, info.stderr
    assert "runs: 2" in info.stdout and "ABORTED: 1" in info.stdout and "OK: 1" in info.stdout
    assert "success rate: 50.0%" in info.stdout
    assert "build_app" in info.stdout

    plugins = run_cli("info", "--plugins")
    assert plugins.returncode == 0, plugins.stderr
    for function in ("notify", "sleep", "throw"):
        assert function in plugins.stdout
    assert "python" in plugins.stdout


# -------------------------------------------------------------------------------------- bad input
@pytest.fixture
def two_required(tmp_path) -> Path:
    return write_runbook(
        tmp_path,
        "needs",
        "needs vars {{REGION}}",
        '\n[hello]\ntype = "Command"\ncommand_name = "echo {{REGION}} {{TICKET}} {{LEVEL}}"\n',
        variables="REGION = { required = true }\nTICKET = { required = true }\n"
        'LEVEL = { default = "low", choices = ["low", "high"] }\n',
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-interactive-vars"], "missing required variables: REGION, TICKET"),
        (["--var", "REGION=eu", "--var", "TICKET=1", "--var", "NOPE=1"], "--var NOPE: no such variable"),
        (["--var", "REGION=eu", "--var", "TICKET=1", "--var", "LEVEL=max"], "'max' is not one of low, high"),
        (["--var", "REGION=eu", "--var", "TICKET=1", "--gate-policy", "maybe"], "gate policy 'maybe'"),
        (["--var", "REGION=eu", "--var", "TICKET=1", "--approve", "nope"], "'nope' is not a Manual gate"),
    ],
)
@pytest.mark.parametrize("headless", [False, True], ids=["terminal", "headless"])
def test_bad_input_is_one_line_exit_2_and_no_run_row(two_required, state_db, args, message, headless):
    if headless and "--no-interactive-vars" in args:
        args = []  # headless never prompts
    result = run_cli("run", str(two_required), *args, *(["--headless"] if headless else []),
                     "--state-path", str(state_db))  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip() and "IPKernelApp" not in line]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert run_count(state_db) == 0


def test_broken_toml_is_one_line_exit_2_and_no_run_row(tmp_path, state_db):
    broken = tmp_path / "broken.playbook.toml"
    broken.write_text(HEADER.format(title="broken") + '\n[step\ntype = "Command"\n')
    for extra in ([], ["--headless"]):
        result = run_cli("run", str(broken), *extra, "--state-path", str(state_db))
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert "broken.playbook.toml" in line
    assert run_count(state_db) == 0


def test_invalid_fixture_runbooks_never_start_a_run(state_db):
    invalid = sorted((FIXTURES / "invalid").glob("*.playbook.toml"))
    assert invalid
    for book in invalid:
        result = run_cli("run", str(book), "--no-interactive-vars", "--state-path", str(state_db))
        assert result.returncode == 2, (book.name, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, book.name
    assert run_count(state_db) == 0
