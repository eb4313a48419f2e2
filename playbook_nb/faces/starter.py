"""The starter runbook that `playbook-nb create` and JupyterLab's "New runbook" card write."""

from __future__ import annotations

from datetime import UTC, datetime

from playbook_nb.adapters.export.dag_render import render_internal
from playbook_nb.domain.validation import parse_runbook


def starter_runbook(title: str, author: str, filename: str) -> str:
    """The text of a valid starter runbook (checked: a starter that does not validate is never handed out)."""
    text = render_internal(
        "starter.playbook.toml.j2",
        title=title,
        author=author,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        filename=filename,
    )
    parse_runbook(text, filename)
    return text
