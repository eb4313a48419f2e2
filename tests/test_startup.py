"""Start-up stays light (issue 18.1): a command imports only what it needs.

The timings themselves are in benchmarks/bench_startup.py (ratios against the bare imports, measured in the
same run); here, in a fresh interpreter each time, which modules a command leaves in `sys.modules`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

# What no command that reads the index or the runbook should pay for: the notebook and kernel machinery, the
# widget, HTTP, the browser, ssh.
NOTEBOOK_AND_REMOTE = [
    "papermill",
    "nbformat",
    "nbclient",
    "jupyter_client",
    "ipykernel",
    "IPython",
    "ipywidgets",
    "ipycytoscape",
    "httpx",
    "playwright",
    "asyncssh",
    "ansible_runner",
    "fsspec",
]
# What `--help`, `runs list` and `show` do not need either: the runbook model and its graph, templates, the
# run session and executors, YAML.
RUN_MACHINERY = [
    "networkx",
    "jinja2",
    "yaml",
    "jsonpath_ng",
    "playbook_nb.app.session",
    "playbook_nb.adapters.executors",
    "playbook_nb.domain.validation",
    "rich.progress",
]
# Nor what only a run or a write needs: the engine and the runbook model behind it, OpenSSL's hashlib (the
# event chain, the pending-abort key: hashed only when a note waits), the host name's socket.
WRITE_MACHINERY = ["playbook_nb.domain.engine", "playbook_nb.domain.model", "hashlib", "socket"]
# `runs list` and `show` write strings (what Rich would write), off a terminal and on one: Rich's console and
# table stay unloaded (tests/test_cli_plain_output.py checks that the strings are Rich's).
RICH_LAYOUT = ["rich.console", "rich.table", "rich.text", "rich.markup"]
# Opening an index at the latest schema version is one PRAGMA: no migration file is read (importlib.resources
# and its readers were the way they were found).
OPENING = [
    "importlib.resources",
    "platformdirs",
    "tempfile",
]  # user_dirs on Linux; pending notes read in place
# Nor the secret shapes' patterns (a listing masks nothing more: the index holds secrets masked already).
MASKING = ["playbook_nb.domain.redact", "playbook_nb.domain.secret_shapes"]


def _loaded_after(code: str, tmp_path, env: dict[str, str] | None = None) -> set[str]:
    script = textwrap.dedent(
        """
        import json, sys
        {code}
        print("MODULES=" + json.dumps(sorted(sys.modules)))
        """
    ).format(code=textwrap.dedent(code))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env=None if env is None else {**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


def _present(modules: set[str], names: list[str]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


def test_importing_the_cli_loads_no_heavy_module(tmp_path):
    loaded = _loaded_after("import playbook_nb.faces.cli", tmp_path)
    assert _present(loaded, NOTEBOOK_AND_REMOTE + RUN_MACHINERY + ["rich.console", "pydantic"]) == []
    assert _present(loaded, ["html", "playbook_nb.app.settings", "playbook_nb.adapters.store"]) == []
    assert "typer" in loaded  # the check itself sees modules


def _run_command(argv: list[str]) -> str:
    return f"""
        from playbook_nb.faces.cli import run_app
        try:
            code = run_app({argv!r})
        except SystemExit as stop:  # click ends --help this way
            code = stop.code
        assert code == 0, code
    """


@pytest.fixture()
def index_with_a_run(tmp_path, cli):
    book = tmp_path / "one.playbook.toml"
    book.write_text('[runbook]\ntitle = "one"\n\n[a]\ntype = "Command"\ncommand_name = "true"\n')
    # a short path: `runs list` titles its table with the index's path, and a title wider than the table is
    # Rich's to wrap (the plain writer then leaves it to Rich); xdist's tmp_path can be that long
    short = Path(tempfile.mkdtemp(prefix="pn-", dir="/tmp"))
    db = short / "index.db"
    proc = cli("run", str(book), "--state-path", str(db))
    assert proc.returncode == 0, proc.stderr
    yield book, db
    shutil.rmtree(short, ignore_errors=True)


def test_help_runs_list_and_show_leave_the_run_machinery_unloaded(tmp_path, index_with_a_run):
    book, db = index_with_a_run
    for argv in (
        ["--help"],
        ["runs", "list", "--state-path", str(db)],
        ["show", "1", "--state-path", str(db)],
    ):
        # no pending-abort note in this test's own state directory (another test's would be hashed; a note
        # goes to the temporary directories only when the state directory refuses it)
        quiet = {"XDG_STATE_HOME": str(tmp_path / "state"), "TMPDIR": str(tmp_path)}
        # off a terminal, and on one with colours (faces/cli/ansi.py writes what Rich would: the same modules)
        for where in ({}, {"TTY_COMPATIBLE": "1", "NO_COLOR": "", "TERM": "xterm", "COLUMNS": "200"}):
            loaded = _loaded_after(_run_command(argv), tmp_path, {**quiet, **where})
            assert _present(loaded, NOTEBOOK_AND_REMOTE + RUN_MACHINERY) == [], (argv, where)
            assert _present(loaded, WRITE_MACHINERY) == [], (argv, where)
            assert _present(loaded, RICH_LAYOUT + OPENING + MASKING) == [], (argv, where)
            if argv[0] != "--help":  # the help lists every command; a command imports its own module only
                others = [
                    f"playbook_nb.faces.cli.{m}"
                    for m in ("model_cmds", "run_cmds", "export_cmds", "ops_cmds")
                ]
                assert _present(loaded, others) == [], (argv, where)


def test_validate_loads_no_notebook_or_run_machinery(tmp_path, index_with_a_run):
    book, _db = index_with_a_run
    loaded = _loaded_after(_run_command(["validate", str(book)]), tmp_path)
    assert _present(loaded, NOTEBOOK_AND_REMOTE) == []
    assert (
        _present(loaded, ["playbook_nb.app.session", "playbook_nb.adapters.executors", "rich.progress"]) == []
    )
    assert _present(loaded, ["yaml", "jsonpath_ng"]) == []  # a TOML runbook without outputs needs neither
    # off a terminal its lines are strings; without Function nodes the installed plugins are not looked up
    assert _present(loaded, RICH_LAYOUT + ["playbook_nb.adapters.plugins"]) == []
    assert "networkx" in loaded  # it does check the graph


def test_plain_help_lists_every_command(cli):
    proc = cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in (
        "validate",
        "run",
        "resume",
        "show",
        "runs",
        "info",
        "export",
        "compile",
        "config",
        "store",
    ):
        assert f"  {command}" in proc.stdout, command
    assert "╭" not in proc.stdout  # plain help (Rich's panels would cost their imports at every start)


_BUILT_ALONE = """
import json, sys
import typer.main
from playbook_nb.faces.cli.app import _narrowed, app, load_commands

def help_of(group, name):
    command = group.commands[name]  # Typer's own click (typer._click): its Context class, not click's
    parent = group.context_class(group, info_name="playbook-nb")
    return command.get_help(command.context_class(command, parent=parent, info_name=name))

def helps(group, prefix=""):
    found = {}
    for n, command in group.commands.items():
        found[prefix + n] = help_of(group, n)
        if hasattr(command, "commands"):
            found.update(helps(command, prefix + n + " "))
    return found

names = sys.argv[1].split()
if names == ["*"]:
    load_commands()
    print(json.dumps(helps(typer.main.get_command(app))))
else:
    load_commands(names[0])  # as run_app does: only the module of this command
    print(json.dumps(helps(typer.main.get_command(_narrowed([*names, "--state-path", "x"])))))
"""


def test_a_command_is_registered_and_built_alone_as_in_the_whole_application(tmp_path):
    """run_app imports only the module of the command its arguments name (app.COMMAND_MODULES) and builds
    only that command (Typer converts every command at each start); in a fresh interpreter each command so
    built has the help it has in the whole application, and the table names every command there is."""
    from playbook_nb.faces.cli.app import COMMAND_MODULES

    def built(name: str) -> dict[str, str]:
        proc = subprocess.run(
            [sys.executable, "-c", _BUILT_ALONE, name],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    whole = built("*")
    listed = [name for names in COMMAND_MODULES.values() for name in names]
    assert sorted(listed) == sorted(name for name in whole if " " not in name)  # each once, and no other
    for name in listed:
        group = {key: text for key, text in whole.items() if key == name or key.startswith(name + " ")}
        assert built(name) == group, name  # a group named alone: all its commands
    subcommands = [name for name in whole if " " in name]
    assert {"runs list", "runs diff", "store info"} <= set(subcommands)
    for name in subcommands:  # a group's command: the group with it alone (the group's help is not shown)
        got = built(name)
        assert set(got) == {name.split()[0], name} and got[name] == whole[name], name


def test_the_whole_application_answers_what_names_no_command():
    from playbook_nb.faces.cli.app import _narrowed, app

    for argv in ([], ["--help"], ["--version"], ["no-such-command"]):
        assert _narrowed(argv) is app, argv  # the whole application: its help, version, "No such command"
