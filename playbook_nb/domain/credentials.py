"""Which variables are secrets because of where they are used: a variable that reaches a credential
parameter of a Function step (`auth_token`, `password`, an `Authorization` header, ...) is treated as
`secret = true` even when the runbook does not say so, so a token never lands in clear in the record.

Pure: the rule looks at parameter names only (plugins also declare their own secret parameters, which the run
masks by value at run time).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from playbook_nb.domain.model import Runbook
from playbook_nb.domain.templating import is_template, variables_used

CREDENTIAL_PATTERNS = (
    "*token*",
    "*password*",
    "*passwd*",
    "*secret*",
    "*api_key*",
    "*api-key*",
    "*apikey*",
    "authorization",
    "proxy-authorization",
    "cookie",
    "*credential*",
)


def is_credential_name(name: str) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in CREDENTIAL_PATTERNS)


def _leaves(name: str, value: Any):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(str(key), item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(name, item)
    elif isinstance(value, str):
        yield name, value


def credential_variables(runbook: Runbook) -> set[str]:
    """Variables used (in templates) by parameters whose name is a credential's."""
    found: set[str] = set()
    for node in runbook.nodes.values():
        for name, text in _leaves("", node.function_params or {}):
            if is_template(text) and is_credential_name(name):
                try:
                    found |= variables_used(text)
                except Exception:  # an invalid template is reported by validation, not here
                    continue
    return found & set(runbook.variables)
