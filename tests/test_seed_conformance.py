"""Issue 14: a team moving from the seed `playbook` CLI finds its runbooks, plugins and habits work unchanged
(the seed's behaviour is `../shared/seeds/001_*.txt` and `002_*.txt`), and every record says what happened.

Every test runs the real CLI in a subprocess against a real index and asserts what a user sees: exit codes,
the one line on stderr, node and run states, rows in the index.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import db_rows, run_cli, write_runbook


def run_count(db) -> int:
    return db_rows(db, "SELECT COUNT(*) AS n FROM runs")[0]["n"] if db.exists() else 0


def one_line_error(result, code: int = 2) -> str:
    """The result failed with `code`, one line on stderr, no traceback; returns that line."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def validate_and_run_refused(book, state_db, *needles: str) -> None:
    """`validate` exits 2 naming every needle; `run` refuses the same way and records nothing."""
    checked = run_cli("validate", str(book))
    line = one_line_error(checked)
    for needle in needles:
        assert needle in line, line
    ran = run_cli("run", str(book), "--state-path", str(state_db))
    assert one_line_error(ran) == line
    assert run_count(state_db) == 0


# ---------------------------------------------------------------- point 2: plugins checked at validation
FUNCTION = """
[{node}]
type = "Function"
plugin = "{plugin}"
function = "{function}"
function_params = {params}
"""


@pytest.mark.parametrize(
    ("plugin", "function", "params", "needles"),
    [
        ("slack", "send_message", '{ channel = "#ops" }', ["node 'notify'", "unknown plugin 'slack'", "send_message"]),
        ("python", "shout", '{ message = "hi" }', ["node 'notify'", "plugin 'python' has no function 'shout'"]),
        ("python", "sleep", '{ seconds = "soon" }', ["node 'notify'", "plugin 'python'", "function 'sleep'", "'seconds'", "soon"]),
        ("python", "notify", '{ message = "hi", colour = "red" }', ["node 'notify'", "function 'notify'", "unknown parameter 'colour'"]),
    ],
)  # fmt: skip
def test_unknown_plugin_function_or_bad_parameter_is_a_validation_error(
    tmp_path, state_db, plugin, function, params, needles
):
    book = write_runbook(
        tmp_path,
        "plugins",
        "plugins",
        FUNCTION.format(node="notify", plugin=plugin, function=function, params=params),
    )
    validate_and_run_refused(book, state_db, *needles)


def test_a_templated_parameter_is_converted_with_the_run_values(tmp_path, state_db):
    book = write_runbook(
        tmp_path,
        "templated",
        "templated",
        FUNCTION.format(
            node="pause", plugin="python", function="sleep", params='{ seconds = "{{ DELAY }}" }'
        ),
        variables='DELAY = { default = "0" }',
    )
    assert run_cli("validate", str(book)).returncode == 0  # no value known: the name is checked
    bad = run_cli("validate", str(book), "--var", "DELAY=soon")
    line = one_line_error(bad)
    assert "node 'pause'" in line and "'seconds'" in line and "soon" in line
    ran = run_cli("run", str(book), "--var", "DELAY=soon", "--state-path", str(state_db))
    assert one_line_error(ran) == line and run_count(state_db) == 0
    ok = run_cli("run", str(book), "--state-path", str(state_db))
    assert ok.returncode == 0, ok.stdout + ok.stderr


# ---------------------------------------------------------------- point 3: a critical node cannot be skipped
def test_skip_on_a_critical_node_is_refused(tmp_path, state_db):
    book = write_runbook(
        tmp_path,
        "skipcrit",
        "skip critical",
        '\n[migrate]\ntype = "Command"\ncommand_name = "echo migrating"\ncritical = true\nskip = true\n',
    )
    validate_and_run_refused(book, state_db, "node 'migrate' is critical and cannot be skipped")


def test_skip_on_a_node_whose_templated_critical_renders_true_is_refused_at_run(tmp_path, state_db):
    book = write_runbook(
        tmp_path,
        "skipcrit2",
        "skip critical templated",
        '\n[migrate]\ntype = "Command"\ncommand_name = "echo migrating"\n'
        "critical = \"{{ ENV == 'prod' }}\"\nskip = true\n",
        variables='ENV = { default = "dev" }',
    )
    dev = run_cli("run", str(book), "--state-path", str(state_db))
    assert dev.returncode == 0, dev.stdout + dev.stderr
    prod = run_cli("run", str(book), "--var", "ENV=prod", "--state-path", str(state_db))
    assert "node 'migrate' is critical and cannot be skipped" in one_line_error(prod)
    assert run_count(state_db) == 1


# ---------------------------------------------------------------- points 11 and 13: dependency shorthands
def test_caret_on_the_first_node_means_no_dependency(tmp_path, state_db):
    book = write_runbook(
        tmp_path,
        "caret",
        "caret",
        '\n[first]\ntype = "Command"\ncommand_name = "echo one"\ndepends_on = "^"\n'
        '\n[second]\ntype = "Command"\ncommand_name = "echo two"\ndepends_on = "^"\n',
    )
    checked = run_cli("validate", str(book))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "roots:     first" in checked.stdout and "edges:     1" in checked.stdout
    ran = run_cli("run", str(book), "--state-path", str(state_db))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = db_rows(state_db, "SELECT node_id, state FROM node_states ORDER BY node_id")
    assert {r["node_id"]: r["state"] for r in rows} == {"first": "OK", "second": "OK"}


def test_a_self_dependency_is_reported_as_a_cycle(tmp_path, state_db):
    book = write_runbook(
        tmp_path, "selfdep", "self", '\n[a]\ntype = "Command"\ncommand_name = "echo a"\ndepends_on = ["a"]\n'
    )
    validate_and_run_refused(book, state_db, "Runbook contains a cycle: a -> a")


# ---------------------------------------------------------------- point 7: the default filter
def test_default_filter_works_on_an_undeclared_name_and_other_uses_stay_errors(tmp_path, state_db):
    book = write_runbook(
        tmp_path,
        "optional",
        "optional",
        '\n[greet]\ntype = "Command"\ncommand_name = "echo hello {{ OPTIONAL | default(\'world\') }}"\n',
    )
    checked = run_cli("validate", str(book))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = run_cli("run", str(book), "--state-path", str(state_db))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (attempt,) = db_rows(state_db, "SELECT stdout FROM attempts WHERE node_id = 'greet'")
    assert attempt["stdout"].strip() == "hello world"

    mixed = write_runbook(
        tmp_path,
        "mixed",
        "mixed",
        '\n[greet]\ntype = "Command"\ncommand_name = "echo {{ OPTIONAL | default(\'x\') }} {{ OPTIONAL }}"\n',
    )
    line = one_line_error(run_cli("validate", str(mixed)))
    assert "undefined variable 'OPTIONAL'" in line and "node 'greet'" in line


# ---------------------------------------------------------------- point 8: headless -p NAME VALUE
GREET = '\n[greet]\ntype = "Command"\ncommand_name = "echo hello {{ WHO }} x{{ COUNT }}"\n'


def test_headless_p_sets_a_runbook_variable_and_an_unknown_name_is_refused(tmp_path, state_db):
    book = write_runbook(
        tmp_path,
        "greet",
        "greet",
        GREET,
        variables='WHO = { default = "nobody" }\nCOUNT = { default = 1, type = "int" }',
    )
    unknown = run_cli("run", "--headless", str(book), "-p", "WHOM", "alice", "--state-path", str(state_db))
    line = one_line_error(unknown)
    assert "-p WHOM" in line and "neither a runbook variable" in line and "WHO" in line
    bad = run_cli("run", "--headless", str(book), "-p", "COUNT", "many", "--state-path", str(state_db))
    assert "COUNT" in one_line_error(bad)
    assert run_count(state_db) == 0

    ran = run_cli(
        "run",
        "--headless",
        str(book),
        "-p",
        "WHO",
        "alice",
        "-p",
        "COUNT",
        "07",
        "--state-path",
        str(state_db),
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (run,) = db_rows(state_db, "SELECT variables FROM runs")
    assert json.loads(run["variables"]) == {"WHO": "alice", "COUNT": 7}
    (attempt,) = db_rows(state_db, "SELECT stdout FROM attempts WHERE node_id = 'greet'")
    assert attempt["stdout"].strip() == "hello alice x7"


# ---------------------------------------------------------------- the index on both backends, read by `show`
@pytest.fixture(params=["sqlite", "postgresql"])
def index(request, tmp_path) -> str:
    """A fresh run index for one test: a SQLite file, or a PostgreSQL database (tests/pg_server.py)."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "runs.db")
    return request.getfixturevalue("pg_url")


def shown(index: str, run_id: int) -> dict:
    result = run_cli("show", str(run_id), "--json", "--state-path", index)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def node_states_of(run: dict) -> dict[str, str]:
    return {n["node"]: n["state"] for n in run["nodes"]}


# ---------------------------------------------------------------- point 4: resume --retry / --skip NODE
FAILING = """
[check]
type = "Command"
command_name = "test -f {marker}"
critical = {critical}

[after]
type = "Command"
command_name = "echo after"
"""


def aborted_at_a_failure(book, index: str) -> int:
    """A person runs `book` in a terminal, its first node fails, they answer Abort: the run is ABORTED with
    the node waiting for a decision. Returns the run id."""
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable, ["-m", "playbook_nb", "run", str(book), "--actor", "dave", "--state-path", index],
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160", "TERM": "xterm"}, encoding="utf-8", timeout=90,
    )  # fmt: skip
    child.expect(r"'check' failed.*What now\?.*abort\]")
    child.sendline("abort")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3, child.before
    runs = json.loads(run_cli("runs", "list", "--json", "--state-path", index).stdout)
    return runs[0]["id"]


def test_resume_retry_and_skip_decide_a_failed_node_without_a_terminal(tmp_path, index):
    marker = tmp_path / "fixed"
    critical = write_runbook(
        tmp_path, "crit", "critical check", FAILING.format(marker=marker, critical="true")
    )
    run_id = aborted_at_a_failure(critical, index)

    # without a decision nobody can decide: still ABORTED, and the way out is named
    stuck = run_cli("resume", str(critical), str(run_id), "--state-path", index)
    assert stuck.returncode == 3, stuck.stdout + stuck.stderr
    assert f"playbook-nb resume {critical} {run_id} --retry check" in stuck.stdout
    assert "--skip" not in stuck.stdout  # critical: it cannot be skipped
    # a critical node cannot be skipped; a node that does not wait cannot be retried: nothing changes
    for flag, node, message in [
        ("--skip", "check", "cannot skip 'check': critical nodes cannot be skipped"),
        ("--retry", "after", "cannot retry 'after': it does not wait for a decision after a failure"),
    ]:
        refused = run_cli("resume", str(critical), str(run_id), flag, node, "--state-path", index)
        assert message in one_line_error(refused)
        assert shown(index, run_id)["status"] == "ABORTED"
    assert [a["attempt"] for a in shown(index, run_id)["attempts"] if a["node"] == "check"] == [1]

    marker.touch()
    retried = run_cli(
        "resume", str(critical), str(run_id), "--retry", "check", "--actor", "erin", "--state-path", index
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    run = shown(index, run_id)
    assert run["status"] == "OK" and node_states_of(run) == {"check": "OK", "after": "OK"}
    assert [(a["attempt"], a["status"]) for a in run["attempts"] if a["node"] == "check"] == [
        (1, "NOK"),
        (2, "OK"),
    ]
    assert run["decisions"][-1] == {
        "node": "check",
        "decision": "retry",
        "actor": "erin",
        "comment": "decided at resume",
    }

    optional = write_runbook(
        tmp_path, "opt", "optional check", FAILING.format(marker=tmp_path / "never", critical="false")
    )
    run_id = aborted_at_a_failure(optional, index)
    skipped = run_cli("resume", str(optional), str(run_id), "--skip", "check", "--state-path", index)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    run = shown(index, run_id)
    assert node_states_of(run) == {"check": "SKIPPED", "after": "OK"}
    assert next(n for n in run["nodes"] if n["node"] == "check")["reason"] == "skipped by operator"
