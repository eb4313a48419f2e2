"""Issue 14: a team moving from the seed `playbook` CLI finds its runbooks, plugins and habits work unchanged
(the seed's behaviour is `../shared/seeds/001_*.txt` and `002_*.txt`), and every record says what happened.

Every test runs the real CLI in a subprocess against a real index and asserts what a user sees: exit codes,
the one line on stderr, node and run states, rows in the index.
"""

from __future__ import annotations

import json

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
