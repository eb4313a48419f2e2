"""Errors a user can cause. Each renders as one clear line; tracebacks are for bugs only."""

from __future__ import annotations

from playbook_nb.domain.exit_codes import ExitCode


class PlaybookError(Exception):
    """Base of every user-facing error: `str(err)` is the one line shown to the user."""

    exit_code = ExitCode.INVALID

    def __str__(self) -> str:
        # One line whatever the input: names and values from a runbook may hold newlines.
        return super().__str__().replace("\r", "\\r").replace("\n", "\\n")


class RunbookError(PlaybookError):
    """The runbook (TOML, structure, dependencies, templates) is invalid.

    `where` names the file, the node and the field when known, e.g. "deploy.playbook.toml: node 'a', field 'when'".
    """

    def __init__(self, message: str, where: str | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class VariableError(PlaybookError):
    """A variable value is missing or breaks its rule (type, choices, min, max, pattern)."""


class TemplateError(PlaybookError):
    """A template failed to render or reached outside the sandbox."""


class StoreError(PlaybookError):
    """The run record cannot be read or written (missing run, bad status transition, unwritable directory)."""


class StorageFault(StoreError):
    """The storage under the run record failed (disk full, read-only, a lock held too long, an object store
    refusing a write): not the user's input. A run that meets one stops; exit code 4."""

    exit_code = ExitCode.STORAGE_FAULT


class RunOwned(StoreError):
    """The run is driven by another live session (its owner): this one may watch it, not drive it."""


class StaleWrite(StoreError):
    """A compare-and-set refused: the run or the node moved on since the view that asked was loaded
    (a finished run, a node that no longer waits, another owner). Nothing was changed."""


class RunNotFound(StoreError):
    """No run with that id in the index."""


class PluginError(PlaybookError):
    """Unknown plugin or function, or bad parameters for it."""


def where(path: str | None, node: str | None = None, field_name: str | None = None) -> str | None:
    """ "file: node 'a', field 'when'" with whatever parts are known (the `where` of a RunbookError)."""
    parts = []
    if node is not None:
        parts.append(f"node '{node}'")
    if field_name is not None:
        parts.append(f"field '{field_name}'")
    inner = ", ".join(parts)
    if path and inner:
        return f"{path}: {inner}"
    return path or inner or None
