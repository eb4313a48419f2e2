"""The runbook commands through the real CLI (`python -m playbook_nb`), and the DAG drawings they write."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from conftest import FIXTURES, INVALID_RUNBOOKS, VALID_RUNBOOKS, run_cli

from playbook_nb.adapters.export.dag_render import SVG_STATES, to_dot, to_svg
from playbook_nb.app.inputs import load_runbook
from playbook_nb.domain.validation import parse_runbook
from playbook_nb.presentation import look

SVG = "{http://www.w3.org/2000/svg}"
DEPLOY = FIXTURES / "deploy_pipeline.playbook.toml"


@pytest.mark.parametrize("path", VALID_RUNBOOKS, ids=lambda p: p.name)
def test_every_valid_fixture_validates(path):
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"valid: {path}")
    assert result.stderr == ""


@pytest.mark.parametrize("path", INVALID_RUNBOOKS, ids=lambda p: p.name)
def test_every_invalid_fixture_fails_with_one_line(path):
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("malformed", "invalid TOML at line 3, column 3"),
        ("cycle", "Runbook contains a cycle: a -> b -> a"),
        ("missing_dependency", "node 'a' depends on unknown node 'ghost'"),
        ("bad_condition_suffix", "Invalid condition 'maybe' in 'a:maybe'"),
        (
            "unknown_node_type",
            "node 'a': unknown type 'Shell' (expected Manual, Command, Function, Python or Ansible)",
        ),
        ("template_injection", "template reaches for Python internals ('__class__'); refused by the sandbox"),
    ],
)
def test_invalid_fixture_messages(name, expected):
    result = run_cli("validate", str(FIXTURES / "invalid" / f"{name}.playbook.toml"))
    assert expected in result.stderr


def test_validate_summary_for_deploy_pipeline():
    out = run_cli("validate", str(DEPLOY)).stdout
    assert "myapp deployment pipeline" in out  # title rendered with the defaults it can
    for line in [
        "nodes:     9",
        "edges:     9",
        "roots:     build_app",
        "leaves:    notify_success, notify_failure",
        "critical:  security_scan, approve_deploy",
        "gates:     approve_deploy",
        "variables: ENVIRONMENT (required), APP_NAME, SKIP_TESTS, HEALTHY",
    ]:
        assert line in out


def test_validate_check_vars_names_missing_variable():
    result = run_cli("validate", str(DEPLOY), "--check-vars")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: missing required variable: ENVIRONMENT (pass --var NAME=VALUE, --vars-file or --vars-env)"
    )
    ok = run_cli("validate", str(DEPLOY), "--check-vars", "--var", "ENVIRONMENT=prod")
    assert ok.returncode == 0, ok.stderr
    assert "every templated field renders with these values" in ok.stdout


def test_validate_bad_var_value_and_assignment():
    result = run_cli("validate", str(DEPLOY), "--var", "ENVIRONMENT=qa")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: variable ENVIRONMENT: 'qa' is not one of dev, staging, prod (from --var)"
    )
    result = run_cli("validate", str(DEPLOY), "--var", "ENVIRONMENT")
    assert result.returncode == 2 and "expected NAME=VALUE" in result.stderr


def test_validate_vars_file(tmp_path):
    vars_file = tmp_path / "prod.vars.yaml"
    vars_file.write_text("ENVIRONMENT: prod\nSKIP_TESTS: yes\n")
    result = run_cli("validate", str(DEPLOY), "--check-vars", "--vars-file", str(vars_file))
    assert result.returncode == 0, result.stderr


def test_validate_warnings(tmp_path):
    path = tmp_path / "w.playbook.toml"
    path.write_text(
        '[variables]\nUNUSED = { default = "x" }\nDIR = { default = "/tmp" }\n'
        '[runbook]\ntitle = "W"\n'
        '[old]\ntype = "Command"\ncommand_name = "true"\nskip = true\n'
        '[undo]\ntype = "Command"\ncommand_name = "ls {{ DIR | raw }}"\ndepends_on = ["old:failure"]\n'
    )
    result = run_cli("validate", str(path))
    assert result.returncode == 0
    assert "warning: " + f"{path}: variable UNUSED is declared but never used" in result.stdout
    assert "node 'undo', field 'command_name': the raw filter turns off shell quoting there" in result.stdout
    assert (
        "node 'undo' can never run: it only follows 'old:failure' (old never runs: skip = true)"
        in result.stdout
    )


def test_create_writes_a_valid_runbook_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "new.playbook.toml"
    result = run_cli("create", "--title", 'Disk "full" drill', "--author", "Ops Team", "-o", str(out))
    assert result.returncode == 0, result.stderr
    runbook = load_runbook(out)
    assert runbook.meta.title == 'Disk "full" drill' and runbook.meta.author == "Ops Team"
    assert run_cli("validate", str(out)).returncode == 0
    before = out.read_text()
    again = run_cli("create", "--title", "Other", "--author", "x", "-o", str(out))
    assert again.returncode == 2
    assert (
        again.stderr.strip()
        == f"error: {out}: already exists; refusing to overwrite it (choose another name with -o)"
    )
    assert out.read_text() == before


def test_create_default_file_name(tmp_path):
    result = run_cli("create", "--title", "My Workflow", "--author", "me", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my_workflow.playbook.toml").exists()


def test_dag_svg_and_dot_outputs(tmp_path):
    svg_path = tmp_path / "d.svg"
    result = run_cli("dag", str(DEPLOY), "--format", "svg", "-o", str(svg_path))
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(svg_path.read_text())
    assert root.tag == f"{SVG}svg"
    dot = run_cli("dag", str(DEPLOY), "--format", "dot")
    assert dot.stdout.startswith('digraph "{{APP_NAME}} deployment pipeline" {')
    alias = run_cli("export-dot", str(DEPLOY), "--output", str(tmp_path / "d.dot"))
    assert alias.returncode == 0
    assert (tmp_path / "d.dot").read_text() == dot.stdout
    bad = run_cli("dag", str(FIXTURES / "invalid" / "cycle.playbook.toml"))
    assert bad.returncode == 2 and "cycle" in bad.stderr


# --- drawings -----------------------------------------------------------------------------------------


def test_dot_marks_conditions_gates_and_critical_nodes():
    dot = to_dot(load_runbook(DEPLOY), {"health_check": "NOK"})
    assert (
        '"health_check" -> "rollback" '
        '[color="#dc2626", label="failure", fontcolor="#dc2626", style="dashed"];' in dot
    )
    assert '"health_check" -> "notify_success" [color="#16a34a", label="success"' in dot
    gate = next(line for line in dot.splitlines() if line.strip().startswith('"approve_deploy" ['))
    assert 'shape="diamond"' in gate and "bold" in gate and 'penwidth="2.5"' in gate
    check = next(line for line in dot.splitlines() if line.strip().startswith('"health_check" ['))
    assert f'fillcolor="{look("NOK").fill}"' in check


def test_svg_colours_by_state_and_is_self_contained():
    states = {
        "build_app": "OK",
        "run_tests": "running",
        "approve_deploy": "WAITING",
        "health_check": "NOK",
        "security_scan": "SKIPPED",
    }
    text = to_svg(load_runbook(DEPLOY), states)
    root = ET.fromstring(text)
    groups = {g.get("data-node-id"): g for g in root.iter(f"{SVG}g") if g.get("data-node-id")}
    assert len(groups) == 9
    for node_id, state in {**states, "rollback": "pending"}.items():
        group = groups[node_id]
        shape = (
            group.find(f"{SVG}rect") if group.find(f"{SVG}rect") is not None else group.find(f"{SVG}polygon")
        )
        assert shape.get("fill") == look(state).fill, node_id
    assert groups["approve_deploy"].find(f"{SVG}polygon") is not None  # gates are hexagons
    assert groups["approve_deploy"].find(f"{SVG}text").get("font-weight") == "bold"  # critical
    assert "href" not in text and "url(http" not in text  # no external references
    legend = [t.text for t in root.find(f"{SVG}g[@class='legend']").iter(f"{SVG}text")]
    assert legend == list(SVG_STATES)
    edge_labels = {
        t.text for g in root.iter(f"{SVG}g") if g.get("class") == "edge" for t in g.iter(f"{SVG}text")
    }
    assert edge_labels == {"success", "failure"}


def test_svg_rows_follow_topological_generations():
    root = ET.fromstring(to_svg(load_runbook(FIXTURES / "parallel_fanout.playbook.toml")))
    y = {
        g.get("data-node-id"): float(g.find(f"{SVG}rect").get("y"))
        for g in root.iter(f"{SVG}g")
        if g.get("data-node-id")
    }
    assert y["start"] < y["check_a"] == y["check_b"] == y["check_c"] == y["check_d"] < y["merge"]


def test_svg_grows_with_many_nodes_and_truncates_long_names():
    long_name = "restart the very long named payment service replica"
    body = '[runbook]\ntitle = "Big"\n[root]\ntype = "Command"\ncommand_name = "true"\n'
    for i in range(60):
        body += f'[n{i}]\ntype = "Command"\ncommand_name = "true"\n'
        body += f'name = "{long_name} {i}"\ndepends_on = "root"\n'
    text = to_svg(parse_runbook(body))
    root = ET.fromstring(text)
    # the 60-wide layer wraps onto 12 rows inside one box: the drawing grows downwards, not to 60 boxes across
    assert 5 * 190 < float(root.get("width")) < 7 * 190 and float(root.get("height")) > 12 * 46
    assert text.count('<g class="band">') == 1 and "layer 2: 60 nodes" in text
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert any(t.startswith(f"{long_name} 7 [n7]") for t in titles)  # the full name is kept in <title>
    labels = [
        g.find(f"{SVG}text").text for g in root.iter(f"{SVG}g") if g.get("data-node-id", "").startswith("n")
    ]
    assert all(len(label) <= 24 and label.endswith("…") for label in labels)


def test_svg_escapes_names():
    text = to_svg(
        parse_runbook('[runbook]\ntitle = "<T&>"\n[a]\ntype = "Manual"\nname = "<script>x</script>"\n')
    )
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert re.search(r"<title id=\"dag-title\">&lt;T&amp;&gt;</title>", text)
