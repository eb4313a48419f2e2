"""Conversion of (usually templated, hence string) values to a declared type.

Shared by plugin parameters and template results: `"300"` -> 300 for an int, `"yes"` -> True for a bool,
JSON text for lists and dicts, as in the seed's "Automatic Type Conversion".
"""

from __future__ import annotations

import json
import math
from typing import Any

from playbook_nb.domain.errors import PlaybookError, PluginError

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
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})


class _Invalid(Exception):
    pass


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise _Invalid from None
    raise _Invalid


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise _Invalid from None
        if math.isnan(result):
            raise _Invalid
        return result
    raise _Invalid


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise _Invalid


def _from_json(value: Any, kind: type) -> Any:
    if isinstance(value, kind):
        return value
    if kind is list and isinstance(value, tuple):
        return list(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise _Invalid from None
        if isinstance(parsed, kind):
            return parsed
    raise _Invalid


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _Invalid


_CONVERTERS = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "list": lambda v: _from_json(v, list),
    "dict": lambda v: _from_json(v, dict),
    "any": lambda v: v,
}
_EXPECTED = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true/false, yes/no, 1/0)",
    "list": "a list (JSON array)",
    "dict": "a table (JSON object)",
}


def convert_value(
    value: Any, type_name: str | None, where: str, *, error: type[PlaybookError] = PluginError
) -> Any:
    """`value` converted to `type_name`; a value already of that type is returned unchanged.

    `where` names the value for the error message, e.g. "plugin 'python', function 'sleep', parameter
    'seconds'". Raises `error` (PluginError unless told otherwise) with one line.
    """
    canonical = TYPE_ALIASES.get((type_name or "any").strip().lower())
    if canonical is None:
        raise error(f"{where}: unknown type '{type_name}' (known: {', '.join(sorted(set(TYPE_ALIASES)))})")
    try:
        return _CONVERTERS[canonical](value)
    except _Invalid:
        raise error(f"{where}: expected {_EXPECTED[canonical]}, got {_short(value)}") from None
