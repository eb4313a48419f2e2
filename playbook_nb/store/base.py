"""The run record interface every backend implements, and `Store.open`, which picks the backend.

`Store.open("/path/runs.db")` (or `"sqlite:////path/runs.db"`) gives the SQLite backend. A PostgreSQL backend
(psycopg 3) would be a `Store` subclass chosen for `postgresql://` URLs; the SQLite methods keep their SQL
small and explicit so each one maps to one method there.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from playbook_nb.errors import StoreError
from playbook_nb.store.models import AttemptRow, DecisionRow, EventRow, NodeStateRow, Run, When


class Store(ABC):
    """The run record: runs, node states, attempts, decisions, hash-chained events, artifact dirs."""

    backend: str
    path: Path

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        artifacts_root: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> Store:
        """Open (creating it and its parent directories if needed) the run record at `path` or URL."""
        text = os.fspath(path)
        if text.startswith(("postgresql://", "postgres://")):
            raise StoreError(f"the PostgreSQL run record is not available yet: {text.split('@')[-1]}")
        if text.startswith("sqlite:///"):
            text = text[len("sqlite:///") :] or "."
            text = "/" + text.lstrip("/") if text.startswith("/") else text
        from playbook_nb.store.sqlite import SQLiteStore

        return SQLiteStore.open(text, artifacts_root=artifacts_root, timeout=timeout)

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs
    @abstractmethod
    def create_run(
        self,
        *,
        workflow: str,
        title: str,
        runbook_text: str,
        runbook_sha256: str,
        runbook_version: str | None,
        variables: dict[str, Any],
        params: dict[str, Any],
        trigger: str,
        actor: str | None,
        host: str | None,
        mode: str,
        node_ids: list[str],
        started_at: When = None,
    ) -> Run: ...

    @abstractmethod
    def get_run(self, run_id: int) -> Run: ...

    @abstractmethod
    def latest_run(self, workflow: str, status: str | None = None) -> Run | None: ...

    @abstractmethod
    def list_runs(
        self, workflow: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Run]: ...

    @abstractmethod
    def set_run_status(
        self, run_id: int, status: str, *, reason: str | None = None, ended_at: When = None
    ) -> None: ...

    @abstractmethod
    def set_status_manually(
        self,
        run_id: int,
        status: str,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Run: ...

    @abstractmethod
    def save_snapshot(self, run_id: int, snapshot: dict[str, Any]) -> None: ...

    @abstractmethod
    def load_snapshot(self, run_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def set_notebook_path(self, run_id: int, path: str | os.PathLike[str]) -> None: ...

    @abstractmethod
    def artifact_dir(self, run_id: int) -> Path: ...

    @abstractmethod
    def delete_run(self, run_id: int) -> int: ...

    # nodes, attempts, decisions
    @abstractmethod
    def set_node_state(
        self,
        run_id: int,
        node_id: str,
        state: str,
        reason: str | None = None,
        attempts: int | None = None,
        failed: bool | None = None,
    ) -> None: ...

    @abstractmethod
    def node_states(self, run_id: int) -> list[NodeStateRow]: ...

    @abstractmethod
    def start_attempt(self, run_id: int, node_id: str, attempt: int, started_at: When = None) -> None: ...

    @abstractmethod
    def finish_attempt(
        self,
        run_id: int,
        node_id: str,
        attempt: int,
        *,
        status: str,
        ended_at: When = None,
        exit_code: int | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        result: Any = None,
        error: str | None = None,
        duration: float | None = None,
    ) -> None: ...

    @abstractmethod
    def attempts(self, run_id: int, node_id: str | None = None) -> list[AttemptRow]: ...

    @abstractmethod
    def mark_interrupted(self, run_id: int) -> int: ...

    @abstractmethod
    def record_decision(
        self,
        run_id: int,
        node_id: str,
        decision: str,
        actor: str | None,
        comment: str | None = None,
        decided_at: When = None,
    ) -> int: ...

    @abstractmethod
    def decisions(self, run_id: int) -> list[DecisionRow]: ...

    # events
    @abstractmethod
    def append_event(
        self,
        run_id: int,
        kind: str,
        *,
        node_id: str | None = None,
        attempt: int | None = None,
        payload: Any = None,
        at: When = None,
    ) -> int: ...

    @abstractmethod
    def events(self, run_id: int) -> list[EventRow]: ...

    @abstractmethod
    def verify_events(self, run_id: int) -> list[str]: ...

    # statistics
    @abstractmethod
    def stats(self, workflow: str | None = None) -> dict[str, Any]: ...
