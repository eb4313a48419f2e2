"""Compiling runbooks into notebooks: layout (the contract with playbook_nb.kernel_ext), metadata, exact source, CLI."""

from __future__ import annotations

import ast
import hashlib
import json
from importlib import resources

import nbformat
import pytest
from conftest import FIXTURES, INVALID_RUNBOOKS, VALID_RUNBOOKS
from hypothesis import given
from hypothesis import strategies as st

import playbook_nb
from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.adapters.notebook.source_cell import python_string_literal
from playbook_nb.app.inputs import load_runbook
from playbook_nb.domain.model import NodeType
from playbook_nb.domain.plan import topological_order
from playbook_nb.domain.validation import parse_runbook

PARAMETER_NAMES = [
    "variables",
    "secret_env",
    "approvals",
    "gate_policy",
    "actor",
    "comment",
    "run_id",
    "allow_changed_vars",
    "state_path",
    "max_retries",
    "gate_wait",
    "headless",
]


def role(cell) -> str | None:
    return cell.metadata.get("playbook_nb", {}).get("role")


def cells_with_role(nb, wanted: str) -> list:
    return [cell for cell in nb.cells if role(cell) == wanted]


def exec_source_cell(nb) -> str:
    (cell,) = cells_with_role(nb, "runbook_source")
    namespace: dict = {}
    exec(cell.source, namespace)  # our own generated literal, the point of the test
    return namespace["RUNBOOK_TOML"]


@pytest.fixture(params=VALID_RUNBOOKS, ids=lambda p: p.name.split(".")[0])
def compiled(request):
    runbook = load_runbook(request.param)
    return runbook, compile_runbook(runbook)


def test_fixtures_are_there():
    assert len(VALID_RUNBOOKS) >= 4 and INVALID_RUNBOOKS


def test_notebook_validates_and_has_python3_kernel(compiled):
    _, nb = compiled
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec["name"] == "python3"
    assert nb.metadata.kernelspec["language"] == "python"


def test_cell_roles_in_layout_order(compiled):
    runbook, nb = compiled
    order = topological_order(runbook)
    expected = ["title", "parameters", "runbook_source", "setup"]
    for _ in order:
        expected += ["node_doc", "node"]
    expected.append("summary")
    assert [role(cell) for cell in nb.cells] == expected
    kinds = [cell.cell_type for cell in nb.cells]
    assert kinds[:4] == ["markdown", "code", "code", "code"]
    assert kinds[-1] == "code"
    node_cells = cells_with_role(nb, "node")
    doc_cells = cells_with_role(nb, "node_doc")
    assert [c.metadata.playbook_nb["node"] for c in node_cells] == order
    assert [c.metadata.playbook_nb["node"] for c in doc_cells] == order
    assert all(c.cell_type == "markdown" for c in doc_cells)
    for cell in node_cells:
        node = runbook.node(cell.metadata.playbook_nb["node"])
        assert cell.cell_type == "code"
        assert cell.metadata.playbook_nb["type"] == str(node.type)


def test_topological_order_respects_dependencies(compiled):
    runbook, nb = compiled
    position = {c.metadata.playbook_nb["node"]: i for i, c in enumerate(cells_with_role(nb, "node"))}
    assert set(position) == set(runbook.nodes)
    for node in runbook.nodes.values():
        for upstream in node.upstream:
            assert position[upstream] < position[node.id], (upstream, node.id)


def test_node_cells_are_thin_magics(compiled):
    runbook, nb = compiled
    for cell in cells_with_role(nb, "node"):
        node = runbook.node(cell.metadata.playbook_nb["node"])
        if node.type is NodeType.PYTHON:
            first, _, body = cell.source.partition("\n")
            assert first == f"%%playbook_node {node.id}"
            assert body == node.code.rstrip("\n")
        else:
            assert cell.source == f"%playbook_node {node.id}"


def test_python_node_code_is_in_its_cell():
    runbook = load_runbook(FIXTURES / "incident_disk_full.playbook.toml")
    nb = compile_runbook(runbook)
    (cell,) = [c for c in cells_with_role(nb, "node") if c.metadata.playbook_nb["node"] == "analyse"]
    assert cell.metadata.playbook_nb["type"] == "Python"
    assert cell.source.startswith("%%playbook_node analyse\n")
    assert "needs_cleanup = total > THRESHOLD_MB * 1024 * 1024" in cell.source
    assert 'print(f"total bytes: {total}")' in cell.source


def test_parameters_cell_exact_names_and_defaults(compiled):
    """One typed, commented parameter per runbook variable (secrets never), then the control parameters."""
    runbook, nb = compiled
    (cell,) = cells_with_role(nb, "parameters")
    assert cell.metadata.tags == ["parameters"]
    tree = ast.parse(cell.source)
    typed = [stmt for stmt in tree.body if isinstance(stmt, ast.AnnAssign)]
    control = [stmt.targets[0].id for stmt in tree.body if isinstance(stmt, ast.Assign)]
    expected = [n for n, v in runbook.variables.items() if not v.secret and n.isidentifier()]
    assert [stmt.target.id for stmt in typed] == expected
    for stmt in typed:
        variable = runbook.variables[stmt.target.id]
        assert stmt.annotation.id == variable.type
        assert ast.literal_eval(stmt.value) == variable.default
    assert control == PARAMETER_NAMES
    namespace: dict = {}
    exec(cell.source, namespace)
    assert namespace["variables"] == {} and namespace["secret_env"] == {} and namespace["approvals"] == {}
    assert namespace["gate_policy"] == "fail-closed"
    assert namespace["run_id"] is None and namespace["headless"] is None
    assert namespace["max_retries"] == 3
    assert namespace["gate_wait"] == 0  # fail closed at once unless a wait is given
    assert namespace["actor"] == "" and namespace["comment"] == "" and namespace["state_path"] == ""
    # every parameter has its comment (papermill --help-notebook shows it)
    assignments = [line for line in cell.source.splitlines() if "=" in line and not line.startswith("#")]
    assert all("  # " in line for line in assignments)
    for name in runbook.secret_names:
        assert f"{name}:" not in cell.source and f"{name} =" not in cell.source


def test_setup_and_summary_cells(compiled):
    runbook, nb = compiled
    (setup,) = cells_with_role(nb, "setup")
    lines = setup.source.splitlines()
    assert lines[0] == "%load_ext playbook_nb"
    assert lines[1] == "from playbook_nb.kernel_ext import open_run"
    assert lines[2].startswith(f'pb = open_run(RUNBOOK_TOML, sha256="{runbook.sha256}", ')
    call = ast.parse(lines[2]).body[0].value
    keywords = {kw.arg: kw.value for kw in call.keywords}
    declared = [n for n, v in runbook.variables.items() if not v.secret]
    assert list(keywords) == ["sha256", *PARAMETER_NAMES, *(["parameters"] if declared else [])]
    for name in PARAMETER_NAMES:
        assert isinstance(keywords[name], ast.Name) and keywords[name].id == name
    if declared:  # each runbook variable's own parameter, by name
        given = keywords["parameters"]
        assert [k.value for k in given.keys] == declared and [v.id for v in given.values] == declared
    assert lines[3] == "pb.show()"
    assert len(lines) == 4
    (summary,) = cells_with_role(nb, "summary")
    assert summary.source == "pb.summary()"


def test_source_cell_round_trips_and_metadata(compiled):
    runbook, nb = compiled
    (cell,) = cells_with_role(nb, "runbook_source")
    assert cell.metadata.jupyter["source_hidden"] is True
    assert exec_source_cell(nb) == runbook.source_text
    meta = nb.metadata.playbook_nb
    assert meta["runbook_text"] == runbook.source_text
    assert meta["runbook_sha256"] == hashlib.sha256(runbook.source_text.encode("utf-8")).hexdigest()
    assert meta["runbook_sha256"] == runbook.sha256
    assert meta["title"] == runbook.meta.title
    assert meta["version"] == runbook.meta.version
    assert meta["compiled_with"] == playbook_nb.__version__
    assert meta["source_path"] == runbook.path


def test_title_cell_describes_runbook_and_variables(compiled):
    runbook, nb = compiled
    (title,) = cells_with_role(nb, "title")
    text = title.source
    assert text.startswith(f"# {runbook.meta.title}")
    assert runbook.meta.description in text
    assert runbook.meta.version in text and runbook.meta.author in text
    assert runbook.sha256[:12] in text
    assert "Run All" in text and "playbook-nb run" in text
    for var in runbook.variables.values():
        assert f"`{var.name}`" in text
        if var.description:
            assert var.description in text


def test_node_doc_cells_describe_nodes():
    runbook = load_runbook(FIXTURES / "deploy_pipeline.playbook.toml")
    nb = compile_runbook(runbook)
    docs = {c.metadata.playbook_nb["node"]: c.source for c in cells_with_role(nb, "node_doc")}
    assert "echo building {{APP_NAME}}" in docs["build_app"]  # unrendered template, in a code block
    assert "```sh" in docs["build_app"]
    assert "`health_check` (on failure)" in docs["rollback"]
    assert "`health_check` (on success)" in docs["notify_success"]
    assert "{{ ENVIRONMENT == 'prod' }}" in docs["security_scan"]
    assert "**Critical**: yes" in docs["security_scan"]
    assert "Deploy {{APP_NAME}} to {{ENVIRONMENT}}?" in docs["approve_deploy"]
    assert "`python.notify`" in docs["notify_success"]
    assert '"message": "{{APP_NAME}} deployed to {{ENVIRONMENT}}"' in docs["notify_success"]
    assert "**Type**: Manual" in docs["approve_deploy"]


def test_secret_default_never_shown_in_markdown():
    text = (
        "[variables]\n"
        'TOKEN = { default = "hunter2-default-value", secret = true, description = "API token" }\n'
        "[runbook]\n"
        'title = "t"\n'
        "[a]\n"
        'type = "Command"\n'
        'command_name = "echo {{TOKEN}}"\n'
    )
    nb = compile_runbook(parse_runbook(text))
    (title,) = cells_with_role(nb, "title")
    assert "`TOKEN`" in title.source and "API token" in title.source and "secret" in title.source
    for cell in nb.cells:
        if role(cell) != "runbook_source":
            assert "hunter2-default-value" not in cell.source


TRICKY_TEXTS = [
    "a = '''x'''\nb = \"\"\"y\"\"\"\n",
    "path = 'C:\\\\temp\\\\' # trailing backslash\\",
    "ends with a quote '",
    'ends with a double quote "',
    "both ''' and \"\"\" and \\n and \\'''",
    "windows\r\nline endings\r\n",
    "tab\tand unicode: é ✓ 🚀 \u2028 sep",
    "",
    "\\",
    "'''",
    "\x00 nul and \x0c form feed",
]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_string_literal_round_trips_exactly(text):
    literal = python_string_literal(text)
    assert ast.literal_eval(literal) == text
    namespace: dict = {}
    exec(f"RUNBOOK_TOML = {literal}", namespace)
    assert namespace["RUNBOOK_TOML"] == text


def test_string_literal_prefers_readable_raw_form():
    text = 'code = """\nprint("\\\\d+")\n"""\n'
    literal = python_string_literal(text)
    assert literal.startswith("r'''") and text in literal


@given(st.text())
def test_string_literal_round_trips_any_text(text):
    assert ast.literal_eval(python_string_literal(text)) == text


def test_runbook_with_quotes_and_backslashes_round_trips(tmp_path):
    text = (
        "# comment with ''' and \"\"\" and a backslash \\\n"
        "[runbook]\n"
        'title = "quotes \\" and \\\\ backslashes"\n'
        "[py]\n"
        'type = "Python"\n'
        "code = '''\n"
        'x = """triple"""\n'
        'print(r"\\d+\\\\", x)\n'
        "'''\n"
        "[cmd]\n"
        'type = "Command"\n'
        "command_name = '''printf '%s\\n' \"a\" ```'''\n"
    )
    runbook = parse_runbook(text)
    nb = compile_runbook(runbook)
    assert exec_source_cell(nb) == text
    path = write_notebook(nb, tmp_path / "nb" / "quotes.ipynb")
    again = nbformat.read(path, as_version=4)
    nbformat.validate(again)
    assert exec_source_cell(again) == text
    assert again.metadata.playbook_nb["runbook_text"] == text
    (py,) = [c for c in cells_with_role(again, "node") if c.metadata.playbook_nb["node"] == "py"]
    assert py.source == "%%playbook_node py\n" + runbook.node("py").code.rstrip("\n")
    (doc,) = [c for c in cells_with_role(again, "node_doc") if c.metadata.playbook_nb["node"] == "cmd"]
    assert "````sh" in doc.source  # the fence outgrows the backticks inside the command


def test_compile_is_deterministic(tmp_path):
    runbook = load_runbook(FIXTURES / "deploy_pipeline.playbook.toml")
    first = write_notebook(compile_runbook(runbook), tmp_path / "a.ipynb").read_text()
    second = write_notebook(compile_runbook(runbook), tmp_path / "b.ipynb").read_text()
    assert first == second
    ids = [cell["id"] for cell in json.loads(first)["cells"]]
    assert len(set(ids)) == len(ids)


def test_source_path_recorded():
    runbook = load_runbook(FIXTURES / "parallel_fanout.playbook.toml")
    nb = compile_runbook(runbook, source_path="elsewhere/fanout.playbook.toml")
    assert nb.metadata.playbook_nb["source_path"] == "elsewhere/fanout.playbook.toml"


def test_templates_ship_in_the_package():
    package = resources.files("playbook_nb.templates")
    for name in [
        "notebook_title.md.j2",
        "notebook_parameters.py.j2",
        "notebook_source.py.j2",
        "notebook_setup.py.j2",
        "notebook_node_doc.md.j2",
        "notebook_node.py.j2",
        "notebook_summary.py.j2",
    ]:
        assert package.joinpath(name).is_file(), name


def test_cli_compile_writes_notebook(cli, tmp_path):
    target = tmp_path / "out" / "deploy.ipynb"
    result = cli("compile", str(FIXTURES / "deploy_pipeline.playbook.toml"), "-o", str(target))
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(target, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.playbook_nb["runbook_text"] == (FIXTURES / "deploy_pipeline.playbook.toml").read_text()


@pytest.mark.parametrize("path", INVALID_RUNBOOKS, ids=lambda p: p.name.split(".")[0])
def test_cli_compile_refuses_invalid_runbook(cli, tmp_path, path):
    target = tmp_path / "bad.ipynb"
    result = cli("compile", str(path), "-o", str(target))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and "Traceback" not in result.stderr
    assert not target.exists()
