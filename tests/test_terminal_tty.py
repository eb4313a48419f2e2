"""`playbook-nb run` in a real (pseudo-)terminal: a person answers the gate and failure prompts.

pexpect gives the runner a pty, so `stdin.isatty()` is true and the run is interactive, exactly as for a person
typing in a terminal. The answers must land in the decisions table with who decided and the comment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import DEPLOY, db_rows

pexpect = pytest.importorskip("pexpect")


def spawn(*args: str, cwd: Path | None = None):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160", "LINES": "50", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "playbook_nb", *args],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 160),
        cwd=str(cwd) if cwd else None,
    )
    return child


def finish(child) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_gate_prompt_approved_with_a_comment_in_a_terminal(state_db):
    child = spawn(
        "run", str(DEPLOY), "--var", "ENVIRONMENT=staging", "--no-interactive-vars",
        "--actor", "alice", "--state-path", str(state_db),
    )  # fmt: skip
    child.expect(r"Deploy myapp to staging\?.*\[approve/reject/abort\]")
    child.sendline("approve")
    child.expect("Comment")
    child.sendline("checked the dashboards")
    child.expect("run OK")
    assert finish(child) == 0, child.before

    (run,) = db_rows(state_db, "SELECT * FROM runs")
    assert run["status"] == "OK" and run["mode"] == "interactive" and run["trigger"] == "terminal"
    (decision,) = db_rows(state_db, "SELECT * FROM decisions")
    assert decision["node_id"] == "approve_deploy"
    assert decision["decision"] == "approve"
    assert decision["actor"] == "alice"
    assert decision["comment"] == "checked the dashboards"
    states = dict(db_rows(state_db, "SELECT node_id, state FROM node_states"))
    assert states["deploy_application"] == "OK" and states["notify_success"] == "OK"


def test_gate_prompt_rejected_in_a_terminal_ends_nok(state_db):
    child = spawn(
        "run", str(DEPLOY), "--var", "ENVIRONMENT=staging", "--no-interactive-vars",
        "--actor", "bob", "--state-path", str(state_db),
    )  # fmt: skip
    child.expect(r"\[approve/reject/abort\]")
    child.sendline("reject")
    child.expect("Comment")
    child.sendline("")  # no comment
    assert finish(child) == 1
    (decision,) = db_rows(state_db, "SELECT * FROM decisions")
    assert (decision["decision"], decision["actor"], decision["comment"]) == ("reject", "bob", None)
    states = dict(db_rows(state_db, "SELECT node_id, state FROM node_states"))
    assert states["approve_deploy"] == "NOK" and states["deploy_application"] == "SKIPPED"


def test_failure_prompt_retry_then_skip(state_db, tmp_path):
    book = tmp_path / "flaky.playbook.toml"
    book.write_text(
        """[runbook]
title = "flaky in a terminal"
description = "a non-critical step that keeps failing"
version = "0.1.0"
author = "tests"
created_at = "2025-01-01T00:00:00Z"

[warm_cache]
type = "Command"
command_name = "echo cache cold >&2; exit 7"

[serve]
type = "Command"
command_name = "echo serving"
"""
    )
    child = spawn("run", str(book), "--actor", "carol", "--max-retries", "1", "--state-path", str(state_db))
    child.expect(r"'warm_cache' failed.*What now\?.*\[retry/skip/abort\]")
    child.sendline("retry")
    # one operator retry allowed (--max-retries 1): the second prompt no longer offers it
    child.expect(r"'warm_cache' failed.*What now\?.*\[skip/abort\]")
    child.sendline("skip")
    child.expect("run OK")
    assert finish(child) == 0

    decided = [
        (d["node_id"], d["decision"], d["actor"])
        for d in db_rows(state_db, "SELECT * FROM decisions ORDER BY id")
    ]
    assert decided == [("warm_cache", "retry", "carol"), ("warm_cache", "skip", "carol")]
    nodes = {r["node_id"]: r for r in db_rows(state_db, "SELECT * FROM node_states")}
    assert nodes["warm_cache"]["state"] == "SKIPPED"
    assert nodes["warm_cache"]["reason"] == "skipped by operator"
    assert nodes["warm_cache"]["attempts"] == 2
    assert nodes["serve"]["state"] == "OK"
    tries = db_rows(state_db, "SELECT status, exit_code, stderr FROM attempts WHERE node_id = 'warm_cache'")
    assert [(t["status"], t["exit_code"]) for t in tries] == [("NOK", 7), ("NOK", 7)]
    assert "cache cold" in tries[0]["stderr"]


def test_failure_prompt_abort_then_resume_in_a_terminal(state_db, tmp_path):
    marker = tmp_path / "fixed"
    book = tmp_path / "fixable.playbook.toml"
    book.write_text(
        f"""[runbook]
title = "fixable"
description = "fails until someone fixes it"
version = "0.1.0"
author = "tests"
created_at = "2025-01-01T00:00:00Z"

[check]
type = "Command"
command_name = "test -f {marker}"
critical = true

[after]
type = "Command"
command_name = "echo after"
"""
    )
    child = spawn("run", str(book), "--actor", "dave", "--state-path", str(state_db))
    child.expect(r"'check' failed.*What now\?.*\[retry/abort\]")  # critical: no skip
    child.sendline("abort")
    assert finish(child) == 3
    (run,) = db_rows(state_db, "SELECT * FROM runs")
    assert run["status"] == "ABORTED"

    marker.touch()
    child = spawn("resume", str(book), str(run["id"]), "--actor", "dave", "--state-path", str(state_db))
    child.expect(r"\[retry/abort\]")  # the failure still waits for its decision
    child.sendline("retry")
    child.expect("run OK")
    assert finish(child) == 0
    nodes = dict(db_rows(state_db, "SELECT node_id, state FROM node_states"))
    assert nodes == {"check": "OK", "after": "OK"}


def _tty_run(tmp_path, ui: str, state_db) -> str:
    """A terminal run of a gate-free runbook with `[ui]` set to `ui`, colours allowed; what the terminal got."""
    book = tmp_path / "hello.playbook.toml"
    book.write_text('[runbook]\ntitle = "hello"\n\n[hello]\ntype = "Command"\ncommand_name = "echo hi"\n')
    config = tmp_path / f"ui{abs(hash(ui))}.toml"
    config.write_text(f"[ui]\n{ui}\n")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update({"PLAYBOOK_CONFIG": str(config), "COLUMNS": "160", "TERM": "xterm-256color"})
    child = pexpect.spawn(
        sys.executable, ["-m", "playbook_nb", "run", str(book), "--state-path", str(state_db)],
        env=env, encoding="utf-8", timeout=60, dimensions=(50, 160),
    )  # fmt: skip
    text = child.read()
    child.close()
    assert child.exitstatus == 0, text
    return text


def test_ui_keys_show_timestamps_and_color_theme_on_a_terminal(state_db, tmp_path):
    """Issue 19.2: `[ui] show_timestamps` and `color_theme` do what the docs say on a terminal."""
    import re

    colour = re.compile(r"\x1b\[[0-9;]*3[0-9](;[0-9]+)*m|\x1b\[38;")  # a foreground colour code
    stamped = re.compile(r"\d\d:\d\d:\d\d.*hello")
    default = _tty_run(tmp_path, 'color_theme = "auto"\nshow_timestamps = true', state_db)
    assert stamped.search(default) and colour.search(default)
    plain = _tty_run(tmp_path, 'color_theme = "none"\nshow_timestamps = false', state_db)
    assert not stamped.search(plain) and not colour.search(plain)
    assert "hello" in plain and "OK" in plain
