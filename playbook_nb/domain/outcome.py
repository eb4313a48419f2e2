"""Honest outcomes: a run that ended OK past failures says so ("OK with N handled failures") wherever its status
shows (runs list, show, the terminal summary, the widget, the HTML export), and `--strict` makes it exit 1.

A handled failure is a node whose last attempt failed and that was then skipped (by policy, by the operator,
or with `on_failure = "continue"`); its `x:failure` branch (the rollback) is what handled it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def handled_failures(nodes: Iterable[Any]) -> list[str]:
    """Ids of the nodes (rows with `node_id`, `state`, `failed`) whose failure the run went on past."""
    return [row.node_id for row in nodes if row.failed and row.state == "SKIPPED"]


def status_label(status: str, handled: int) -> str:
    """The words a run's status shows with: "OK", "OK with 2 handled failures", "NOK", ..."""
    if handled and status in ("OK", "RUNNING"):
        plural = "s" if handled != 1 else ""
        return f"{status} with {handled} handled failure{plural}"
    return status
