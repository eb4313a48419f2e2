"""CLI conventions a CI engineer relies on (issue 19.1): `--version`, `-h`, shell completion, `--json` (one JSON
document on stdout, messages on stderr), whole lines off a terminal, `NO_COLOR`.

Every command runs the real console entry point in a subprocess with no TTY (stdin /dev/null, stdout a pipe),
as in a CI job; the colour checks give it a real pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version

import pytest
from conftest import DEPLOY, FIXTURES, db_rows, write_runbook

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|38;[0-9;]+|9[0-7])m")


def cli(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """No TTY anywhere and no COLUMNS: exactly what a CI runner gives a job."""
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "playbook_nb", *args],
        capture_output=True,
        text=True,
        env=full_env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        cwd=cwd,
    )


def json_of(result: subprocess.CompletedProcess):
    """The one JSON document on stdout (json.loads fails on anything else there)."""
    return json.loads(result.stdout)


def test_version_help_and_shell_completion():
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"playbook-nb {version('playbook-nb')}"

    for args in (["-h"], ["--help"], ["run", "-h"], ["runs", "list", "-h"], ["store", "info", "-h"]):
        result = cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith("Usage: playbook-nb"), args
        assert "╭" not in result.stdout  # plain help off a terminal, no Rich boxes cut at 80 columns
    assert "--json" in cli("run", "-h").stdout

    completion = cli(
        env={"_PLAYBOOK_NB_COMPLETE": "complete_bash", "COMP_WORDS": "playbook-nb ru", "COMP_CWORD": "1"}
    )
    assert completion.returncode == 0
    assert completion.stdout.split() == ["run", "runs"]
    script = cli("--show-completion", "bash")
    assert script.returncode == 0 and "_PLAYBOOK_NB_COMPLETE" in script.stdout


def test_json_documents_on_stdout_messages_on_stderr(tmp_path):
    """validate, run, resume, verify, info, export and scan with --json: stdout parses as one JSON document;
    the human lines went to stderr."""
    db = tmp_path / "runs.db"
    state = ["--state-path", str(db)]

    valid = cli("validate", str(DEPLOY), "--json")
    assert valid.returncode == 0, valid.stderr
    doc = json_of(valid)
    assert (
        doc["valid"] is True
        and doc["summary"]["nodes"] == 9
        and doc["summary"]["gates"] == ["approve_deploy"]
    )

    broken = tmp_path / "broken.playbook.toml"
    broken.write_text("[runbook\ntitle = 'x'\n")
    invalid = cli("validate", str(broken), "--json")
    assert invalid.returncode == 2
    doc = json_of(invalid)
    assert doc["valid"] is False and str(broken) in doc["error"]
    assert invalid.stderr.startswith("error:") and "Traceback" not in invalid.stderr

    # A gate nobody approves: the run stops ABORTED (exit 3); the document says so.
    aborted = cli("run", str(DEPLOY), "--var", "ENVIRONMENT=staging", "--actor", "ci", "--json", *state)
    assert aborted.returncode == 3, aborted.stderr
    doc = json_of(aborted)
    run_id = doc["run"]["id"]
    assert doc["run"]["status"] == "ABORTED" and doc["exit_code"] == 3
    assert {n["node"]: n["state"] for n in doc["nodes"]}["approve_deploy"] == "WAITING"
    assert "approve_deploy" in aborted.stderr  # the progress lines, on stderr

    resumed = cli(
        "resume", str(DEPLOY), str(run_id), "--approve", "approve_deploy", "--actor", "ci", "--json", *state
    )
    assert resumed.returncode == 0, resumed.stderr
    doc = json_of(resumed)
    assert doc["run"]["status"] == "OK" and doc["exit_code"] == 0
    assert [(d["node"], d["decision"], d["actor"]) for d in doc["decisions"]] == [
        ("approve_deploy", "approve", "ci")
    ]
    assert "Resuming run" in resumed.stderr

    verified = cli("verify", str(run_id), "--json", *state)
    assert verified.returncode == 0
    doc = json_of(verified)
    assert doc["intact"] is True and doc["events"] > 10 and doc["problems"] == []

    info = cli("info", "--workflow", "{{APP_NAME}} deployment pipeline", "--json", *state)
    assert info.returncode == 0, info.stderr
    doc = json_of(info)
    assert doc["runs"] == 1 and doc["by_status"]["OK"] == 1 and isinstance(doc["kpis"], list)
    plugins = json_of(cli("info", "--plugins", "--json"))
    assert "notify" in {name for p in plugins["plugins"] for name in p["functions"]}

    report = tmp_path / "report.html"
    exported = cli("export", str(run_id), "--html", str(report), "--json", *state)
    assert exported.returncode == 0, exported.stderr
    assert json_of(exported) == {"run_id": run_id, "html": str(report), "notebook": None}
    assert report.exists() and "wrote the report" in exported.stderr

    leaked = tmp_path / "leak.txt"
    leaked.write_text("token=s3cr3t-value-123\n")
    scanned = cli("scan", str(tmp_path / "nope"), "--json")
    assert scanned.returncode == 2  # one error line, and the document says so
    assert "does not exist" in json_of(scanned)["error"]
    scanned = cli("scan", str(leaked), "--value-env", "LEAKED", "--json", env={"LEAKED": "s3cr3t-value-123"})
    assert scanned.returncode == 1
    doc = json_of(scanned)
    assert doc["clean"] is False and doc["findings"][0]["path"] == str(leaked)
    assert "s3cr3t" not in scanned.stdout + scanned.stderr

    missing = cli("verify", "999", "--json", *state)
    assert missing.returncode == 2 and "999" in json_of(missing)["error"]


def test_off_a_terminal_lines_are_whole_and_uncoloured(tmp_path):
    """A CI log keeps every line whole: no wrap at 80 columns, no "deploy_applic…" cells, no escape codes."""
    node = "deploy_the_application_to_every_region_of_the_fleet_one_after_the_other"
    message = "a long line of output that a CI log must keep whole " * 4
    book = write_runbook(
        tmp_path,
        "long",
        "Long lines",
        f'[{node}]\ntype = "Command"\ncommand_name = "echo {message.strip()}"\n'
        f'description = "{message.strip()}"\n',
    )
    result = cli("run", str(book), "--state-path", str(tmp_path / "runs.db"))
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout and "\x1b[" not in result.stdout
    assert any(node in line and "OK" in line for line in result.stdout.splitlines())  # the summary row
    assert message.strip() in result.stdout  # the command's output line, unwrapped
    table_rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert table_rows and all(len(line) > 80 for line in table_rows if node in line)
    (row,) = db_rows(tmp_path / "runs.db", "SELECT status FROM runs")
    assert row["status"] == "OK"


def test_no_color_is_honoured_on_a_terminal():
    pexpect = pytest.importorskip("pexpect")
    outputs = {}
    for name, extra in (("colour", {}), ("no_color", {"NO_COLOR": "1"})):
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        env.update({"TERM": "xterm-256color", **extra})
        child = pexpect.spawn(
            sys.executable,
            ["-m", "playbook_nb", "validate", str(FIXTURES / "deploy_pipeline.playbook.toml")],
            env=env,
            encoding="utf-8",
            timeout=60,
            dimensions=(40, 120),
        )
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        outputs[name] = child.before
    assert "valid:" in outputs["colour"] and COLOUR.search(outputs["colour"])
    assert "valid:" in outputs["no_color"] and not COLOUR.search(outputs["no_color"])


def test_the_actor_is_the_jupyterhub_user_when_a_hub_started_us(tmp_path):
    book = write_runbook(tmp_path, "hello", "Hello", '[hello]\ntype = "Command"\ncommand_name = "echo hi"\n')
    db = tmp_path / "runs.db"
    result = cli("run", str(book), "--state-path", str(db), "--json", env={"JUPYTERHUB_USER": "alice"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run"]["actor"] == "alice"
    (row,) = db_rows(db, "SELECT actor FROM runs")
    assert row["actor"] == "alice"
