"""Run lifecycle rules outside a single engine's transitions: which recorded runs may resume, the engine
state a resume starts from, and which status changes `set-status` may make. Pure: the application reads
the run record and applies these (the store applies `manual_status_problem` inside its transaction).

As in the seed: only ABORTED runs resume; a run still RUNNING (its process may be gone) must first be marked
ABORTED with `set-status`; a run whose runbook text changed resumes only when that is explicitly allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbook_nb.domain.errors import PlaybookError

RESUMABLE = "ABORTED"


class LifecycleError(PlaybookError):
    """A run cannot move as asked (resume of a finished run, of another runbook's run, ...)."""


def check_resumable(
    run_id: int,
    *,
    status: str,
    workflow: str,
    title: str,
    recorded_sha256: str,
    sha256: str,
    allow_changed: bool = False,
) -> None:
    """Refuse, in one line, a resume the rules do not allow."""
    if workflow != title:
        raise LifecycleError(f"run {run_id} belongs to '{workflow}', not to '{title}'")
    if status == "RUNNING":
        raise LifecycleError(
            f"run {run_id} is RUNNING; if its process is gone, mark it first: "
            f"playbook-nb set-status FILE {run_id} ABORTED"
        )
    if status != RESUMABLE:
        raise LifecycleError(f"only ABORTED runs can be resumed (run {run_id} is {status})")
    if recorded_sha256 != sha256 and not allow_changed:
        raise LifecycleError(
            f"runbook changed since run {run_id} started (sha256 {recorded_sha256[:12]} -> "
            f"{sha256[:12]}); pass --allow-changed to resume with the new text"
        )


def resume_snapshot(snapshot: dict[str, Any], status_reason: str | None) -> dict[str, Any]:
    """The saved engine state a resume starts from. A snapshot still RUNNING means the process died mid-run
    and `set-status` marked the run ABORTED after the fact: the snapshot takes that status and reason."""
    if snapshot.get("run_state") == "RUNNING":
        return {**snapshot, "run_state": "ABORTED", "run_reason": status_reason}
    return snapshot


def changed_variables(recorded: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{name: (recorded value, given value)} for each variable whose value differs (both sides masked)."""
    names = sorted(set(recorded) | set(given))
    return {n: (recorded.get(n), given.get(n)) for n in names if recorded.get(n) != given.get(n)}


def check_variables(run_id: int, changes: Mapping[str, tuple[Any, Any]], *, allow: bool, hint: str) -> None:
    """Refuse, in one line, a resume with other variable values than the run recorded, unless allowed: the
    steps already done and the gates already decided were for the recorded values."""
    if not changes or allow:
        return
    shown = ", ".join(f"{name}={old!r} -> {new!r}" for name, (old, new) in changes.items())
    raise LifecycleError(
        f"run {run_id} was recorded with other variable values ({shown}); start a new run, "
        f"or allow the change explicitly ({hint}): every gate decided before is then open again"
    )


def manual_status_problem(run_id: int, old: str, new: str, force: bool) -> str | None:
    """Why `set-status` may not move a run from `old` to `new`, or None when it may.

    - Same status: nothing to do (allowed).
    - Anything -> RUNNING: only with force (as the seed allows it; nothing drives the run then, so the CLI
      warns: resume an ABORTED run instead).
    - RUNNING -> ABORTED, OK or NOK: allowed; the way to close a run whose process was killed
      (ABORTED makes it resumable).
    - ABORTED -> OK or NOK: allowed (closing an aborted run without resuming it).
    - OK or NOK -> anything else: a finished run's outcome is history; only with force.
    """
    if old == new:
        return None
    if new == "RUNNING" and not force:
        return f"run {run_id}: setting it to RUNNING by hand needs --force (to continue it, resume it)"
    if old in ("OK", "NOK") and not force:
        return f"run {run_id} finished {old}; changing it to {new} needs --force"
    return None


def interrupted_reason(attempt: int, why: str) -> str:
    """The reason a node shows after its attempt was cut short: PENDING, to run again on resume."""
    return f"interrupted: attempt {attempt} stopped ({why}); runs again on resume"
