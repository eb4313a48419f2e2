"""The one value converter: text (from the CLI, a vars file, an environment variable, a rendered template)
or a TOML value becomes a value of a declared type.

Variables, templated `function_params` and plugin parameters all convert through `convert`, as in the
seed's "Automatic Type Conversion": `"300"` -> 300 for an int, `"yes"` -> True for a bool, JSON text for
lists and dicts. The true/false words live here and nowhere else.
"""

from __future__ import annotations

import json
import math
from typing import Any

from playbook_nb.domain.errors import PlaybookError

TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})
# The types a runbook variable may declare; plugin parameters may also use the aliases below.
VARIABLE_TYPES = ("str", "int", "float", "bool", "list", "dict")
TYPE_ALIASES = {
    "str": "str",
    "string": "str",
    "int": "int",
    "integer": "int",
    "float": "float",
    "number": "float",
    "bool": "bool",
    "boolean": "bool",
    "list": "list",
    "array": "list",
    "dict": "dict",
    "object": "dict",
    "any": "any",
}
# How a refused value is described: "expected an integer, got '4x'" (parameters) and "'4x' is not an int"
# (variables, whose value may be a secret and is shown by the caller).
_EXPECTED = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true/false, yes/no, 1/0)",
    "list": "a list (JSON array)",
    "dict": "a table (JSON object)",
}
_RULE = {
    "str": "is not a str",
    "int": "is not an int",
    "float": "is not a float",
    "bool": "is not a bool (use true/false, yes/no or 1/0)",
    "list": "is not a list (expected JSON)",
    "dict": "is not a dict (expected JSON)",
}


class UnknownTypeError(ValueError):
    """A declared type name that is none of TYPE_ALIASES."""

    def __init__(self, type_name: Any):
        self.type_name = type_name
        known = ", ".join(sorted(set(TYPE_ALIASES)))
        super().__init__(f"unknown type '{type_name}' (known: {known})")


class ConversionError(ValueError):
    """`value` cannot become a `type_name`. `expected` and `rule` are the two ways of saying so."""

    def __init__(self, value: Any, type_name: str):
        self.value = value
        self.type_name = type_name
        self.expected = _EXPECTED[type_name]
        self.rule = _RULE[type_name]
        super().__init__(f"expected {self.expected}, got {short_repr(value)}")


def short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bool_word(text: str) -> bool | None:
    """True or False for one of the true/false words (any case, surrounding spaces ignored); None otherwise."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def to_text(value: Any) -> str:
    """The text form of a value: booleans as true/false, lists and tables as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def canonical_type(type_name: str | None) -> str:
    """ "integer" -> "int" and so on; None means "any". Raises UnknownTypeError."""
    canonical = TYPE_ALIASES.get((type_name or "any").strip().lower())
    if canonical is None:
        raise UnknownTypeError(type_name)
    return canonical


def convert(value: Any, type_name: str | None) -> Any:
    """`value` as a `type_name` (or one of its aliases); a value already of that type comes back unchanged.

    Raises ConversionError (a ValueError) for a value that does not fit, UnknownTypeError for a bad type name.
    """
    canonical = canonical_type(type_name)
    if canonical == "any":
        return value
    result = _CONVERTERS[canonical](value)
    if result is _INVALID:
        raise ConversionError(value, canonical)
    return result


def convert_or_raise(
    value: Any, type_name: str | None, where: str, *, error: type[PlaybookError] = PlaybookError
) -> Any:
    """`convert`, with any problem raised as `error` in one line naming `where`:
    "plugin 'python', function 'sleep', parameter 'seconds': expected a number, got 'soon'"."""
    try:
        return convert(value, type_name)
    except ValueError as err:
        raise error(f"{where}: {err}") from None


_INVALID = object()


def _to_str(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | list | dict):
        return to_text(value)
    return _INVALID


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else _INVALID
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return _INVALID
    return _INVALID


def _to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return _INVALID
    else:
        return _INVALID
    return _INVALID if math.isnan(result) else result


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = bool_word(value)
        return _INVALID if word is None else word
    return _INVALID


def _from_json(value: Any, kind: type) -> Any:
    if isinstance(value, kind):
        return value
    if kind is list and isinstance(value, tuple):
        return list(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return _INVALID
        if isinstance(parsed, kind):
            return parsed
    return _INVALID


_CONVERTERS = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "list": lambda value: _from_json(value, list),
    "dict": lambda value: _from_json(value, dict),
}
