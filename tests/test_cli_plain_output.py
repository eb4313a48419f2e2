"""`runs list` and `show` write their lines and tables as strings, without Rich (issue 18.1): what they write
must be what Rich writes, Rich's console built before the command runs (conftest.run_cli_through_rich).

Off a terminal: Rich is made to see a terminal (`TTY_COMPATIBLE=1`) without colour (`NO_COLOR`) and as wide
as the plain path (`COLUMNS`); its bold and dim codes stripped, the two match. On a terminal (faces/cli/
ansi.py): byte for byte, colours on, for each colour system, NO_COLOR, a narrow terminal (the tables that do
not fit are Rich's to draw), and in a real pty whose width Rich reads from the terminal."""

from __future__ import annotations

import re

import pytest

from playbook_nb.faces.cli.app import UNWRAPPED_WIDTH
from tests.conftest import FIXTURES, run_cli_through_rich

SGR = re.compile(r"\x1b\[[0-9;]*m")
RICH_ON_A_TERMINAL = {"TTY_COMPATIBLE": "1", "NO_COLOR": "1", "COLUMNS": str(UNWRAPPED_WIDTH)}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """Runs of several shapes: OK with a gate decision and variables, ABORTED with a reason, a handled
    failure, a time-stamped title with brackets (Rich's escape), a title with an emoji code."""
    from tests.conftest import run_cli

    tmp = tmp_path_factory.mktemp("plain")
    db = tmp / "index.db"
    deploy = str(FIXTURES / "deploy_pipeline.playbook.toml")
    handled = tmp / "handled.toml"
    handled.write_text(
        '[runbook]\ntitle = "handled 10:12:30"\n\n[a]\ntype = "Command"\ncommand_name = "false"\n'
        'on_failure = "continue"\n\n[b]\ntype = "Command"\ncommand_name = "true"\n'
    )
    odd = tmp / "odd.toml"
    odd.write_text(
        '[runbook]\ntitle = "odd [bold]x[/] :100: title"\n\n[a]\ntype = "Command"\ncommand_name = "true"\n'
    )
    for argv in (
        ["run", deploy, "--var", "ENVIRONMENT=staging", "--approve", "approve_deploy"],
        ["run", deploy, "--var", "ENVIRONMENT=prod"],
        ["run", str(handled)],
        ["run", str(odd)],
    ):
        proc = run_cli(*argv, "--no-interactive-vars", "--state-path", str(db))
        assert proc.returncode in (0, 3), proc.stderr
    return db


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "list"],
        ["runs", "list", "--status", "OK"],
        ["show", "1"],  # variables, decision, ran lines
        ["show", "2"],  # ABORTED with its reason
        ["show", "3"],  # OK with a handled failure
        ["show", "4"],  # a title Rich escapes and replaces an emoji code in
        ["show", "myapp deployment pipeline"],  # the runs of a workflow
    ],
    ids=["runs_list", "runs_list_ok", "show_ok", "show_aborted", "show_handled", "show_odd", "show_title"],
)
def test_plain_output_is_what_rich_writes(cli, index, argv):
    plain = cli(*argv, "--state-path", str(index))
    rich = run_cli_through_rich(*argv, "--state-path", str(index), env=RICH_ON_A_TERMINAL)
    assert plain.returncode == 0 and rich.returncode == 0, plain.stderr + rich.stderr
    assert "\x1b[" in rich.stdout  # Rich did write it (bold headers), as on a terminal
    assert plain.stdout == SGR.sub("", rich.stdout)
    assert plain.stdout.strip()


COMMANDS = {
    "runs_list": ["runs", "list"],
    "show_ok": ["show", "1"],
    "show_aborted": ["show", "2"],
    "show_handled": ["show", "3"],
    "show_odd": ["show", "4"],
    "show_title": ["show", "myapp deployment pipeline"],
}
TERMINALS = {
    "xterm": {"TERM": "xterm"},
    "256": {"TERM": "xterm-256color"},
    "truecolor": {"TERM": "xterm-256color", "COLORTERM": "truecolor"},
    "no_color": {"TERM": "xterm", "NO_COLOR": "1"},
    "narrow": {"TERM": "xterm", "COLUMNS": "60"},
}


@pytest.mark.parametrize("terminal", sorted(TERMINALS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_coloured_output_is_what_rich_writes(cli, index, command, terminal):
    argv = [*COMMANDS[command], "--state-path", str(index)]
    env = {"TTY_COMPATIBLE": "1", "NO_COLOR": "", "COLORTERM": "", "COLUMNS": "200", **TERMINALS[terminal]}
    ours, rich = cli(*argv, env=env), run_cli_through_rich(*argv, env=env)
    assert ours.returncode == 0 and rich.returncode == 0, ours.stderr + rich.stderr
    assert "\x1b[1m" in rich.stdout
    assert ours.stdout == rich.stdout


@pytest.mark.parametrize("terminal", ["xterm", "256", "narrow"])
@pytest.mark.parametrize("runbook", ["deploy_pipeline.playbook.toml", "parallel_fanout.playbook.toml"])
def test_coloured_validate_is_what_rich_writes(cli, runbook, terminal):
    argv = ["validate", str(FIXTURES / runbook)]
    env = {"TTY_COMPATIBLE": "1", "NO_COLOR": "", "COLORTERM": "", "COLUMNS": "200", **TERMINALS[terminal]}
    ours, rich = cli(*argv, env=env), run_cli_through_rich(*argv, env=env)
    assert ours.returncode == 0 and rich.returncode == 0, ours.stderr + rich.stderr
    assert ours.stdout == rich.stdout and "valid:" in ours.stdout


def _on_a_pty(argv: list[str], columns: int) -> bytes:
    """What `python argv` writes on a pty `columns` wide (stdout and stderr), TERM=xterm, colours on."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "COLORTERM")}
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0, b"".join(chunks)[-400:]
    return b"".join(chunks)


@pytest.mark.parametrize("columns", [200, 50], ids=["wide", "narrow"])
@pytest.mark.parametrize("command", ["runs_list", "show_ok"])
def test_on_a_real_terminal_the_output_is_what_rich_writes(index, command, columns):
    from tests.conftest import _THROUGH_RICH

    argv = [*COMMANDS[command], "--state-path", str(index)]
    ours = _on_a_pty(["-m", "playbook_nb", *argv], columns)
    rich = _on_a_pty(["-c", _THROUGH_RICH, *argv], columns)
    assert b"\x1b[32m" in rich  # green: colours on
    assert ours == rich


@pytest.mark.parametrize(
    "runbook,extra",
    [
        ("deploy_pipeline.playbook.toml", []),  # Function nodes, gates, variables
        ("deploy_pipeline.playbook.toml", ["--var", "ENVIRONMENT=prod"]),  # variables checked
        ("parallel_fanout.playbook.toml", []),
    ],
    ids=["deploy", "deploy_with_vars", "fanout"],
)
def test_plain_validate_is_what_rich_writes(cli, runbook, extra):
    argv = ["validate", str(FIXTURES / runbook), *extra]
    plain, rich = cli(*argv), run_cli_through_rich(*argv, env=RICH_ON_A_TERMINAL)
    assert plain.returncode == 0 and rich.returncode == 0, plain.stderr + rich.stderr
    assert "\x1b[" in rich.stdout
    assert plain.stdout == SGR.sub("", rich.stdout) and plain.stdout.startswith("valid: ")


@pytest.mark.parametrize(
    "cell,plain",
    [
        ("2026-12-02 10:12:30", True),  # a time: digits between colons are no emoji code
        ("at 10:12:30-text: x", True),
        ("score :100: today", False),  # but 100 and 1234 are (rich._emoji_codes)
        ("keys :1234:", False),
        ("a :thumbs_up: b", False),
        ("a::b", False),
    ],
    ids=["time", "time_variant", "digits_100", "digits_1234", "name", "empty_name"],
)
def test_a_cell_with_colons_is_plain_only_when_rich_writes_it_as_is(cell, plain):
    import io

    from rich.console import Console
    from rich.table import Table

    from playbook_nb.faces.cli.terminal_view import _plain_table

    drawn = _plain_table(None, ("when",), [(cell,)], UNWRAPPED_WIDTH)
    assert (drawn is not None) == plain
    if drawn is not None:
        out = io.StringIO()
        table = Table()
        table.add_column("when")
        table.add_row(cell)
        Console(file=out, width=UNWRAPPED_WIDTH).print(table)
        assert drawn == out.getvalue()
