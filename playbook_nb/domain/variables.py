"""Variable values: where they come from, how text becomes a typed value, and the rules they must keep.

Priority, highest first: `--var` > `--vars-file` > `--vars-env PREFIX` > interactive prompt > default.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from playbook_nb.domain.errors import VariableError
from playbook_nb.domain.model import Runbook, Variable

VARIABLE_TYPES = ("str", "int", "float", "bool", "list", "dict")
TRUE_WORDS = {"true", "1", "yes"}
FALSE_WORDS = {"false", "0", "no"}
SECRET_SHOWN_AS = "(secret value)"


def convert_value(value: Any, type_name: str) -> Any:
    """Convert `value` (usually text from the CLI, a file or a template) to `type_name`.

    Raises ValueError whose message is the rule broken, e.g. "is not an int"; callers add the where.
    Conversions follow the seed: int, float, bool from true/false/1/0/yes/no, list and dict from JSON.
    """
    if type_name not in VARIABLE_TYPES:
        raise ValueError(f"has unknown type '{type_name}' (expected one of {', '.join(VARIABLE_TYPES)})")
    if type_name == "str":
        return value if isinstance(value, str) else _to_text(value)
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("is not a bool (use true/false, yes/no or 1/0)")
    if type_name == "int":
        if isinstance(value, bool):
            raise ValueError("is not an int")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError("is not an int") from None
    if type_name == "float":
        if isinstance(value, bool):
            raise ValueError("is not a float")
        if isinstance(value, int | float):
            return float(value)
        try:
            return float(str(value).strip())
        except ValueError:
            raise ValueError("is not a float") from None
    expected = list if type_name == "list" else dict
    if isinstance(value, expected):
        return value
    try:
        parsed = json.loads(str(value))
    except json.JSONDecodeError:
        raise ValueError(f"is not a {type_name} (expected JSON)") from None
    if not isinstance(parsed, expected):
        raise ValueError(f"is not a {type_name} (expected JSON)")
    return parsed


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def shown(var: Variable, value: Any) -> str:
    """How a value may appear in an error message: never the clear text of a secret."""
    return SECRET_SHOWN_AS if var.secret else repr(value)


def check_value(var: Variable, value: Any, source: str | None = None) -> Any:
    """Convert `value` to the variable's type and check choices, min, max and pattern.

    Returns the converted value; raises VariableError naming the variable, the value and the rule broken.
    """
    suffix = f" (from {source})" if source else ""
    try:
        converted = convert_value(value, var.type)
    except ValueError as err:
        raise VariableError(f"variable {var.name}: {shown(var, value)} {err}{suffix}") from None
    if var.choices is not None:
        allowed = [convert_value(choice, var.type) for choice in var.choices]
        if converted not in allowed:
            listed = ", ".join(_to_text(choice) for choice in var.choices)
            raise VariableError(f"variable {var.name}: {shown(var, value)} is not one of {listed}{suffix}")
    if var.type in ("int", "float"):
        if var.min is not None and converted < var.min:
            raise VariableError(
                f"variable {var.name}: {shown(var, value)} is below the minimum {_num(var.min)}{suffix}"
            )
        if var.max is not None and converted > var.max:
            raise VariableError(
                f"variable {var.name}: {shown(var, value)} is above the maximum {_num(var.max)}{suffix}"
            )
    if var.pattern is not None and not re.fullmatch(var.pattern, _to_text(converted)):
        raise VariableError(
            f"variable {var.name}: {shown(var, value)} does not match pattern '{var.pattern}'{suffix}"
        )
    return converted


def _num(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def parse_var_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """`["K=V", ...]` from repeated `--var` options -> {"K": "V"}; the last assignment of a name wins."""
    values: dict[str, str] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise VariableError(f"--var '{item}': expected NAME=VALUE (missing '=')")
        if not name:
            raise VariableError(f"--var '{item}': expected NAME=VALUE (empty name)")
        values[name] = value
    return values


def load_vars_file(path: Path) -> dict[str, Any]:
    """Read a vars file (TOML, YAML or JSON, chosen by extension) into a flat mapping of name -> value.

    A file whose only key is a `variables` table (as in a runbook) is accepted too.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise VariableError(f"vars file {path}: cannot read it ({err.strerror or err})") from None
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise VariableError(
                f"vars file {path}: unknown extension '{suffix}' (expected .toml, .yaml, .yml or .json)"
            )
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VariableError(f"vars file {path}: cannot parse it: {first_line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VariableError(f"vars file {path}: expected a mapping of NAME = value at the top level")
    if set(data) == {"variables"} and isinstance(data["variables"], dict):
        data = data["variables"]
    return data


def default_prompt(var: Variable) -> str:
    from rich.prompt import Prompt

    label = f"Enter value for {var.name}"
    if var.description:
        label += f" ({var.description})"
    if var.choices:
        label += f" [{'/'.join(_to_text(c) for c in var.choices)}]"
    return Prompt.ask(label, password=var.secret)


def resolve_variables(
    runbook: Runbook,
    *,
    cli_vars: Mapping[str, str] | None = None,
    vars_file: Path | None = None,
    vars_env_prefix: str | None = None,
    interactive: bool = False,
    prompt: Callable[[Variable], str] | None = None,
    environ: Mapping[str, str] | None = None,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Values for the runbook's variables, converted and checked.

    A variable with no value from any source and no default is left out of the result (templates that use it
    fail with "undefined variable"); a required one is an error unless `allow_missing` (used by `validate`
    without `--check-vars`). In non-interactive mode every missing required variable is named in one line.
    """
    cli_vars = dict(cli_vars or {})
    unknown = sorted(set(cli_vars) - set(runbook.variables))
    if unknown:
        declared = ", ".join(runbook.variables) or "none"
        raise VariableError(f"--var {unknown[0]}: no such variable in the runbook (declared: {declared})")
    file_vars = load_vars_file(vars_file) if vars_file is not None else {}
    environ = os.environ if environ is None else environ

    values: dict[str, Any] = {}
    missing: list[Variable] = []
    for name, var in runbook.variables.items():
        if name in cli_vars:
            values[name] = check_value(var, cli_vars[name], "--var")
        elif name in file_vars:
            values[name] = check_value(var, file_vars[name], f"vars file {vars_file}")
        elif vars_env_prefix and f"{vars_env_prefix}{name}" in environ:
            values[name] = check_value(var, environ[f"{vars_env_prefix}{name}"], f"${vars_env_prefix}{name}")
        elif var.has_default:
            values[name] = check_value(var, var.default, "default")
        elif var.required:
            missing.append(var)

    if missing and interactive and not allow_missing:
        ask = prompt or default_prompt
        for var in missing:
            values[var.name] = check_value(var, ask(var), "prompt")
        missing = []
    if missing and not allow_missing:
        names = ", ".join(var.name for var in missing)
        noun = "variable" if len(missing) == 1 else "variables"
        raise VariableError(
            f"missing required {noun}: {names} (pass --var NAME=VALUE, --vars-file or --vars-env)"
        )
    return values


def missing_required(runbook: Runbook, values: Mapping[str, Any]) -> list[str]:
    return [name for name, var in runbook.variables.items() if var.required and name not in values]
