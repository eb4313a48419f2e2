"""A secret's value is never written in a runbook file: a `secret = true` variable with a default there would be
copied, in clear, into every copy of the runbook text (the compiled notebook, the index's run_texts, the HTML
export's "Runbook as run"). So every face refuses such a runbook before anything runs or is written, with one
line naming the file and the variable; a record made by an older version still reads, exports and is found
by `scan --runbook`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HEADER, run_cli, write_runbook
from tornado import web

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.adapters.store import Store
from playbook_nb.domain.validation import parse_runbook
from playbook_nb.faces.server.runbook_contents import compiled_notebook

DEFAULT = "hunter2-written-in-the-file"
VARIABLES = f'TOKEN = {{ default = "{DEFAULT}", secret = true }}\nSERVICE = {{ default = "billing" }}'
BODY = '\n[call]\ntype = "Command"\ncommand_name = "echo {{SERVICE}} {{TOKEN}}"\n'
REFUSAL = (
    "variable TOKEN: a secret variable cannot have a default written in the runbook file (its value would be "
    "copied into the notebook and the run record): remove it and pass the value in PLAYBOOK_SECRET_TOKEN"
)


def _runbook(tmp_path: Path) -> Path:
    return write_runbook(tmp_path, "secret_default", "secret default", BODY, VARIABLES)


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["run", "--state-path", "{db}"],
        ["run", "--headless", "--state-path", "{db}"],
        ["compile", "-o", "{nb}"],
    ],
    ids=["validate", "run", "run --headless", "compile"],
)
def test_every_command_refuses_a_secret_default_in_one_line(tmp_path, command):
    runbook = _runbook(tmp_path)
    db, nb = tmp_path / "runs.db", tmp_path / "out.ipynb"
    args = [a.format(db=db, nb=nb) for a in command]
    done = run_cli(args[0], str(runbook), *args[1:])
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip() == f"error: {runbook}: {REFUSAL}"
    assert "Traceback" not in done.stdout + done.stderr
    assert DEFAULT not in done.stdout + done.stderr
    assert not db.exists() and not nb.exists()  # nothing ran, nothing was written


def _old_notebook(tmp_path: Path) -> Path:
    """A notebook compiled by a version that only warned about the default."""
    text = VARIABLES.join(["[variables]\n", "\n"]) + HEADER.format(title="secret default") + BODY
    notebook = tmp_path / "old.ipynb"
    write_notebook(compile_runbook(parse_runbook(text)), notebook)
    return notebook


def test_a_notebook_compiled_before_is_refused_headless_and_under_papermill(tmp_path):
    notebook = _old_notebook(tmp_path)
    db = tmp_path / "runs.db"
    done = run_cli("run", str(notebook), "--headless", "--state-path", str(db))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip() == f"error: {notebook}: {REFUSAL}"
    papermill = Path(sys.executable).with_name("papermill")
    out = tmp_path / "out.ipynb"
    env = {**os.environ, "PLAYBOOK_DB_PATH": str(db)}
    proc = subprocess.run(
        [str(papermill), str(notebook), str(out)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert proc.returncode != 0
    assert f"notebook: {REFUSAL}" in proc.stderr  # papermill names the setup cell's error
    assert not db.exists()  # the setup cell opened no run


def test_the_lab_front_door_refuses_it_with_the_line(tmp_path):
    runbook = _runbook(tmp_path)
    with pytest.raises(web.HTTPError) as info:
        compiled_notebook(runbook.read_text(), "secret_default.playbook.toml")
    assert info.value.status_code == 400
    assert info.value.log_message == f"secret_default.playbook.toml: {REFUSAL}"


def test_a_record_made_before_still_reads_exports_and_scan_finds_the_default(tmp_path):
    runbook = _runbook(tmp_path)
    text = runbook.read_text()
    db = tmp_path / "runs.db"
    with Store.open(db) as store:
        run = store.create_run(
            workflow="secret default",
            title="secret default",
            runbook_text=text,
            runbook_sha256=hashlib.sha256(text.encode()).hexdigest(),
            runbook_version="0.1.0",
            variables={"TOKEN": "********", "SERVICE": "billing"},
            params={},
            trigger="terminal",
            actor="alice",
            host="box1",
            mode="headless",
            node_ids=["call"],
        )
    shown = run_cli("show", str(run.id), "--state-path", str(db))
    assert shown.returncode == 0, shown.stderr
    assert "secret default" in shown.stdout
    report = tmp_path / "report.html"
    exported = run_cli("export", str(run.id), "--html", str(report), "--state-path", str(db))
    assert exported.returncode == 0, exported.stderr
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYBOOK_SECRET_")}
    scanned = run_cli("scan", str(report), "--runbook", str(runbook), env=clean_env)
    assert scanned.returncode == 1, (scanned.stdout, scanned.stderr)
    assert f"FOUND {report}" in scanned.stdout
    assert DEFAULT not in scanned.stdout + scanned.stderr
