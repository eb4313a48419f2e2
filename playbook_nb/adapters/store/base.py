"""The run record interface every backend implements, and `Store.open`, which asks the backend registry.

`Store.open("/path/runs.db")` (or `"sqlite:////path/runs.db"`) gives the SQLite backend;
`Store.open("postgresql://user@host/db")` the PostgreSQL one (psycopg 3, `pip install 'playbook-nb[postgres]'`).
The backend is found by the location's URL scheme in `registry.py`; this class knows none of them.
Both return the same row objects, number runs the same way and build the same event hash chain.

Artifacts (`artifact_dir`, `put_artifact`, `open_artifact`) go to `artifacts_root`: a local directory or any
fsspec URL (`s3://bucket/prefix`). Left out, it comes from `PLAYBOOK_ARTIFACTS_URL`, then the configuration's
`[artifacts] url`, then the backend's default (beside the SQLite file; the user data dir for PostgreSQL).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from playbook_nb.adapters.store import pending
from playbook_nb.adapters.store.location import resolve_artifacts_url
from playbook_nb.adapters.store.models import (
    AttemptRow,
    DecisionRow,
    EventRow,
    GateWaitRow,
    HostRow,
    NodeStateRow,
    RevisionRow,
    Run,
    When,
)
from playbook_nb.adapters.store.registry import backend_for

if TYPE_CHECKING:
    from playbook_nb.adapters.store.artifacts import ArtifactStore
    from playbook_nb.adapters.store.owner import Owner, OwnerStatus


GATE_POLL_SECONDS = 0.1  # how often a run waiting at a gate reads its wait row (SQLite): one row by its key


class Store(ABC):
    """The run record: runs, node states, attempts, decisions, hash-chained events, artifact dirs."""

    backend: str
    path: Path  # the SQLite file; for PostgreSQL, the URL without its password (a str)
    artifacts: ArtifactStore

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        artifacts_root: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> Store:
        """Open (creating it and its parent directories if needed) the run record at `path` or URL.

        Without `artifacts_root`: `PLAYBOOK_ARTIFACTS_URL`, else the backend's default; a command passes the
        configured root (`app.settings.Settings.open_store`)."""
        if artifacts_root is None:
            artifacts_root = resolve_artifacts_url()
        backend = backend_for(path)  # by URL scheme (registry.py); a plain path is a SQLite file
        store = backend.open(os.fspath(path), artifacts_root=artifacts_root, timeout=timeout)
        pending.apply(store)  # runs a storage fault left RUNNING: recorded ABORTED now that it opens
        return store

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def schema_version(self) -> int:
        """The index's schema version (its latest applied migration)."""

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
        owner: Owner | None = None,
    ) -> Run: ...

    # ownership and compare-and-set (issue 13; see playbook_nb.adapters.store.owner)
    @abstractmethod
    def claim_run(self, run_id: int, owner: Owner, *, take_over: bool = False) -> Run: ...

    @abstractmethod
    def renew_lease(self, run_id: int, token: str) -> bool: ...

    @abstractmethod
    def advance(self, run_id: int, *, token: str | None, version: int) -> int: ...

    @abstractmethod
    def check_decision(self, run_id: int, node_id: str, *, version: int, states: tuple[str, ...]) -> None: ...

    @abstractmethod
    def owner_status(self, run_id: int) -> OwnerStatus: ...

    def reopen(self) -> Store:
        """Another connection to the same index (the owner's heartbeat thread uses its own)."""
        raise NotImplementedError(f"{self.backend} store cannot be reopened")

    @abstractmethod
    def get_run(self, run_id: int) -> Run: ...

    # the process groups of running attempts (ownership: a take-over kills what its driver left)
    @abstractmethod
    def set_attempt_process(
        self, run_id: int, node_id: str, attempt: int, *, host: str, pgid: int, pgid_start: int | None
    ) -> None: ...

    @abstractmethod
    def live_process_groups(
        self, run_id: int
    ) -> list[tuple[str, int, int | None, int | None, str | None, str | None]]: ...

    @abstractmethod
    def latest_run(self, workflow: str, status: str | None = None) -> Run | None: ...

    @abstractmethod
    def kpi_figures(self, workflow: str, limit: int, max_duration: float | None) -> dict[str, Any]:
        """What KPI attainment counts over the workflow's newest `limit` runs, rehearsals left out, computed
        by the database: {"runs", "finished", "ok", "timed_runs", "within_max_duration", "p50_duration",
        "p95_duration"} (durations in seconds, to the millisecond)."""

    @abstractmethod
    def list_runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        actor: str | None = None,
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
        confirmed: bool = False,
    ) -> Run: ...

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes made inside share one transaction, committed when the block ends; all or nothing.
        For the writes that describe one transition (a session flushes an engine step this way)."""
        yield

    @abstractmethod
    def add_revision(self, run_id: int, runbook_text: str, runbook_sha256: str, actor: str | None) -> int:
        """A changed runbook text the run goes on under (`resume --allow-changed`): its new revision."""

    @abstractmethod
    def revisions(self, run_id: int) -> list[RevisionRow]:
        """Every runbook text the run ran under, oldest first."""

    @abstractmethod
    def save_snapshot(self, run_id: int, snapshot: dict[str, Any] | str, *, partial: bool = False) -> None:
        """Save the engine snapshot of a run: a dict, or its JSON text. `partial`: its "nodes" hold only the
        nodes that changed since the last save (the others are kept): a flush writes O(changed) rows."""

    @abstractmethod
    def load_snapshot(self, run_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def set_notebook_path(self, run_id: int, path: str | os.PathLike[str]) -> None: ...

    @abstractmethod
    def set_variables(self, run_id: int, variables: dict[str, Any]) -> None:
        """The run's current (masked) variable values, after a resume explicitly allowed to change them; the
        change itself is a `variables_changed` event."""

    @abstractmethod
    def artifact_dir(self, run_id: int) -> Path: ...

    @abstractmethod
    def delete_run(self, run_id: int) -> int: ...

    @property
    def url(self) -> str:
        """Where this index lives, as a URL safe to show (no password)."""
        return f"sqlite:///{self.path}" if self.backend == "sqlite" else str(self.path)

    def put_artifact(self, run_id: int, name: str, local_path: str | os.PathLike[str]) -> str:
        """Copy a local file into run `run_id`'s artifacts as `name`; returns its path (local) or URL."""
        run = self.get_run(run_id)
        location = run.artifact_dir or self.artifacts.run_location(run_id)
        url = self.artifacts.put(run_id, name, local_path, location)
        if run.artifact_dir is None:
            self._update_run(run_id, "artifact_dir", location)
        return url

    def open_artifact(self, url: str, mode: str = "rb") -> IO[Any]:
        """Open an artifact by the path or URL `put_artifact` returned (e.g. a run's notebook_path)."""
        return self.artifacts.open(url, mode)

    def _update_run(self, run_id: int, column: str, value: Any) -> None:
        raise NotImplementedError

    # copying between stores (`store migrate`)
    def dump_run(self, run_id: int) -> dict[str, Any]:
        """Every row of one run in a backend-neutral form (see `playbook_nb.adapters.store.copy`)."""
        raise NotImplementedError(f"{self.backend} store cannot dump runs")

    def load_run(self, dump: dict[str, Any]) -> None:
        """Insert a run dumped by `dump_run` (of any backend) as it is: same ids, numbers and hashes."""
        raise NotImplementedError(f"{self.backend} store cannot load runs")

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

    def node_states_of(self, run_ids: list[int]) -> dict[int, list[NodeStateRow]]:
        """The node states of several runs (one query in the SQL backends)."""
        return {run_id: self.node_states(run_id) for run_id in run_ids}

    @abstractmethod
    def start_attempt(
        self,
        run_id: int,
        node_id: str,
        attempt: int,
        started_at: When = None,
        *,
        token: str | None = None,
        process_token: str | None = None,
        host: str | None = None,
    ) -> None: ...

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
        token: str | None = None,
    ) -> None: ...

    @abstractmethod
    def attempts(self, run_id: int, node_id: str | None = None) -> list[AttemptRow]: ...

    @abstractmethod
    def mark_interrupted(self, run_id: int) -> int: ...

    # per-host rows of fleet nodes (issue 21)
    def record_hosts(self, run_id: int, node_id: str, attempt: int, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError(f"{self.backend} store has no per-host rows")

    def host_results(self, run_id: int, node_id: str | None = None) -> list[HostRow]:
        raise NotImplementedError(f"{self.backend} store has no per-host rows")

    def latest_hosts(self, run_id: int, node_id: str) -> dict[str, HostRow]:
        """Each host's row of its highest attempt, in inventory order of that attempt."""
        latest: dict[str, HostRow] = {}
        for row in self.host_results(run_id, node_id):
            known = latest.get(row.host)
            if known is None or row.attempt >= known.attempt:
                latest[row.host] = row
        return latest

    @abstractmethod
    def record_decision(
        self,
        run_id: int,
        node_id: str,
        decision: str,
        actor: str | None,
        comment: str | None = None,
        decided_at: When = None,
        source: str | None = None,
    ) -> int: ...

    @abstractmethod
    def decisions(self, run_id: int) -> list[DecisionRow]: ...

    # gates decided from anywhere (issue 16): see migrations/0004_gate_waits.sql
    def open_gate_wait(self, run_id: int, node_id: str, deadline: When) -> GateWaitRow:
        """The run now waits at gate `node_id` for a decision from anywhere until `deadline`. A wait left open
        for the same gate (its process was killed) is closed 'expired' first."""
        raise NotImplementedError(f"{self.backend} store cannot wait at gates")

    def gate_wait(self, wait_id: int) -> GateWaitRow:
        raise NotImplementedError(f"{self.backend} store cannot wait at gates")

    def open_wait_at(self, run_id: int, node_id: str) -> GateWaitRow | None:
        """The gate's open wait ('waiting' or 'decided'), if any."""
        raise NotImplementedError(f"{self.backend} store cannot wait at gates")

    def decide_gate_wait(
        self,
        run_id: int,
        node_id: str,
        decision: str,
        *,
        actor: str,
        source: str,
        comment: str | None = None,
        at: When = None,
        version: int | None = None,
    ) -> GateWaitRow | None:
        """Compare-and-set: the gate's wait moves from 'waiting' to 'decided' only while the run is RUNNING
        (at `version`, when given: nothing moved since the caller's checks), the node WAITING and the deadline
        not passed, in one statement. The decided row, or None (refused:
        nothing changed)."""
        raise NotImplementedError(f"{self.backend} store cannot wait at gates")

    def close_gate_wait(self, wait_id: int, status: str, *, expected: str) -> bool:
        """Move the wait from `expected` to `status` ('applied' or 'expired'); False if it had moved on."""
        raise NotImplementedError(f"{self.backend} store cannot wait at gates")

    def wait_for_gate_decision(self, wait_id: int, timeout: float) -> GateWaitRow:
        """The wait's row as soon as it is no longer 'waiting', or after `timeout` seconds. Cheap: a poll of
        one row by its key (SQLite), LISTEN/NOTIFY (PostgreSQL)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            row = self.gate_wait(wait_id)
            left = deadline - time.monotonic()
            if row.status != "waiting" or left <= 0:
                return row
            time.sleep(min(GATE_POLL_SECONDS, left))

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


def moved_count(counts: dict[str, int], old: str, new: str) -> dict[str, int]:
    """`runs.counts` (nodes by state) after one node went from state `old` to `new`; states with no node
    are left out, as a count of the node_states rows gives them."""
    counts = dict(counts)
    counts[old] = counts.get(old, 0) - 1
    counts[new] = counts.get(new, 0) + 1
    return {state: n for state, n in counts.items() if n > 0}
