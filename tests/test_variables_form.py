"""The variables form of the cockpit (issue 17.5), kernel side: a real open_run over a real SQLite index; typing
is simulated by setting the fields' values, Run by calling the button's handler."""

from __future__ import annotations

import json
import sqlite3

import pytest

pytest.importorskip("ipywidgets")

from playbook_nb.domain.errors import VariableError
from playbook_nb.kernel_ext import notebook_run
from playbook_nb.kernel_ext.variables_form import WAITING, VariablesForm

RUNBOOK = """\
[runbook]
title = "form drill"

[variables]
ENV = { choices = ["staging", "prod"], required = true }
HOST = { required = true, pattern = "web-[0-9]+" }
REPLICAS = { type = "int", default = 2, min = 1, max = 5 }
DRY_RUN = { type = "bool", default = true }
TOKEN = { secret = true, required = true }

[show]
type = "Command"
command_name = "echo {{ENV}} {{HOST}} {{REPLICAS}} {{DRY_RUN}}"
"""


def open_form(db, **params):
    return notebook_run.open_run(RUNBOOK, state_path=str(db), headless=False, actor="dana", **params)


def test_missing_required_variables_show_the_form_not_a_traceback(tmp_path, capsys):
    db = tmp_path / "runs.db"
    form = open_form(db)
    assert isinstance(form, VariablesForm)
    assert notebook_run.current() is form
    assert "missing required variables" in form.problem.value
    assert type(form.fields["ENV"]).__name__ == "Dropdown"
    assert type(form.fields["DRY_RUN"]).__name__ == "Checkbox"
    assert type(form.fields["TOKEN"]).__name__ == "Password"
    assert form.fields["REPLICAS"].value == "2"
    assert form.run_button.disabled
    assert "variable HOST: required" in form.message.value
    form.cell("show")  # a node cell under Run All: one line, no run
    assert WAITING in capsys.readouterr().out
    assert not db.exists() or not sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0]


def test_the_form_refuses_bad_values_as_typed_and_runs_with_good_ones(tmp_path, monkeypatch):
    db = tmp_path / "runs.db"
    form = open_form(db, variables={"ENV": "prod"})
    assert form.fields["ENV"].value == "prod"
    form.fields["HOST"].value = "db-1"
    assert "does not match pattern 'web-[0-9]+'" in form.message.value
    assert form.run_button.disabled
    form.fields["HOST"].value = "web-7"
    form.fields["REPLICAS"].value = "9"
    assert "above the maximum 5" in form.message.value
    form.fields["REPLICAS"].value = "3"
    form.fields["TOKEN"].value = "s3cr3t-value"
    assert form.message.value == ""
    assert not form.run_button.disabled
    form.fields["DRY_RUN"].value = False
    started = form.run()
    assert started is notebook_run.current() and form.started is started
    assert form.fields["TOKEN"].value == ""  # the secret is not kept in the widget state
    assert form.run_button.disabled
    row = sqlite3.connect(db).execute("select variables from runs").fetchone()
    recorded = json.loads(row[0])
    assert recorded["ENV"] == "prod" and recorded["HOST"] == "web-7"
    assert recorded["REPLICAS"] == 3 and recorded["DRY_RUN"] is False
    assert "s3cr3t-value" not in row[0]
    report = form.cell("show")  # cells run after Run reach the run
    assert report.ran and "prod web-7 3 false" in (report.result.stdout or "").lower()


def test_headless_runs_still_fail_in_one_line(tmp_path):
    with pytest.raises(VariableError, match="missing required"):
        notebook_run.open_run(RUNBOOK, state_path=str(tmp_path / "runs.db"), headless=True)


def test_a_refused_parameter_is_shown_in_the_form_and_an_environment_secret_need_not_be_typed(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("PLAYBOOK_SECRET_TOKEN", "from-the-env")
    db = tmp_path / "runs.db"
    form = open_form(db, variables={"ENV": "prod", "HOST": "web-1", "REPLICAS": 9})
    assert "above the maximum 5" in form.problem.value
    assert form.fields["REPLICAS"].value == "9" and form.run_button.disabled
    assert "TOKEN" not in form.message.value  # given by $PLAYBOOK_SECRET_TOKEN
    form.fields["REPLICAS"].value = "4"
    assert not form.run_button.disabled
    started = form.run()
    assert started.session.values["TOKEN"] == "from-the-env"
    recorded = json.loads(sqlite3.connect(db).execute("select variables from runs").fetchone()[0])
    assert recorded["REPLICAS"] == 4 and "from-the-env" not in json.dumps(recorded)


def runs_of(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, status, status_reason, variables FROM runs ORDER BY id").fetchall()
    finally:
        conn.close()


def test_a_started_run_shows_the_form_compact_and_it_starts_a_new_run_with_a_changed_value(
    tmp_path, monkeypatch
):
    db = tmp_path / "runs.db"
    monkeypatch.setenv("PLAYBOOK_SECRET_TOKEN", "tok-1a2b3c")
    first = open_form(db, variables={"ENV": "staging", "HOST": "web-1"})
    assert isinstance(first, notebook_run.NotebookRun)  # every value accepted: the run starts
    first.show()  # the setup cell
    form = first.variables_form
    assert isinstance(form, VariablesForm) and form.started is first
    assert form.fields_box.layout.display == "none"  # compact: one line of values
    assert f"run {first.session.run_id} started with" in form.problem.value
    assert "HOST = web-1" in form.problem.value and "TOKEN = (secret, from $PLAYBOOK_SECRET_TOKEN)" in (
        form.problem.value
    )
    assert "tok-1a2b3c" not in form.problem.value and form.fields["TOKEN"].value == ""
    form.toggle.click()
    assert form.fields_box.layout.display is None
    form.fields["HOST"].value = "db-9"
    assert form.run_button.disabled and "does not match pattern" in form.message.value
    form.fields["HOST"].value = "web-2"
    assert not form.run_button.disabled and form.run_button.description == "Start a new run"

    second = form.run()
    assert notebook_run.current() is second and second is not first
    assert second.variables_form is form and form.started is second
    (old, new) = runs_of(db)
    assert old[0] == first.session.run_id and old[1] == "ABORTED"
    assert old[2] == f"replaced by run {second.session.run_id}, started from the variables form"
    assert new[1] == "RUNNING" and json.loads(new[3])["HOST"] == "web-2"
    assert json.loads(new[3])["TOKEN"] != "tok-1a2b3c"
    second.cell("show")
    assert runs_of(db)[1][1] == "OK"


def test_a_runbook_without_variables_shows_no_form(tmp_path):
    run = notebook_run.open_run(
        '[runbook]\ntitle = "plain"\n\n[a]\ntype = "Command"\ncommand_name = "echo a"\n',
        state_path=str(tmp_path / "runs.db"), headless=False, actor="dana",
    )  # fmt: skip
    run.show()
    assert run.variables_form is None
