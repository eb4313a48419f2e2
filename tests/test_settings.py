"""One settings object per command: a default `run` reads the configuration once, and what it says reaches
every part of the command (where the run index is, the parallelism, the retry default)."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from playbook_nb.app import config as config_module
from playbook_nb.faces.cli import app, load_commands

RUNBOOK = """
[runbook]
title = "settings once"

[first]
type = "Command"
command_name = "echo one"

[second]
type = "Command"
command_name = "echo two"
depends_on = ["first"]
"""


def test_a_default_run_reads_the_configuration_once_and_uses_it(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "settings.playbook.toml").write_text(RUNBOOK)
    (work / "playbook.toml").write_text('[database]\npath = "from-config.db"\n[execution]\nparallel = 2\n')
    for name in (
        "PLAYBOOK_DB_PATH",
        "PLAYBOOK_DB_URL",
        "PLAYBOOK_CONFIG",
        "PLAYBOOK_ENV",
        "PLAYBOOK_ARTIFACTS_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user config file of the machine
    monkeypatch.chdir(work)
    reads = []
    real_load = config_module._load
    monkeypatch.setattr(
        config_module,
        "_load",
        lambda *a, **k: reads.append(__import__("traceback").format_stack(limit=8)) or real_load(*a, **k),
    )

    load_commands()  # CliRunner drives `app` itself, not through run_app
    result = CliRunner().invoke(app, ["run", "settings.playbook.toml"])

    assert result.exit_code == 0, result.output
    assert len(reads) == 1, "read again at:\n" + "".join(sum(reads[1:], []))
    conn = sqlite3.connect(work / "from-config.db")  # the index the configuration names
    status, params = conn.execute("SELECT status, params FROM runs").fetchone()
    states = dict(conn.execute("SELECT node_id, state FROM node_states"))
    conn.close()
    assert status == "OK" and states == {"first": "OK", "second": "OK"}
    assert json.loads(params)["parallel"] == 2  # [execution] parallel reached the session
