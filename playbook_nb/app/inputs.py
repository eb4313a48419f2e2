"""What a command reads from its user before a run: the runbook file, and variable values by priority
(highest first): `--var` > `--vars-file` > `--vars-env PREFIX` > interactive prompt > default.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from playbook_nb.domain.errors import RunbookError, VariableError
from playbook_nb.domain.model import Runbook, Variable
from playbook_nb.domain.validation import parse_runbook, refuse_secret_defaults
from playbook_nb.domain.variables import check_value


def load_runbook(path: str | Path, *, allow_secret_defaults: bool = False) -> Runbook:
    """Read and parse a runbook file: a valid Runbook, or one RunbookError line naming the file. A secret
    variable with a default written in the file is refused (`refuse_secret_defaults`) unless
    `allow_secret_defaults` (scan reads such a file to look for that default)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookError("no such file", str(path)) from None
    except UnicodeDecodeError:
        raise RunbookError("not a UTF-8 text file", str(path)) from None
    except OSError as err:
        raise RunbookError(f"cannot read it ({err.strerror or err})", str(path)) from None
    runbook = parse_runbook(text, str(path))
    if not allow_secret_defaults:
        refuse_secret_defaults(runbook)
    return runbook


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
    import yaml  # at use: only a vars file needs PyYAML (9 ms at every start otherwise)

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


def resolve_variables(
    runbook: Runbook,
    *,
    cli_vars: Mapping[str, str] | None = None,
    vars_file: Path | None = None,
    vars_env_prefix: str | None = None,
    interactive: bool = False,
    prompt: Callable[[Variable], str | None] | None = None,
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

    if missing and interactive and prompt is not None and not allow_missing:
        for var in missing:
            values[var.name] = check_value(var, prompt(var), "prompt")
        missing = []
    if missing and not allow_missing:
        names = ", ".join(var.name for var in missing)
        noun = "variable" if len(missing) == 1 else "variables"
        raise VariableError(
            f"missing required {noun}: {names} (pass --var NAME=VALUE, --vars-file or --vars-env)"
        )
    return values
