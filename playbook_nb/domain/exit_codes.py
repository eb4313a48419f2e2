"""Exit codes of `run`, `resume`, `replay` and the other commands, in one place."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    NOK = 1  # the run failed (or, with --strict, ended OK with handled failures)
    INVALID = 2  # invalid runbook, arguments or input; nothing ran
    ABORTED = (
        3  # the run stopped ABORTED and can be resumed (a gate awaits approval, a signal, a closed pipe)
    )
    STORAGE_FAULT = 4  # the run record could not be written (disk full, read-only, locked, refused): the run
    # stopped and is recorded ABORTED once the index is writable again
