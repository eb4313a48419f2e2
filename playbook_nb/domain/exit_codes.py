"""Exit codes of `run`, `resume`, `replay` and the other commands (design card: 0 OK, 1 NOK, 2 invalid runbook
or arguments, 3 ABORTED, for example a gate awaiting approval)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    NOK = 1  # the run failed, a check failed, a deviation was found
    INVALID = 2  # bad runbook, arguments or configuration: nothing ran
    ABORTED = 3  # stopped (a gate awaits approval, interrupted, a closed output pipe): resumable
    STORAGE_FAULT = 4  # the run record could not be written (disk full, read-only, locked, refused): the
    # run stopped, and is recorded ABORTED once the index is writable again


def exit_code_for(run_status: str, handled_failures: int = 0, strict: bool = False) -> ExitCode:
    """A run's status as an exit code; a run still RUNNING (it waits for someone) counts as ABORTED.
    `strict` (`--strict`): an OK run with handled failures (a node failed and was skipped, a rollback ran)
    exits 1, as a failure."""
    if strict and str(run_status) == "OK" and handled_failures:
        return ExitCode.NOK
    return {"OK": ExitCode.OK, "NOK": ExitCode.NOK}.get(str(run_status), ExitCode.ABORTED)
