"""Reading the files a step names (schemas, queries) relative to the runbook, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from playbook_nb.domain.errors import PluginError


def load_document(path: Path, what: str) -> Any:
    """A JSON or YAML file's content (`what` names it in the error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PluginError(f"{what} '{path}' cannot be read: {err.strerror or err}") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PluginError(
            f"{what} '{path}' is not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {first}"
        ) from None
