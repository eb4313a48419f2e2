"""Sandboxed templates: rendering, booleans and ints, shell quoting, parameter conversion, static checks."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from playbook_nb.domain.errors import RunbookError, TemplateError
from playbook_nb.domain.templating import (
    check_template,
    make_context,
    render,
    render_bool,
    render_command,
    render_int,
    render_params,
    uses_raw,
)

CTX = make_context({"ENV": "prod", "N": 3, "FLAG": True, "HOSTS": ["a b", "c"], "EVIL": "x; rm -rf ~"})


def test_render_substitutes_and_supports_filters_and_loops():
    assert render("{{ ENV | upper }}-{% for h in HOSTS %}[{{ h }}]{% endfor %}", CTX, "w") == "PROD-[a b][c]"
    assert render("{{ MISSING | default('x') }}", CTX, "w") == "x"


def test_undefined_variable_is_a_one_line_template_error():
    with pytest.raises(TemplateError) as info:
        render("{{ NOPE }}", CTX, "node 'a', field 'when'")
    assert str(info.value) == "node 'a', field 'when': undefined variable 'NOPE'"


def test_run_helpers_come_from_the_caller():
    ctx = make_context({}, has_succeeded=lambda n: n == "a", has_failed=lambda n: n == "b")
    assert render_bool("{{ has_succeeded('a') and has_failed('b') }}", ctx, "w") is True
    with pytest.raises(TemplateError, match="only available while a run is in progress"):
        render("{{ has_succeeded('a') }}", make_context({}), "w")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("True", True),
        ("yes", True),
        ("1", True),
        (" FALSE ", False),
        ("no", False),
        ("0", False),
        ("", False),
        ("None", False),
        ("{{ ENV == 'prod' }}", True),
        ("{{ N > 5 }}", False),
        (True, True),
    ],
)
def test_render_bool(template, expected):
    assert render_bool(template, CTX, "w") is expected


def test_render_bool_refuses_other_text():
    with pytest.raises(TemplateError) as info:
        render_bool("{{ ENV }}", CTX, "node 'a', field 'when'")
    assert str(info.value) == "node 'a', field 'when': expected true or false, got 'prod'"


def test_render_int():
    assert render_int(60, CTX, "t") == 60
    assert render_int("{{ N * 100 }}", CTX, "t") == 300
    with pytest.raises(TemplateError, match="t: expected an integer, got 'prod'"):
        render_int("{{ ENV }}", CTX, "t")


def test_command_values_are_shell_quoted():
    command = render_command("echo {{ EVIL }} {{ ENV }}", CTX, "c")
    assert command == "echo 'x; rm -rf ~' prod"
    assert shlex.split(command) == ["echo", "x; rm -rf ~", "prod"]
    out = subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout
    assert out == "x; rm -rf ~ prod\n"


def test_command_quotes_loop_items_and_raw_opts_out():
    assert render_command("ls {% for h in HOSTS %}{{ h }} {% endfor %}", CTX, "c") == "ls 'a b' c "
    assert render_command("sh -c {{ EVIL | raw }}", CTX, "c") == "sh -c x; rm -rf ~"
    assert render_command("echo {{ FLAG }}", CTX, "c") == "echo true"


def test_plain_render_does_not_quote():
    assert render("{{ EVIL }}", CTX, "w") == "x; rm -rf ~"


def test_sandbox_refuses_internals_at_render_time():
    with pytest.raises(TemplateError) as info:
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", CTX, "node 'a', field 'when'")
    assert str(info.value) == (
        "node 'a', field 'when': refused by the sandbox: "
        "access to attribute '__class__' of 'str' object is unsafe."
    )


def test_runtime_errors_become_template_errors():
    with pytest.raises(TemplateError, match="w: ZeroDivisionError"):
        render("{{ 1 / 0 }}", CTX, "w")
    with pytest.raises(TemplateError, match="w: template syntax error at line 1"):
        render("{{ oops", CTX, "w")


def test_render_params_converts_to_signature_types():
    ctx = make_context({"T": 300, "ON": True, "L": '["a","b"]', "APP": "x"})
    params = {
        "seconds": "{{T}}",
        "urgent": "{{ON}}",
        "items": "{{L}}",
        "message": "Alert for {{APP}}",
        "nested": {"k": "{{APP}}"},
        "n": 5,
    }
    rendered = render_params(
        params, ctx, {"seconds": "int", "urgent": bool, "items": "list", "message": "str"}
    )
    assert rendered == {
        "seconds": 300,
        "urgent": True,
        "items": ["a", "b"],
        "message": "Alert for x",
        "nested": {"k": "x"},
        "n": 5,
    }
    # unknown type: a lone expression keeps its value (a list of step outputs stays a list), text stays text
    assert render_params({"seconds": "{{T}}"}, ctx) == {"seconds": 300}
    assert render_params({"seconds": "{{T}}s", "l": "{{ [T, APP] }}"}, ctx) == {
        "seconds": "300s",
        "l": [300, "x"],
    }
    with pytest.raises(TemplateError, match=r"function_params.seconds: 'x' is not an int"):
        render_params({"seconds": "{{APP}}"}, ctx, {"seconds": "int"})


# --- static checks ------------------------------------------------------------------------------------


def test_check_template_returns_used_names_and_ignores_locals():
    used = check_template(
        "{% set x = ENV %}{% for h in HOSTS %}{{ h }}{{ x }}{% endfor %}"
        "{{ range(3) | list }}{{ has_failed('a') }}",
        "w",
        {"ENV", "HOSTS"},
        {"a"},
    )
    assert used == {"ENV", "HOSTS"}


def test_check_template_undefined_variable():
    with pytest.raises(RunbookError) as info:
        check_template("run {{ FOO }}", "node 'x', field 'command_name'", {"ENV"})
    assert str(info.value) == "node 'x', field 'command_name': undefined variable 'FOO'"


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("{{ ''.__class__ }}", "__class__"),
        ("{{ ENV['__doc__'] }}", "__doc__"),
        ("{{ ENV | attr('__class__') }}", "__class__"),
        ("{{ ENV._private }}", "_private"),
    ],
)
def test_check_template_refuses_python_internals(template, name):
    with pytest.raises(RunbookError) as info:
        check_template(template, "node 'a', field 'when'", {"ENV"})
    assert str(info.value) == (
        f"node 'a', field 'when': template reaches for Python internals ('{name}'); refused by the sandbox"
    )


def test_check_template_syntax_unknown_filter_and_node():
    with pytest.raises(RunbookError, match="w: template syntax error at line 1"):
        check_template("{% if %}", "w", set())
    with pytest.raises(RunbookError, match="w: unknown filter 'shout'"):
        check_template("{{ ENV | shout }}", "w", {"ENV"})
    with pytest.raises(RunbookError, match=r"w: has_failed\('b'\): unknown node 'b'"):
        check_template("{{ has_failed('b') }}", "w", set(), {"a"})


def test_uses_raw():
    assert uses_raw("echo {{ X | raw }}")
    assert not uses_raw("echo {{ X }}")


def test_render_params_accepts_where_in_third_place():
    with pytest.raises(TemplateError, match=r"^node 'a', field 'function_params'.m: undefined variable 'X'$"):
        render_params({"m": "{{ X }}"}, make_context({}), "node 'a'")
