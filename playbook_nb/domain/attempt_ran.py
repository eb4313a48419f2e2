"""What each attempt ran, as recorded: the `attempt_ran` event the recorder writes when an attempt's call is
built (rendered command, plugin function and parameters, or Python code; secrets masked). Reports read this,
never a re-rendering of the runbook with the run's variables (which may have changed since, see issue 13).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

ATTEMPT_RAN_EVENT = "attempt_ran"


def ran_by_attempt(events: Iterable[Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """{(node id, attempt): what it ran} from a run's events (objects with kind, node_id, attempt, payload)."""
    ran: dict[tuple[str, int], dict[str, Any]] = {}
    for event in events:
        if event.kind == ATTEMPT_RAN_EVENT and event.node_id and event.attempt:
            ran[(event.node_id, int(event.attempt))] = dict((event.payload or {}).get("ran") or {})
    return ran


def ran_text(ran: dict[str, Any]) -> str:
    """One line (or the code) saying what an attempt ran, for a terminal or a report."""
    if "command" in ran and ran["command"] is not None:
        return str(ran["command"])
    if "function" in ran:
        params = ran.get("params") or {}
        args = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str) if params else ""
        return f"{ran['function']}({args})" if args else str(ran["function"])
    if "code" in ran:
        return str(ran["code"] or "")
    return ", ".join(f"{k}={v}" for k, v in ran.items())
