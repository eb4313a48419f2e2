"""The rules a variable's value must keep: its declared type (through the one converter,
`playbook_nb.domain.values`), choices, min, max and pattern. Where values come from (--var, a vars file,
the environment, a prompt) is `playbook_nb.app.inputs`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from playbook_nb.domain.errors import VariableError
from playbook_nb.domain.model import Runbook, Variable
from playbook_nb.domain.values import ConversionError, convert, to_text

SECRET_SHOWN_AS = "(secret value)"


def shown(var: Variable, value: Any) -> str:
    """How a value may appear in an error message: never the clear text of a secret."""
    return SECRET_SHOWN_AS if var.secret else repr(value)


def check_value(var: Variable, value: Any, source: str | None = None) -> Any:
    """Convert `value` to the variable's type and check choices, min, max and pattern.

    Returns the converted value; raises VariableError naming the variable, the value and the rule broken.
    """
    suffix = f" (from {source})" if source else ""
    try:
        converted = convert(value, var.type)
    except ConversionError as err:
        raise VariableError(f"variable {var.name}: {shown(var, value)} {err.rule}{suffix}") from None
    if var.choices is not None:
        allowed = [convert(choice, var.type) for choice in var.choices]
        if converted not in allowed:
            listed = ", ".join(to_text(choice) for choice in var.choices)
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
    if var.pattern is not None and not re.fullmatch(var.pattern, to_text(converted)):
        raise VariableError(
            f"variable {var.name}: {shown(var, value)} does not match pattern '{var.pattern}'{suffix}"
        )
    return converted


def _num(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def missing_required(runbook: Runbook, values: Mapping[str, Any]) -> list[str]:
    return [name for name, var in runbook.variables.items() if var.required and name not in values]
