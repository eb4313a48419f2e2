"""Step outputs: declared on a node, taken from its attempt, used by later templates, kept in the index."""

from __future__ import annotations

import pytest

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.store import Store
from playbook_nb.app.recorder import load_outputs
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.validation import parse_runbook

HEAD = '[runbook]\ntitle = "outputs"\n'


def book(body: str, variables: str = ""):
    return parse_runbook(HEAD + (f"[variables]\n{variables}\n" if variables else "") + body)


def run(runbook, store, values=None, **options):
    session = RunSession.start(
        runbook,
        values or {},
        store,
        RunOptions(headless=True, **options),
        namespace={},
        executor=LocalExecutor(),
    )
    session.drive(lambda *_: None)
    session.close()
    return session


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "runs.db") as s:
        yield s


def stdout(store, run_id, node_id):
    return store.attempts(run_id, node_id)[-1].stdout


def test_regex_json_and_stdout_outputs_flow_into_later_templates_and_the_index(store):
    runbook = book(
        """
[check_disk]
type = "Command"
command_name = "echo '/dev/sda1 93% used'"
outputs = { used_pct = 'regex:(\\d+)% used', device = 'regex:(?P<device>/dev/\\w+)', line = "stdout" }

[inventory]
type = "Command"
command_name = "echo '{\\"hosts\\": [\\"web1\\", \\"web2\\"], \\"region\\": {\\"name\\": \\"eu\\"}}'"
outputs = "json"

[pick]
type = "Command"
command_name = "echo '{\\"region\\": {\\"name\\": \\"eu\\"}}'"
outputs = { region = "json:region.name" }
depends_on = []

[report]
type = "Command"
command_name = "echo {{ steps.check_disk.outputs.used_pct }} {{ steps.check_disk.outputs.device }} {{ steps.inventory.outputs.hosts[1] }} {{ steps.pick.outputs.region }}"
depends_on = ["check_disk", "inventory", "pick"]
when = "{{ steps.check_disk.outputs.used_pct | int > 90 }}"
"""
    )
    session = run(runbook, store)
    assert session.status == "OK"
    assert stdout(store, session.run_id, "report") == "93 /dev/sda1 web2 eu\n"
    recorded = load_outputs(store, session.run_id)
    assert recorded["check_disk"] == {"used_pct": "93", "device": "/dev/sda1", "line": "/dev/sda1 93% used"}
    assert recorded["inventory"]["hosts"] == ["web1", "web2"]
    assert recorded["pick"] == {"region": "eu"}


def test_python_and_function_outputs(store):
    runbook = book(
        """
[count]
type = "Python"
code = "total = 7\\nneeds_cleanup = total > 5"
outputs = ["needs_cleanup", "total"]

[note]
type = "Function"
plugin = "python"
function = "notify"
function_params = { message = "total={{ steps.count.outputs.total }} cleanup={{ steps.count.outputs.needs_cleanup }}" }
outputs = ["result"]
"""
    )
    session = run(runbook, store)
    assert session.status == "OK", store.node_states(session.run_id)
    outputs = load_outputs(store, session.run_id)
    assert outputs["count"] == {"needs_cleanup": True, "total": 7}
    assert "total=7 cleanup=True" in outputs["note"]["result"]  # notify returns its message


def test_a_declared_output_that_cannot_be_produced_fails_the_attempt(store):
    runbook = book(
        """
[check]
type = "Command"
command_name = "echo nothing here"
outputs = { used_pct = 'regex:(\\d+)% used' }
critical = true
"""
    )
    session = run(runbook, store)
    assert session.status == "NOK"
    (attempt,) = store.attempts(session.run_id, "check")
    assert attempt.status == "NOK" and "did not match stdout" in attempt.error


def test_outputs_of_a_node_that_is_not_upstream_are_a_validation_error_naming_both():
    with pytest.raises(RunbookError) as err:
        book(
            """
[a]
type = "Command"
command_name = "echo 1"
outputs = { n = "stdout" }

[b]
type = "Command"
command_name = "echo {{ steps.a.outputs.n }}"
depends_on = []
"""
        )
    assert "node 'b'" in str(err.value) and "'a' is not upstream of 'b'" in str(err.value)


def test_transitive_upstream_is_fine_and_undeclared_output_names_are_errors():
    book(
        """
[a]
type = "Command"
command_name = "echo 1"
outputs = { n = "stdout" }
[b]
type = "Command"
command_name = "echo b"
[c]
type = "Command"
command_name = "echo {{ steps.a.outputs.n }}"
"""
    )
    with pytest.raises(RunbookError, match="node 'a' declares no output 'm'"):
        book(
            """
[a]
type = "Command"
command_name = "echo 1"
outputs = { n = "stdout" }
[c]
type = "Command"
command_name = "echo {{ steps.a.outputs.m }}"
"""
        )
    with pytest.raises(RunbookError, match="unknown node 'zz'"):
        book('[c]\ntype = "Command"\ncommand_name = "echo {{ steps.zz.outputs.m }}"\n')


@pytest.mark.parametrize(
    "spec, message",
    [
        ("outputs = 'yaml'", 'expected "json" or a table'),
        ("outputs = { x = 'regex:(' }", "invalid regular expression"),
        ("outputs = { x = 'xpath:/a' }", "expected 'regex:PATTERN'"),
        ("outputs = { 1x = 'stdout' }", "must be an identifier"),
    ],
)
def test_bad_output_specs_are_refused(spec, message):
    with pytest.raises(RunbookError, match=message):
        book(f'[a]\ntype = "Command"\ncommand_name = "echo 1"\n{spec}\n')


def test_manual_nodes_have_no_outputs():
    with pytest.raises(RunbookError, match="unknown field 'outputs' for a Manual node"):
        book('[g]\ntype = "Manual"\noutputs = ["x"]\n')


def test_secret_outputs_are_masked_in_the_index_but_real_in_templates(store):
    runbook = book(
        """
[login]
type = "Command"
command_name = "echo token={{ TOKEN }}"
outputs = { token = 'regex:token=(\\S+)' }

[use]
type = "Command"
command_name = "test {{ steps.login.outputs.token }} = s3cr3t-value && echo matched"
""",
        variables="TOKEN = { secret = true, required = true }",
    )
    session = run(runbook, store, {"TOKEN": "s3cr3t-value"})
    assert session.status == "OK"
    assert stdout(store, session.run_id, "use") == "matched\n"  # the real value reached the command
    recorded = load_outputs(store, session.run_id)["login"]["token"]
    assert "s3cr3t-value" not in recorded
    rows = [e.payload for e in store.events(session.run_id) if e.kind == "outputs"]
    assert rows and "s3cr3t-value" not in repr(rows)


def test_resume_reloads_outputs_of_finished_nodes_from_the_index(store):
    runbook = book(
        """
[measure]
type = "Command"
command_name = "echo 41"
outputs = { n = "stdout" }

[gate]
type = "Manual"

[use]
type = "Command"
command_name = "echo got {{ steps.measure.outputs.n }}"
"""
    )
    first = run(runbook, store)  # fail closed at the gate: ABORTED
    assert first.status == "ABORTED"
    resumed = RunSession.resume(
        runbook, {}, store, first.run_id, RunOptions(headless=True), namespace={}, executor=LocalExecutor()
    )
    assert resumed.outputs == {"measure": {"n": "41"}}
    resumed.decide("gate", "approve", "alice")
    resumed.drive(lambda *_: None)
    resumed.close()
    assert resumed.status == "OK"
    assert stdout(store, first.run_id, "use") == "got 41\n"
