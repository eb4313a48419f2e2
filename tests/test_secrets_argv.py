"""No secret in an argument list (issue 24 point 4): a secret variable used in a Command reaches it through
its environment; the command line holds a quoted "$NAME" reference. While the command runs, no
/proc/*/cmdline of any process (runner, papermill, kernel, shell, command) holds the value, in the terminal
and headless faces. `| raw` on a secret is a validation warning; `--var SECRET=...` warns."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from abort_helpers import kill_all, pids_with, start_cli, wait_for
from conftest import run_cli, write_runbook

SECRET = "s3cr3t-" + uuid.uuid4().hex[:12]


def _runbook(tmp_path, marker: str):
    body = (
        '\n[use_token]\ntype = "Command"\n'
        f"command_name = 'printf %s {{{{ API_TOKEN }}}} | sha256sum; sleep {marker}'\n"
    )
    variables = 'API_TOKEN = { required = true, secret = true, description = "a token" }'
    return write_runbook(tmp_path, "secret", "secret in env", body, variables)


def _cmdlines_with(value: str) -> list[tuple[int, str]]:
    hits = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if value.encode() in cmdline:
            hits.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return hits


@pytest.mark.slow
@pytest.mark.parametrize("headless", [False, True], ids=["terminal", "headless"])
def test_no_process_of_the_run_has_the_secret_in_its_arguments(tmp_path, headless):
    marker = f"5.{uuid.uuid4().int % 10**6:06d}"
    runbook = _runbook(tmp_path, marker)
    db = tmp_path / "runs.db"
    args = ["run", str(runbook), "--vars-env", "PBT_", "--state-path", str(db)]
    proc = start_cli(*args, *(["--headless"] if headless else []), env={"PBT_API_TOKEN": SECRET})
    try:
        wait_for(lambda: pids_with(marker), what="the command", proc=proc)
        running = _cmdlines_with(marker)
        leaks = _cmdlines_with(SECRET)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        kill_all(marker)
    assert running, "no process of the command was seen"
    shell = [cmd for _pid, cmd in running if cmd.startswith("/bin/sh -c")]
    assert shell and '"$API_TOKEN"' in shell[0], running
    assert leaks == [], leaks
    assert proc.returncode == 0, (stdout, stderr)
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    output = stdout
    if headless:  # the command's output is in the executed notebook
        from conftest import db_rows

        output = db_rows(db, "SELECT stdout FROM attempts WHERE node_id = 'use_token'")[0]["stdout"]
    assert digest in output, output  # the command really got the value, through its environment
    assert SECRET not in stdout + stderr


def test_var_with_a_secret_warns_that_the_process_list_shows_it(tmp_path):
    runbook = _runbook(tmp_path, "0")
    done = run_cli(
        "run", str(runbook), "--var", f"API_TOKEN={SECRET}", "--state-path", str(tmp_path / "r.db")
    )
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert warning and "--var API_TOKEN=..." in warning[0], done.stderr
    assert "--vars-env" in warning[0] and "--vars-file" in warning[0] and "prompt" in warning[0]
    assert SECRET not in done.stdout + done.stderr


def test_raw_on_a_secret_is_a_validation_warning(tmp_path):
    body = '\n[use_token]\ntype = "Command"\ncommand_name = "curl -H \\"Authorization: {{ API_TOKEN | raw }}\\" x"\n'
    variables = "API_TOKEN = { required = true, secret = true }"
    runbook = write_runbook(tmp_path, "raw", "raw secret", body, variables)
    done = run_cli("validate", str(runbook))
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    assert "secret variable API_TOKEN with the raw filter" in text, text
    assert "${API_TOKEN}" in text


def test_the_rendered_command_refers_to_the_secret_by_name():
    from playbook_nb.domain import templating

    context, env = templating.secret_command_context({"API_TOKEN": SECRET, "HOST": "web 1"}, {"API_TOKEN"})
    command = templating.render_command("curl -u {{ API_TOKEN }} {{ HOST }}", context)
    assert command == "curl -u \"$API_TOKEN\" 'web 1'"
    assert env == {"API_TOKEN": SECRET}
    raw = templating.render_command('echo "Bearer {{ API_TOKEN | raw }}"', context)
    assert raw == 'echo "Bearer ${API_TOKEN}"'
