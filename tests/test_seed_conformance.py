"""Issue 14: a team moving from the seed `playbook` CLI finds its runbooks, plugins and habits work unchanged
(the seed's behaviour is `../shared/seeds/001_*.txt` and `002_*.txt`), and every record says what happened.

Every test runs the real CLI in a subprocess against a real index and asserts what a user sees: exit codes,
the one line on stderr, node and run states, rows in the index.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

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
    last = run["decisions"][-1]
    assert (last["node"], last["decision"], last["actor"], last["comment"]) == (
        "check",
        "retry",
        "erin",
        "decided at resume",
    )

    optional = write_runbook(
        tmp_path, "opt", "optional check", FAILING.format(marker=tmp_path / "never", critical="false")
    )
    run_id = aborted_at_a_failure(optional, index)
    skipped = run_cli("resume", str(optional), str(run_id), "--skip", "check", "--state-path", index)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    run = shown(index, run_id)
    assert node_states_of(run) == {"check": "SKIPPED", "after": "OK"}
    assert next(n for n in run["nodes"] if n["node"] == "check")["reason"] == "skipped by operator"


# ---------------------------------------------------------------- point 9: set-status
def events_of(index: str, run_id: int) -> list:
    from playbook_nb.adapters.store import Store

    store = Store.open(index)
    try:
        return store.events(run_id)
    finally:
        store.close()


def test_set_status_running_needs_force_warns_and_the_event_says_who_and_how(tmp_path, index):
    book = write_runbook(tmp_path, "quick", "quick", '\n[a]\ntype = "Command"\ncommand_name = "echo a"\n')
    assert run_cli("run", str(book), "--state-path", index).returncode == 0

    invalid = run_cli("set-status", str(book), "1", "DONE", "--state-path", index)  # no terminal to confirm
    assert "invalid run status 'DONE'; valid: RUNNING, OK, NOK, ABORTED" in one_line_error(invalid)
    unforced = run_cli("set-status", str(book), "1", "RUNNING", "--state-path", index)
    assert "RUNNING by hand needs --force" in one_line_error(unforced)
    assert shown(index, 1)["status"] == "OK"

    forced = run_cli(
        "set-status", str(book), "1", "RUNNING", "--force", "--actor", "alice", "--state-path", index
    )
    assert forced.returncode == 0, forced.stderr
    assert "OK -> RUNNING" in forced.stdout
    assert "warning:" in forced.stderr and "no process driving it" in forced.stderr
    assert shown(index, 1)["status"] == "RUNNING"

    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable, ["-m", "playbook_nb", "set-status", str(book), "1", "ABORTED", "--actor", "bob", "--state-path", index],
        env={**os.environ, "NO_COLOR": "1", "TERM": "xterm"}, encoding="utf-8", timeout=60,
    )  # fmt: skip
    child.expect(r"Set run 1 from RUNNING to ABORTED\?")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert shown(index, 1)["status"] == "ABORTED"

    manual = [e.payload for e in events_of(index, 1) if e.kind == "status_set_manually"]
    assert [(p["from"], p["to"], p["actor"], p["forced"], p["confirmed"]) for p in manual] == [
        ("OK", "RUNNING", "alice", True, False),
        ("RUNNING", "ABORTED", "bob", False, True),
    ]


# ---------------------------------------------------------------- point 12: --max-retries and the seed's key
FLAKY = '\n[warm]\ntype = "Command"\ncommand_name = "echo cold >&2; exit 7"\n\n[serve]\ntype = "Command"\ncommand_name = "echo serving"\n'


def test_max_retries_help_says_retries_and_the_seed_config_key_counts_attempts(tmp_path, state_db):
    helped = run_cli("run", "--help")
    assert "N retries, N+1 attempts in all" in " ".join(helped.stdout.split())
    project = tmp_path / "project"
    project.mkdir()
    (project / "playbook.toml").write_text("[execution]\nmax_retries = 2\n")  # the seed's: 2 attempts in all
    book = write_runbook(project, "flaky", "flaky", FLAKY)
    pexpect = pytest.importorskip("pexpect")
    env = {
        **os.environ, "NO_COLOR": "1", "TERM": "xterm", "PLAYBOOK_CONFIG": "", "PLAYBOOK_ENV": "",
        "PLAYBOOK_MAX_RETRIES": "", "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }  # fmt: skip
    child = pexpect.spawn(
        sys.executable, ["-m", "playbook_nb", "run", str(book), "--state-path", str(state_db)],
        env=env, encoding="utf-8", timeout=60, cwd=str(project), dimensions=(50, 160),
    )  # fmt: skip
    child.expect(r"'warm' failed.*What now\?.*\[retry/skip/abort\]")
    child.sendline("retry")
    child.expect(r"'warm' failed.*What now\?.*\[skip/abort\]")  # 2 attempts made: no retry left
    child.sendline("skip")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    tries = db_rows(state_db, "SELECT attempt FROM attempts WHERE node_id = 'warm' ORDER BY attempt")
    assert [t["attempt"] for t in tries] == [1, 2]
    (run,) = db_rows(state_db, "SELECT params FROM runs")
    assert json.loads(run["params"])["max_retries"] == 1  # recorded as what the engine counts: retries


# ---------------------------------------------------------------- point 16: failures say what they are
def test_a_timeout_that_is_not_a_number_is_refused_at_start_or_named_in_the_nodes_error(tmp_path, state_db):
    body = '\n[slow]\ntype = "Command"\ncommand_name = "echo hi"\ntimeout = "{{ T }}"\n'
    book = write_runbook(tmp_path, "timeout", "timeout", body, variables='T = { default = "soon" }')
    line = one_line_error(run_cli("run", str(book), "--state-path", str(state_db)))
    assert "node 'slow', field 'timeout': expected an integer, got 'soon'" in line
    assert run_count(state_db) == 0

    late = write_runbook(
        tmp_path,
        "late",
        "late timeout",
        '\n[probe]\ntype = "Command"\ncommand_name = "echo \'{\\"t\\": \\"soon\\"}\'"\noutputs = "json"\n'
        '\n[slow]\ntype = "Command"\ncommand_name = "echo hi"\ntimeout = "{{ steps.probe.outputs.t }}"\n',
    )
    ran = run_cli("run", str(late), "--state-path", str(state_db))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    message = "node 'slow', field 'timeout': expected an integer, got 'soon'"
    assert f"error: {message}" in ran.stdout  # under the node's line, not only "skipped by policy"
    (attempt,) = db_rows(state_db, "SELECT status, error FROM attempts WHERE node_id = 'slow'")
    assert (attempt["status"], attempt["error"]) == ("NOK", message)


# ---------------------------------------------------------------- issue 13 point 8: honest outcomes
def test_a_rollback_drill_ends_ok_with_a_handled_failure_everywhere_and_strict_exits_1(tmp_path, index):
    from conftest import DEPLOY

    drill = ["--var", "ENVIRONMENT=staging", "--var", "HEALTHY=false", "--approve", "approve_deploy"]
    ran = run_cli("run", str(DEPLOY), *drill, "--state-path", index)
    assert ran.returncode == 0, ran.stdout + ran.stderr  # the seed's behaviour: the rollback handled it
    assert "run 1: OK with 1 handled failure" in ran.stdout
    listed = run_cli("runs", "list", "--state-path", index)
    assert "OK with 1 handled failure" in listed.stdout, listed.stdout
    text = run_cli("show", "1", "--state-path", index)
    assert "OK with 1 handled failure" in text.stdout.splitlines()[0]
    run = shown(index, 1)
    assert run["status"] == "OK" and run["status_label"] == "OK with 1 handled failure"
    assert run["handled_failures"] == ["health_check"]
    html = tmp_path / "run1.html"
    exported = run_cli("export", "1", "--html", str(html), "--state-path", index)
    assert exported.returncode == 0, exported.stderr
    page = html.read_text()
    assert 'data-status="HANDLED"' in page and ">OK with 1 handled failure</span>" in page

    strict = run_cli("run", str(DEPLOY), *drill, "--strict", "--state-path", index)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert shown(index, 2)["status"] == "OK"  # the record is the same; only the exit code is strict
    healthy = run_cli(
        "run",
        str(DEPLOY),
        "--var",
        "ENVIRONMENT=staging",
        "--approve",
        "approve_deploy",
        "--strict",
        "--state-path",
        index,
    )
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert shown(index, 3)["status_label"] == "OK"


# ---------------------------------------------------------------- point 5: seed plugins load unchanged
SEED_PLUGIN = """# my_plugin/plugin.py
from playbook.domain.plugins import Plugin, PluginMetadata, FunctionSignature, ParameterDef

class MyPlugin(Plugin):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            name="my-plugin",
            version="1.0.0",
            author="Your Name",
            description="Custom functionality for Playbook",
            functions={
                "my_function": FunctionSignature(
                    name="my_function",
                    description="Does something useful",
                    parameters={
                        "input": ParameterDef(
                            type="str",
                            required=True,
                            description="Input parameter"
                        )
                    }
                )
            }
        )

    def initialize(self, config):
        self.config = config

    def execute(self, function_name, params):
        if function_name == "my_function":
            return f"Processed: {params['input']}"

    def cleanup(self):
        pass
"""  # the seed README's example, character for character (../shared/seeds/001_*.txt, "Creating a Plugin")


def test_a_plugin_written_as_the_seed_readme_shows_runs_unchanged(tmp_path, state_db):
    site = tmp_path / "site"
    (site / "my_plugin").mkdir(parents=True)
    (site / "my_plugin" / "__init__.py").write_text("")
    (site / "my_plugin" / "plugin.py").write_text(SEED_PLUGIN)
    info = site / "my_plugin-1.0.0.dist-info"  # what `pip install my-plugin` leaves: its entry point
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text(
        '[playbook.plugins]\nmy-plugin = "my_plugin.plugin:MyPlugin"\n'.replace('"', "")
    )
    env = {"PYTHONPATH": str(site)}
    listed = run_cli("info", "--plugins", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "my-plugin" in listed.stdout and "my_function" in listed.stdout
    book = write_runbook(
        tmp_path, "seedplugin", "seed plugin",
        '\n[process]\ntype = "Function"\nplugin = "my-plugin"\nfunction = "my_function"\nfunction_params = { input = "hello" }\n',
    )  # fmt: skip
    assert run_cli("validate", str(book), env=env).returncode == 0
    ran = run_cli("run", str(book), "--state-path", str(state_db), env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (attempt,) = db_rows(state_db, "SELECT status, result FROM attempts WHERE node_id = 'process'")
    assert attempt["status"] == "OK" and "Processed: hello" in attempt["result"]


# ---------------------------------------------------------------- point 1: artifacts never collide
QUICK = '\n[a]\ntype = "Command"\ncommand_name = "echo a"\n'


def test_two_indexes_in_one_folder_keep_their_own_artifacts_and_prune_touches_only_its_own(tmp_path):
    book = write_runbook(tmp_path, "quick", "quick", QUICK)
    first, second = tmp_path / "state" / "first.db", tmp_path / "state" / "second.db"
    for db in (first, second):
        assert run_cli("run", str(book), "--state-path", str(db)).returncode == 0
        export = run_cli("export", "1", "--html", str(tmp_path / f"{db.stem}.html"), "--state-path", str(db))
        assert export.returncode == 0, export.stderr
    dirs = {
        db.stem: db_rows(db, "SELECT artifact_dir FROM runs WHERE id = 1")[0]["artifact_dir"]
        for db in (first, second)
    }
    assert dirs["first"] != dirs["second"], dirs  # run 1 of each index: two folders
    marker = Path(dirs["second"]) / "kept.txt"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("second index's file")

    pruned = run_cli("runs", "prune", "--older-than", "0m", "--state-path", str(first))
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert run_count(first) == 0 and run_count(second) == 1
    assert marker.read_text() == "second index's file"  # the other index's files are untouched


def test_postgresql_default_artifacts_are_not_the_default_sqlite_folder(pg_url, tmp_path):
    from playbook_nb.adapters.store import Store

    env_home = {"XDG_DATA_HOME": str(tmp_path / "data")}
    book = write_runbook(tmp_path, "quick", "quick", QUICK)
    ran = run_cli("run", str(book), "--state-path", pg_url, env={**env_home, "PLAYBOOK_ARTIFACTS_URL": ""})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    store = Store.open(pg_url)
    try:
        location = Path(store.get_run(1).artifact_dir)
    finally:
        store.close()
    sqlite_default = tmp_path / "data" / "playbook-nb" / "artifacts"
    assert sqlite_default in location.parents and location.parent != sqlite_default, location
    assert location.parent.name.startswith("postgresql-"), location


def test_the_projects_deploy_example_fails_its_rollback_drill_while_the_seed_fixture_stays_ok(state_db):
    from conftest import DEPLOY, REPO

    drill = ["--var", "ENVIRONMENT=staging", "--var", "HEALTHY=false", "--approve", "approve_deploy"]
    example = REPO / "notebooks" / "deploy_pipeline.playbook.toml"
    ran = run_cli("run", str(example), *drill, "--state-path", str(state_db))
    assert ran.returncode == 1, (
        ran.stdout + ran.stderr
    )  # health_check is critical here: NOK after the rollback
    (run,) = db_rows(state_db, "SELECT id, status FROM runs")
    states = dict(db_rows(state_db, "SELECT node_id, state FROM node_states WHERE run_id = ?", (run["id"],)))
    assert run["status"] == "NOK"
    assert (states["health_check"], states["rollback"], states["notify_failure"]) == ("NOK", "OK", "OK")
    assert states["notify_success"] == "SKIPPED"
    seed = run_cli("run", str(DEPLOY), *drill, "--state-path", str(state_db))
    assert seed.returncode == 0 and "OK with 1 handled failure" in seed.stdout, seed.stdout + seed.stderr


# ---------------------------------------------------------------- point 10: revisions of a run's runbook
GATED = """
[prepare]
type = "Command"
command_name = "echo preparing"

[gate]
type = "Manual"
prompt_after = "Go on?"

[finish]
type = "Command"
command_name = "{finish}"
"""


def test_resume_allow_changed_records_the_new_text_as_a_revision(tmp_path, index):
    import hashlib

    from playbook_nb.adapters.store import Store

    book = write_runbook(tmp_path, "revised", "revised", GATED.format(finish="echo first text"))
    first_text = book.read_text()
    assert run_cli("run", str(book), "--state-path", index).returncode == 3  # the gate fails closed
    book.write_text(first_text.replace("echo first text", "echo second text"))
    second_text = book.read_text()
    resumed = run_cli(
        "resume", str(book), "1", "--allow-changed", "--approve", "gate", "--actor", "frank", "--state-path", index
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    run = shown(index, 1)
    sha = [hashlib.sha256(t.encode()).hexdigest() for t in (first_text, second_text)]
    assert [(r["revision"], r["sha256"]) for r in run["revisions"]] == [(1, sha[0]), (2, sha[1])]
    assert run["revisions"][1]["actor"] == "frank" and run["runbook_sha256"] == sha[1]
    assert {a["node"]: a["revision"] for a in run["attempts"]} == {"prepare": 1, "finish": 2}
    store = Store.open(index)
    try:
        assert [r.runbook_text for r in store.revisions(1)] == [first_text, second_text]
        assert store.get_run(1).runbook_text == second_text
        revised = [e.payload for e in store.events(1) if e.kind == "runbook_revised"]
        assert revised == [{"revision": 2, "from": sha[0], "sha256": sha[1], "actor": "frank"}]
        assert store.verify_events(1) == []
    finally:
        store.close()
    text = run_cli("show", "1", "--state-path", index).stdout
    assert f"revision 1: sha256 {sha[0][:12]}" in text and f"revision 2: sha256 {sha[1][:12]}" in text
