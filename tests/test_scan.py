"""`scan`: every artifact of a run with a secret variable is clean, and a planted secret is found.

The acceptance runbook `secret_token` runs headless (papermill) and from the terminal with a distinctive token;
the notebook, the HTML exports, the run index and the captured logs are scanned. Then the token is planted in
each kind of file, in each form (bare, shell-quoted, JSON-escaped), and `scan` must find it, name the place,
and never print it.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sqlite3

import nbformat
import pytest
from conftest import FIXTURES, run_cli

TOKEN = "tok-7f3a9c1e55"
RUNBOOK = FIXTURES / "secret_token.playbook.toml"
CLEAN_ENV = {"TOKEN": TOKEN}


def _no_secret_env(extra: dict | None = None) -> dict:
    """The test process's environment may carry PLAYBOOK_SECRET_* variables: blank them out."""
    import os

    env = {k: "" for k in os.environ if k.startswith("PLAYBOOK_SECRET_")}
    env.update(extra or {})
    return env


def scan(*args, env=None):
    result = run_cli("scan", *args, env=_no_secret_env(env))
    assert TOKEN not in result.stdout + result.stderr, "scan printed the secret"
    return result


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """Everything two runs of `secret_token` leave behind: index, notebook, HTML reports, console logs."""
    root = tmp_path_factory.mktemp("secret_artifacts")
    db = root / "state" / "runs.db"
    logs = root / "logs"
    logs.mkdir()
    for face, extra in (("headless", ["--headless"]), ("terminal", [])):
        result = run_cli(
            "run", str(RUNBOOK), *extra, "--var", f"API_TOKEN={TOKEN}", "--state-path", str(db), timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        (logs / f"{face}.stdout.log").write_text(result.stdout)
        (logs / f"{face}.stderr.log").write_text(result.stderr)
    exports = root / "exports"
    for run_id in (1, 2):
        result = run_cli(
            "export", str(run_id), "--html", str(exports / f"run{run_id}.html"), "--state-path", str(db)
        )
        assert result.returncode == 0, result.stderr
    result = run_cli("export", "1", "--notebook", str(exports / "run1.ipynb"), "--state-path", str(db))
    assert result.returncode == 0, result.stderr
    # The runs really used the token (masked in what they show): the test is not vacuous.
    conn = sqlite3.connect(db)
    stdout = [row[0] for row in conn.execute("SELECT stdout FROM attempts WHERE node_id = 'call_api'")]
    conn.close()
    assert len(stdout) == 2 and all("with token ********" in s for s in stdout)
    return root


def test_every_artifact_of_the_secret_runbook_is_clean(artifacts):
    files = {p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*") if p.is_file()}
    expected = {
        "state/runs.db",
        "state/artifacts/runs/1/notebook.ipynb",
        "exports/run1.html",
        "exports/run2.html",
    }
    assert expected | {"exports/run1.ipynb", "logs/headless.stdout.log", "logs/terminal.stdout.log"} <= files
    result = scan(str(artifacts), "--value-env", "TOKEN", env=CLEAN_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"clean: {len(files)} files scanned" in result.stdout


def test_the_runbook_and_var_options_give_the_secret(artifacts):
    result = scan(str(artifacts), "--runbook", str(RUNBOOK), "--var", f"API_TOKEN={TOKEN}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout


def test_a_planted_token_is_found_in_a_copy_of_the_artifacts(artifacts, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(artifacts, copy)
    (copy / "logs" / "leak.log").write_text(f"one\ntwo\nAuthorization: Bearer {TOKEN}\n")
    result = scan(str(copy), "--value-env", "TOKEN", env=CLEAN_ENV)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "leak.log: line 3" in result.stdout
    assert result.stdout.count("FOUND") == 1


@pytest.mark.parametrize(
    "value, line",
    [
        ("it's a secret", lambda v: f"run: curl -H {shlex.quote(v)}"),  # shell-quoted
        ('say "secret" now', lambda v: json.dumps({"token": v})),  # JSON-escaped
        (TOKEN, lambda v: f"plain {v}"),
    ],
    ids=["shell-quoted", "json-escaped", "bare"],
)
def test_quoted_and_escaped_forms_are_found(tmp_path, value, line):
    text = line(value)
    if value != TOKEN:
        assert value not in text  # the bare value is not there: only its other form is
    (tmp_path / "out.txt").write_text(f"header\n{text}\n")
    result = run_cli("scan", str(tmp_path), "--value-env", "S", env=_no_secret_env({"S": value}))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "out.txt: line 2" in result.stdout
    assert value not in result.stdout + result.stderr


def test_notebook_findings_name_the_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("print(token)"),
    ]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"token is {TOKEN}\n")]
    nbformat.write(nb, str(tmp_path / "leaky.ipynb"))
    result = scan(str(tmp_path), "--value-env", "TOKEN", env=CLEAN_ENV)
    assert result.returncode == 1
    assert "leaky.ipynb: cell 2 (code) output 0" in result.stdout


def test_index_findings_name_table_and_column(artifacts, tmp_path):
    db = tmp_path / "runs.db"
    shutil.copyfile(artifacts / "state" / "runs.db", db)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE attempts SET stderr = ? WHERE run_id = 2 AND node_id = 'notify'", (f"oops {TOKEN}",))
    conn.commit()
    conn.close()
    result = scan(str(db), "--value-env", "TOKEN", env=CLEAN_ENV)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "table attempts.stderr (row " in result.stdout


def test_html_findings_see_through_entities(tmp_path):
    value = "p<ss&word"
    (tmp_path / "r.html").write_text("<html>\n<pre>p&lt;ss&amp;word</pre>\n</html>\n")
    result = run_cli("scan", str(tmp_path), "--value-env", "S", env=_no_secret_env({"S": value}))
    assert result.returncode == 1
    assert "r.html: line 2" in result.stdout


def test_playbook_secret_variables_are_the_default(tmp_path):
    (tmp_path / "a.log").write_text(f"{TOKEN}\n")
    result = run_cli("scan", str(tmp_path), env=_no_secret_env({"PLAYBOOK_SECRET_API_TOKEN": TOKEN}))
    assert result.returncode == 1
    assert "a.log: line 1" in result.stdout
    assert TOKEN not in result.stdout


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["missing-dir"], {"PLAYBOOK_SECRET_X": TOKEN}, "does not exist"),
        ([".", "--value-env", "NOT_SET_ANYWHERE"], {}, "NOT_SET_ANYWHERE is not set"),
        ([".", "--var", "API_TOKEN=x"], {}, "--var needs --runbook"),
        ([".", "--values-file", "nope.txt"], {}, "cannot read"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, args, env, message):
    result = run_cli("scan", *args, env=_no_secret_env(env), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_values_file(tmp_path):
    values = tmp_path / "secrets.txt"
    values.write_text(f"# known secrets\n\n{TOKEN}\n")
    target = tmp_path / "target"
    target.mkdir()
    (target / "x.json").write_text(json.dumps({"a": [1, {"b": f"x{TOKEN}x"}]}))
    result = scan(str(target), "--values-file", str(values))
    assert result.returncode == 1
    assert "x.json: JSON $.a[1].b" in result.stdout
