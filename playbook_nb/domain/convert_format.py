"""`playbook-nb convert`: a runbook from TOML to OPS-001's YAML shape and back, through the same tables both
parsers read. The result is parsed again before it is handed out, so a conversion never yields a runbook
that does not load."""

from __future__ import annotations

from typing import Any

import tomli_w

from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.parsing import load_toml
from playbook_nb.domain.validation import parse_runbook
from playbook_nb.domain.yaml_format import load_yaml, looks_like_yaml, tables_to_yaml


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def convert_text(text: str, path: str | None, to: str) -> str:
    """`text` (the runbook at `path`) written as `to` ("yaml" or "toml")."""
    source = "yaml" if looks_like_yaml(text, path) else "toml"
    if to not in ("yaml", "toml"):
        raise RunbookError(f"cannot convert to {to!r} (yaml or toml)")
    parse_runbook(text, path)  # only a valid runbook is converted
    if source == to:
        return text
    if to == "yaml":
        result = tables_to_yaml(load_toml(text, path))
        suffix = ".yml"
    else:
        tables, _ = load_yaml(text, path)
        ordered: dict[str, Any] = {key: tables[key] for key in ("variables", "runbook") if key in tables}
        ordered.update((key, value) for key, value in tables.items() if key not in ordered)
        result = tomli_w.dumps(_without_none(ordered), multiline_strings=True)
        suffix = ".playbook.toml"
    parse_runbook(result, f"converted{suffix}")
    return result
