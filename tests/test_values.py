"""The one value converter (playbook_nb.domain.values): variables, templated parameters and plugin
parameters all go through it."""

from __future__ import annotations

import pytest

from playbook_nb.app.inputs import load_runbook, resolve_variables
from playbook_nb.domain.errors import PluginError, VariableError
from playbook_nb.domain.values import ConversionError, bool_word, convert, convert_or_raise


@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        ("42", "int", 42),
        (" 42 ", "int", 42),
        (42, "int", 42),
        (42.0, "int", 42),
        ("3.14", "float", 3.14),
        (3, "float", 3.0),
        ("true", "bool", True),
        ("False", "bool", False),
        ("1", "bool", True),
        ("0", "bool", False),
        ("yes", "bool", True),
        ("no", "bool", False),
        (True, "bool", True),
        ('["a","b"]', "list", ["a", "b"]),
        (["a"], "list", ["a"]),
        ('{"key":"value"}', "dict", {"key": "value"}),
        ("text", "str", "text"),
        (7, "str", "7"),
        (True, "str", "true"),
        ({"any": 1}, "any", {"any": 1}),
    ],
)
def test_conversions(value, type_name, expected):
    result = convert_or_raise(value, type_name, "here", error=PluginError)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "type_name", "message"),
    [
        ("4x", "int", "here: expected an integer, got '4x'"),
        (True, "int", "here: expected an integer, got True"),
        ("maybe", "bool", "here: expected a boolean (true/false, yes/no, 1/0), got 'maybe'"),
        ('{"a": 1}', "list", """here: expected a list (JSON array), got '{"a": 1}'"""),
        ("[1,", "list", "here: expected a list (JSON array), got '[1,'"),
        ("nan", "float", "here: expected a number, got 'nan'"),
        ("x", "complex", "here: unknown type 'complex' (known: "),
    ],
)
def test_refused_values_name_the_place(value, type_name, message):
    with pytest.raises(PluginError) as err:
        convert_or_raise(value, type_name, "here", error=PluginError)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_refusals_raise_the_error_class_asked_for():
    with pytest.raises(VariableError, match="variable 'TIMEOUT': expected an integer"):
        convert_or_raise("soon", "int", "variable 'TIMEOUT'", error=VariableError)


@pytest.mark.parametrize(
    ("text", "type_name", "expected"),
    [
        ("42", "int", 42),
        ("3.14", "float", 3.14),
        ("true", "bool", True),
        ("No", "bool", False),
        ("1", "bool", True),
        ("0", "bool", False),
        ('["a","b"]', "list", ["a", "b"]),
        ('{"key":"value"}', "dict", {"key": "value"}),
        (True, "str", "true"),
    ],
)
def test_seed_conversions(text, type_name, expected):
    assert convert(text, type_name) == expected


def test_bool_is_not_an_int_and_the_refusal_says_so_both_ways():
    with pytest.raises(ConversionError) as err:
        convert(True, "int")
    assert (str(err.value), err.value.rule) == ("expected an integer, got True", "is not an int")


@pytest.mark.parametrize(
    ("word", "expected"), [(" Yes ", True), ("TRUE", True), ("0", False), ("nope", None)]
)
def test_bool_words(word, expected):
    assert bool_word(word) is expected


def test_variables_and_plugin_parameters_agree_on_a_value(tmp_path):
    """The same text for an int variable and an int parameter: accepted alike, refused alike."""
    book = tmp_path / "b.playbook.toml"
    book.write_text(
        '[runbook]\ntitle = "t"\n[variables]\nN = { type = "int" }\n[a]\ntype = "Command"\ncommand_name = "echo {{ N }}"\n'
    )
    runbook = load_runbook(book)
    for text in ("42", " 7 ", "4x", "1.5", "true"):
        try:
            as_variable = resolve_variables(runbook, cli_vars={"N": text})["N"]
        except VariableError:
            as_variable = "refused"
        try:
            as_parameter = convert_or_raise(text, "integer", "p", error=PluginError)
        except PluginError:
            as_parameter = "refused"
        assert as_variable == as_parameter, text
