"""A run with nobody at its gate waits for a decision from anywhere (issue 16): `--gate-wait 30m`.

The waiting run opens a gate wait in the index (`Store.open_gate_wait`), then reads it, cheaply, until someone
decides (`playbook-nb approve`, the REST API: a compare-and-set on that row, see `app.remote_decisions`) or the
deadline passes. Nothing else changes meanwhile: the run stays RUNNING, the node WAITING. A decision found is
returned to the session, which applies it through the engine (recorded with its actor and source) and closes
the wait 'applied' in the same transaction. At the deadline the wait is closed 'expired' by a compare-and-set
too, so a decision that lands in the last instant is either taken or refused, never lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from playbook_nb.adapters.store import Store
from playbook_nb.domain.decisions import GateDecision
from playbook_nb.domain.engine import Decision

WAIT_STEP = 1.0  # longest stretch between two looks at the abort switch while waiting


@dataclass(frozen=True)
class WaitOutcome:
    decision: GateDecision | None  # None: nobody decided before the deadline (or the run was stopped)
    wait_id: int
    reason: str | None = None  # why there is no decision


def wait_at_gate(
    store: Store,
    run_id: int,
    node_id: str,
    seconds: float,
    *,
    stopped: Callable[[], bool],
    on_open: Callable[[float], None] | None = None,
) -> WaitOutcome:
    """Wait up to `seconds` for a decision on gate `node_id`; `stopped()` (an abort) ends the wait early."""
    deadline = time.time() + seconds
    wait = store.open_gate_wait(run_id, node_id, deadline)
    if on_open is not None:
        on_open(deadline)
    try:
        while True:
            left = deadline - time.time()
            row = store.wait_for_gate_decision(wait.id, max(0.0, min(WAIT_STEP, left)))
            if row.status == "decided":
                return WaitOutcome(_decision_of(row), wait.id)
            if stopped():
                if store.close_gate_wait(wait.id, "expired", expected="waiting"):
                    return WaitOutcome(None, wait.id, "the run was stopped while it waited")
                continue  # decided in the same instant: take it
            if row.status != "waiting":  # closed by someone else (a resumed run reopened the gate)
                return WaitOutcome(None, wait.id, f"the wait was closed ({row.status})")
            if time.time() >= deadline and store.close_gate_wait(wait.id, "expired", expected="waiting"):
                return WaitOutcome(None, wait.id, "no decision before the deadline")
    except BaseException:  # KeyboardInterrupt, a storage fault: nobody may decide a wait nobody reads
        store.close_gate_wait(wait.id, "expired", expected="waiting")
        raise


def _decision_of(row) -> GateDecision:
    return GateDecision(Decision(row.decision), row.actor or "unknown", row.comment, source=row.source)


def format_seconds(seconds: float) -> str:
    """90 -> "1m30s", 1800 -> "30m", 7200 -> "2h" (how a wait is named in reasons and events)."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"
