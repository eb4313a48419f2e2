"""Parsing runbooks: fields, defaults, dependency resolution, and the one-line errors a user sees."""

from __future__ import annotations

import textwrap

import pytest
from conftest import FIXTURES, INVALID_RUNBOOKS, VALID_RUNBOOKS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook_nb.app.inputs import load_runbook
from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.model import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_MANUAL_PROMPT,
    DepCondition,
    Dependency,
    NodeType,
)
from playbook_nb.domain.validation import parse_runbook, validate_runbook

META = """
[runbook]
title = "T"
description = "d"
version = "0.1.0"
author = "me"
created_at = "2025-01-01T00:00:00Z"
"""


def rb(body: str, variables: str = "", path: str | None = "x.playbook.toml"):
    return parse_runbook(textwrap.dedent(variables) + META + textwrap.dedent(body), path)


def error_of(body: str, variables: str = "") -> str:
    with pytest.raises(RunbookError) as info:
        rb(body, variables)
    message = str(info.value)
    assert "\n" not in message
    return message


def cmd(node_id: str, extra: str = "") -> str:
    return f'\n[{node_id}]\ntype = "Command"\ncommand_name = "echo {node_id}"\n{extra}\n'


def deps(runbook, node_id):
    return [str(d) for d in runbook.nodes[node_id].depends_on]


# --- dependencies -------------------------------------------------------------------------------------


def test_omitted_depends_on_is_linear_declaration_order():
    runbook = rb(cmd("a") + cmd("b") + cmd("c"))
    assert deps(runbook, "a") == []
    assert deps(runbook, "b") == ["a"]
    assert deps(runbook, "c") == ["b"]


def test_explicit_empty_list_makes_a_root():
    runbook = rb(cmd("a") + cmd("b", "depends_on = []"))
    assert deps(runbook, "b") == []


def test_string_caret_star_and_suffixes_resolve_to_dependency_objects():
    runbook = rb(
        cmd("a")
        + cmd("b", 'depends_on = "a"')
        + cmd("c", 'depends_on = "^"')
        + cmd("d", 'depends_on = ["a:success", "b:failure"]')
        + cmd("e", 'depends_on = "*"')
        + cmd("f", 'depends_on = "^:failure"')
    )
    assert runbook.nodes["b"].depends_on == [Dependency("a")]
    assert runbook.nodes["c"].depends_on == [Dependency("b")]
    assert runbook.nodes["d"].depends_on == [
        Dependency("a", DepCondition.SUCCESS),
        Dependency("b", DepCondition.FAILURE),
    ]
    assert deps(runbook, "e") == ["a", "b", "c", "d"]
    assert runbook.nodes["f"].depends_on == [Dependency("e", DepCondition.FAILURE)]


def test_caret_on_first_node_means_no_dependency():
    runbook = rb(cmd("a", 'depends_on = "^"') + cmd("b", 'depends_on = "^"'))
    assert runbook.nodes["a"].depends_on == []
    assert runbook.nodes["b"].depends_on == [Dependency("a")]


def test_invalid_suffix_names_condition_and_item():
    message = error_of(cmd("a") + cmd("b", 'depends_on = ["a:maybe"]'))
    assert "node 'b', field 'depends_on'" in message
    assert "Invalid condition 'maybe' in 'a:maybe'" in message


def test_same_node_with_two_conditions_is_refused():
    message = error_of(cmd("a") + cmd("b", 'depends_on = ["a:success", "a:failure"]'))
    assert "depends on 'a' twice with different conditions" in message


def test_duplicate_plain_dependency_is_merged():
    runbook = rb(cmd("a") + cmd("b", 'depends_on = ["a", "a"]'))
    assert deps(runbook, "b") == ["a"]


# --- node fields --------------------------------------------------------------------------------------


def test_defaults_per_type():
    runbook = rb(
        cmd("c")
        + '\n[m]\ntype = "Manual"\n'
        + '\n[f]\ntype = "Function"\nplugin = "python"\nfunction = "notify"\n'
        + '\n[p]\ntype = "Python"\ncode = "x = 1"\n'
    )
    c, m, f, p = (runbook.nodes[k] for k in "cmfp")
    assert (c.type, c.timeout, c.interactive, c.critical, c.retries) == (
        NodeType.COMMAND,
        DEFAULT_COMMAND_TIMEOUT,
        False,
        False,
        0,
    )
    assert m.prompt_after == DEFAULT_MANUAL_PROMPT and m.is_gate
    assert (f.plugin, f.function, f.function_params) == ("python", "notify", {})
    assert p.code == "x = 1"
    assert [n.order for n in runbook.nodes.values()] == [0, 1, 2, 3]


def test_legacy_function_name_maps_to_python_plugin():
    runbook = rb('\n[n]\ntype = "Function"\nfunction_name = "playbook.functions.notify"\n')
    assert (runbook.nodes["n"].plugin, runbook.nodes["n"].function) == ("python", "notify")


def test_legacy_function_name_other_module_is_refused():
    message = error_of('\n[n]\ntype = "Function"\nfunction_name = "os.system"\n')
    assert "node 'n', field 'function_name'" in message and "playbook.functions.<name>" in message


def test_templated_timeout_and_critical_are_kept_as_text():
    runbook = rb(
        cmd("a", 'timeout = "{{T}}"\ncritical = "{% if T > 5 %}true{% endif %}"'),
        '[variables]\nT = { default = 10, type = "int" }\n',
    )
    assert runbook.nodes["a"].timeout == "{{T}}"
    assert runbook.nodes["a"].critical.startswith("{%")


def test_unknown_type_message():
    message = error_of('\n[a]\ntype = "Shell"\ncommand_name = "x"\n')
    assert (
        message
        == "x.playbook.toml: node 'a': unknown type 'Shell' (expected Manual, Command, Function, Python or Ansible)"
    )


def test_unknown_field_names_node_and_field():
    message = error_of(cmd("a", 'comand = "typo"'))
    assert message == "x.playbook.toml: node 'a': unknown field 'comand' for a Command node"


def test_field_of_another_type_says_where_it_belongs():
    assert "(it belongs to Manual nodes)" in error_of(cmd("a", 'prompt_after = "ok?"'))


def test_missing_required_field():
    message = error_of('\n[a]\ntype = "Command"\n')
    assert message == "x.playbook.toml: node 'a': missing required field 'command_name'"
    assert "missing required field 'code'" in error_of('\n[a]\ntype = "Python"\n')


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("retries = -1", "field 'retries': expected a non-negative integer, got -1"),
        ('retries = "3"', "field 'retries': expected a non-negative integer, got a string"),
        ('skip = "yes"', "field 'skip': expected true or false"),
        ("timeout = 0", "field 'timeout': expected a positive number of seconds"),
        ("depends_on = 3", "field 'depends_on': expected a node id or a list of node ids"),
        ("when = true", "field 'when': expected a template string"),
    ],
)
def test_field_type_errors(extra, expected):
    assert expected in error_of(cmd("a", extra))


def test_broken_toml_names_line_and_column():
    with pytest.raises(RunbookError) as info:
        parse_runbook('[runbook]\ntitle = "x"\n[a\n', "broken.toml")
    assert str(info.value).startswith("broken.toml: invalid TOML at line 3, column 3:")


def test_missing_runbook_table_and_title():
    with pytest.raises(RunbookError, match=r"missing the \[runbook\] table"):
        parse_runbook(cmd("a"))
    with pytest.raises(RunbookError, match="missing required field 'title'"):
        parse_runbook("[runbook]\nauthor = 'x'\n" + cmd("a"))


def test_no_nodes_and_non_table_top_level_key():
    assert "has no nodes" in str(pytest.raises(RunbookError, parse_runbook, META).value)
    assert "top-level key 'oops' is not a table" in str(
        pytest.raises(RunbookError, parse_runbook, "oops = 1\n" + META + cmd("a")).value
    )


def test_node_id_with_colon_is_refused():
    assert "must not be empty, '^' or '*', or contain ':'" in error_of('\n["a:b"]\ntype = "Manual"\n')


def test_meta_and_hash_kept():
    text = META + cmd("a")
    runbook = parse_runbook(text)
    assert runbook.source_text == text
    assert len(runbook.sha256) == 64
    assert runbook.meta.title == "T" and runbook.meta.created_at == "2025-01-01T00:00:00Z"


def test_meta_plugin_config_tables():
    runbook = parse_runbook(META + "\n[runbook.plugin_config.slack]\ntimeout = 30\n" + cmd("a"))
    assert runbook.meta.plugin_config == {"slack": {"timeout": 30}}


def test_unquoted_toml_datetime_becomes_text():
    runbook = parse_runbook("[runbook]\ntitle = 'x'\ncreated_at = 2025-01-01T00:00:00Z\n" + cmd("a"))
    assert runbook.meta.created_at.startswith("2025-01-01T00:00:00")


# --- variables declarations ---------------------------------------------------------------------------


def test_variable_declarations_and_type_inference():
    runbook = rb(
        cmd("a", 'command_name = "echo {{A}} {{B}} {{C}}"').replace('command_name = "echo a"\n', ""),
        '[variables]\nA = { required = true, choices = ["x", "y"] }\nB = { default = 3 }\nC = "plain"\n',
    )
    assert runbook.variables["A"].required and runbook.variables["A"].choices == ["x", "y"]
    assert runbook.variables["B"].type == "int"
    assert runbook.variables["C"].default == "plain"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ('{ type = "number" }', "variable X: unknown type 'number'"),
        ("{ colour = 1 }", "variable X: unknown field 'colour'"),
        ('{ default = "abc", type = "int" }', "variable X: invalid default: 'abc' is not an int"),
        ('{ default = "qa", choices = ["dev"] }', "variable X: invalid default: 'qa' is not one of dev"),
        ('{ pattern = "(" }', "variable X: invalid pattern '('"),
    ],
)
def test_variable_declaration_errors(spec, expected):
    assert expected in error_of(
        cmd("a", 'command_name = "echo {{X}}"').replace('command_name = "echo a"\n', ""),
        f"[variables]\nX = {spec}\n",
    )


# --- template checks at parse time --------------------------------------------------------------------


def test_undefined_variable_in_command_is_refused():
    message = error_of(cmd("x", "").replace("echo x", "echo {{FOO}}"))
    assert message == "x.playbook.toml: node 'x', field 'command_name': undefined variable 'FOO'"


def test_undefined_variable_in_function_params_and_title():
    message = error_of(
        '\n[f]\ntype = "Function"\nplugin = "p"\nfunction = "f"\nfunction_params = { m = "{{NOPE}}" }\n'
    )
    assert "field 'function_params.m': undefined variable 'NOPE'" in message
    with pytest.raises(RunbookError, match=r"\[runbook\], field 'title': undefined variable 'APP'"):
        parse_runbook("[runbook]\ntitle = '{{APP}}'\n" + cmd("a"))


def test_has_succeeded_of_unknown_node_is_refused():
    assert "has_succeeded('ghost'): unknown node 'ghost'" in error_of(
        cmd("a", "when = \"{{ has_succeeded('ghost') }}\"")
    )


def test_template_injection_fixture_refused_at_parse_time():
    with pytest.raises(RunbookError) as info:
        load_runbook(FIXTURES / "invalid" / "template_injection.playbook.toml")
    assert str(info.value).endswith(
        "node 'a', field 'when': template reaches for Python internals ('__class__'); refused by the sandbox"
    )


def test_load_runbook_missing_file():
    with pytest.raises(RunbookError, match="nope.toml: no such file"):
        load_runbook("nope.toml")


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID_RUNBOOKS, ids=lambda p: p.name)
def test_valid_fixtures_parse(path):
    runbook = load_runbook(path)
    assert runbook.nodes and validate_runbook(runbook).ok


@pytest.mark.parametrize("path", INVALID_RUNBOOKS, ids=lambda p: p.name)
def test_invalid_fixtures_fail_with_one_line(path):
    with pytest.raises(RunbookError) as info:
        load_runbook(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(str(path))


def test_fixture_dependencies_resolved():
    deploy = load_runbook(FIXTURES / "deploy_pipeline.playbook.toml")
    assert deploy.nodes["rollback"].depends_on == [Dependency("health_check", DepCondition.FAILURE)]
    incident = load_runbook(FIXTURES / "incident_disk_full.playbook.toml")
    assert deps(incident, "cleanup") == ["approve_cleanup"]
    fanout = load_runbook(FIXTURES / "parallel_fanout.playbook.toml")
    assert deps(fanout, "merge") == ["start", "check_a", "check_b", "check_c", "check_d"]


# --- validate_runbook ---------------------------------------------------------------------------------


def test_report_warns_about_unused_variable_raw_filter_and_dead_branch():
    runbook = rb(
        cmd("a", "skip = true")
        + cmd("b", 'depends_on = ["a:failure"]')
        + cmd("c", 'command_name = "ls {{ DIR | raw }}"').replace('command_name = "echo c"\n', ""),
        '[variables]\nUNUSED = { default = 1 }\nDIR = { default = "/tmp" }\n',
    )
    report = validate_runbook(runbook)
    assert report.ok
    text = "\n".join(report.warnings)
    assert "variable UNUSED is declared but never used" in text
    assert "variable DIR" not in text
    assert "node 'c', field 'command_name': the raw filter turns off shell quoting there" in text
    assert "node 'b' can never run" in text and "skip = true" in text


def test_report_counts_python_code_names_as_variable_use():
    runbook = rb('\n[p]\ntype = "Python"\ncode = "print(LIMIT)"\n', "[variables]\nLIMIT = { default = 3 }\n")
    assert validate_runbook(runbook).warnings == []


def test_report_with_values_renders_fields():
    runbook = rb(cmd("a", 'timeout = "{{T}}"'), '[variables]\nT = { default = "x" }\n')
    report = validate_runbook(runbook, {"T": "soon"})
    assert report.errors == ["x.playbook.toml: node 'a', field 'timeout': expected an integer, got 'soon'"]


def test_report_errors_never_show_secret_values():
    runbook = rb(cmd("a", 'timeout = "{{T}}"'), "[variables]\nT = { required = true, secret = true }\n")
    report = validate_runbook(runbook, {"T": "hunter2"})
    assert report.errors and "hunter2" not in report.errors[0] and "********" in report.errors[0]


# --- properties ---------------------------------------------------------------------------------------

TOML_PIECES = st.sampled_from(
    [
        "[runbook]\n",
        "title = 'x'\n",
        "[a]\n",
        "[b]\n",
        "[variables]\n",
        "type = 'Command'\n",
        "type = 'Manual'\n",
        "command_name = 'echo {{X}}'\n",
        "depends_on = ['a']\n",
        "depends_on = 'b:failure'\n",
        "depends_on = '^'\n",
        "when = '{{ x.__class__ }}'\n",
        "X = { default = 1 }\n",
        "code = 'x'\n",
        "[",
        "]",
        "=",
        "'",
        '"',
        "{{",
        "\n",
        "retries = -1\n",
        "timeout = 'x'\n",
        "critical = 'maybe'\n",
        "\x00",
        "é",
        "[[a]]\n",
        "a = [1, 'x']\n",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOML_PIECES, max_size=25), st.text(max_size=20))
def test_garbage_only_ever_raises_runbook_error(pieces, noise):
    try:
        parse_runbook("".join(pieces) + noise, "g.toml")
    except RunbookError as err:
        assert "\n" not in str(err)
