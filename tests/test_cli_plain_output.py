"""Off a terminal `runs list` and `show` write their lines and tables as strings, without Rich (issue 18.1):
what they write must be what Rich writes. Rich is made to see a terminal (`TTY_COMPATIBLE=1`) without colour
(`NO_COLOR`) and as wide as the plain path (`COLUMNS`); its bold and dim codes stripped, the two match."""

from __future__ import annotations

import re

import pytest

from playbook_nb.faces.cli.app import UNWRAPPED_WIDTH
from tests.conftest import FIXTURES

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
    rich = cli(*argv, "--state-path", str(index), env=RICH_ON_A_TERMINAL)
    assert plain.returncode == 0 and rich.returncode == 0, plain.stderr + rich.stderr
    assert "\x1b[" in rich.stdout  # Rich did write it (bold headers), as on a terminal
    assert plain.stdout == SGR.sub("", rich.stdout)
    assert plain.stdout.strip()


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
    plain, rich = cli(*argv), cli(*argv, env=RICH_ON_A_TERMINAL)
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
