"""What the SQLite and PostgreSQL run records share: the SQL that reads and writes the same tables the same way,
the mapping of rows to `Run`/`NodeStateRow`/... objects, the event hash chain, `stats` and the rules of
`set_status_manually`.

Shared SQL is written with `?` placeholders; `_sql` gives a backend's own text (PostgreSQL turns `?` into
`%s`). A backend supplies only what differs:

- `_read` (reads outside a transaction), `_write` (one transaction, or the `batch()` one) and `_sql`;
- `_next_number` (run numbering) and `_insert` (an INSERT returning the new row's id);
- `_lock_run` and `_FOR_UPDATE` (SQLite holds its write lock from BEGIN IMMEDIATE; PostgreSQL takes row
  locks);
- column types: `_JSON` (the placeholder of a JSON column), `_db_time` (ISO text -> the value stored in a
  time column), `_row_time`/`_row_json`/`_time_text` (a stored value -> datetime, parsed JSON, ISO text),
  `_neutral` (a stored row -> the backend-neutral form of `dump_run`);
- the SQL expressions `stats` and `kpi_figures` need: `_COUNT_IF`, `_RUN_SECONDS` and `_PARAM`.

`load_run` (ids, sequences, column types of a copied run) stays in each backend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from playbook_nb.adapters.store import hashing
from playbook_nb.adapters.store.artifacts import ArtifactStore, is_url, local_staging_dir
from playbook_nb.adapters.store.base import Store, moved_count
from playbook_nb.adapters.store.models import (
    ATTEMPT_STATUSES,
    HOST_STATES,
    INTERRUPTED_ERROR,
    MODES,
    NODE_STATES,
    RUN_STATUSES,
    TRIGGERS,
    AttemptRow,
    DecisionRow,
    EventRow,
    GateWaitRow,
    HostRow,
    NodeStateRow,
    RevisionRow,
    Run,
    When,
    from_json,
    from_timestamp,
    name_of,
    to_json,
    to_timestamp,
)
from playbook_nb.adapters.store.owner import Owner, OwnerStatus, lease_until, status_of
from playbook_nb.domain.errors import RunNotFound, RunOwned, StaleWrite, StoreError
from playbook_nb.domain.lifecycle import interrupted_reason, manual_status_problem

OWNER_COLUMNS = (
    "status, version, owner_token, owner_host, owner_pid, owner_pid_start, owner_kind, owner_actor,"
    " owner_seen_at, lease_expires"
)
# What a session's transition reads of its run row: who drives it at which version (the compare-and-set),
# the counts summary and the head of the event chain. Inside `batch()` it is read once, under the lock that
# keeps every other writer of the row out until the batch commits, and kept in step with the batch's own
# writes (`_run_state`): a transition reads the row once, not once per write (issue 18.2).
RUN_STATE_COLUMNS = OWNER_COLUMNS + ", counts, event_count, event_head"

JSON_COLUMNS = {"runs": ("variables", "params", "counts", "snapshot"), "attempts": ("result",)}
# A run row with its runbook text (kept apart in run_texts since migration 0005: the runs row is rewritten at
# every transition, the text never changes).
RUN_SELECT = (
    "SELECT runs.*, run_texts.runbook_text FROM runs LEFT JOIN run_texts ON run_texts.run_id = runs.id"
)
COPY_TABLES = ("runs", "node_states", "attempts", "host_results", "decisions", "events", "run_revisions")
DUMP_QUERIES = {
    "node_states": "SELECT * FROM node_states WHERE run_id = ? ORDER BY position",
    "attempts": "SELECT * FROM attempts WHERE run_id = ? ORDER BY node_id, attempt",
    "host_results": "SELECT * FROM host_results WHERE run_id = ? ORDER BY node_id, attempt, position",
    "decisions": "SELECT * FROM decisions WHERE run_id = ? ORDER BY id",
    "events": "SELECT * FROM events WHERE run_id = ? ORDER BY seq",
    "run_revisions": "SELECT * FROM run_revisions WHERE run_id = ? ORDER BY revision",
}


def dumped_run_row(run: dict[str, Any]) -> dict[str, Any]:
    """The columns of the runs table in a dumped run: its text and snapshot have tables of their own
    (`SQLStore._load_run_parts` writes them)."""
    return {k: (None if k == "snapshot" else v) for k, v in run.items() if k != "runbook_text"}


def check(value: Any, allowed: tuple[str, ...], what: str) -> str:
    """`value` (text or Enum) as text, or a StoreError naming the valid values."""
    text = name_of(value)
    if text not in allowed:
        raise StoreError(f"invalid {what} {text!r}; valid: {', '.join(allowed)}")
    return text


class SQLStore(Store):
    """A `Store` over one DB-API connection; subclasses supply the backend's differences (module docstring)."""

    _JSON: str  # the placeholder of a JSON column
    _COUNT_IF: str  # SQL counting the rows of a group where a condition (`{}`) holds
    _RUN_SECONDS: str  # SQL giving a run's duration in seconds
    _PARAM: str  # SQL giving one key (`{}`) of a run's params as text, NULL when absent
    _FOR_UPDATE: str  # what locks the rows a SELECT reads until the transaction ends ("" where the
    # transaction holds the whole database's write lock)

    def __init__(self, path: Any, conn: Any, artifacts_root: str | os.PathLike[str]):
        self.path = path
        self.artifacts = ArtifactStore.from_url(artifacts_root)
        # a Path for a local directory (what callers write into), the URL text for a remote store
        self.artifacts_root = Path(self.artifacts.root) if self.artifacts.is_local else self.artifacts.root
        self._conn: Any = conn
        self._in_batch = False
        self._batch_runs: dict[int, dict[str, Any]] = {}  # run id -> its row's RUN_STATE_COLUMNS, in a batch
        self._batch_nodes: set[tuple[int, str]] = set()  # nodes this batch has read (they exist)
        # run id -> {column: stored value}: the batch's writes of a run row's RUN_STATE_COLUMNS and snapshot,
        # made as one UPDATE (`_flush_run_updates`)
        self._batch_updates: dict[int, dict[str, Any]] = {}
        self.chain_key = hashing.chain_key()  # events are HMAC-chained under it when set

    # ---- what each backend supplies ---------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql

    def _read(self, sql: str, params: tuple | dict = ()) -> list[Any]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Any]:
        """One write transaction (the handle statements run on); inside `batch()`, the batch's."""
        raise NotImplementedError

    def _next_number(self, handle: Any, workflow: str) -> int:
        raise NotImplementedError

    def _insert(self, handle: Any, sql: str, params: tuple) -> int:
        raise NotImplementedError

    def _select_locked(self, handle: Any, run_id: int, columns: str) -> Any:
        """The run's row (`columns`), locked against concurrent writers until the transaction ends."""
        raise NotImplementedError

    def _lock_run(self, handle: Any, run_id: int, columns: str = "id") -> Any:
        """The run's row (`columns`), locked against concurrent writers until the transaction ends; it
        holds this batch's deferred writes."""
        if self._batch_updates:
            self._flush_run_updates(handle)
        return self._select_locked(handle, run_id, columns)

    def _db_time(self, text: str) -> Any:
        raise NotImplementedError

    def _row_time(self, value: Any) -> datetime | None:
        raise NotImplementedError

    def _row_time_set(self, value: Any) -> datetime:
        """A time column every row has (NOT NULL)."""
        stamp = self._row_time(value)
        if stamp is None:
            raise StoreError("the run index holds a row without a time it must have; is it damaged?")
        return stamp

    def _row_json(self, value: Any) -> Any:
        raise NotImplementedError

    def _time_text(self, value: Any) -> str | None:
        raise NotImplementedError

    def _neutral(self, row: dict[str, Any], table: str) -> dict[str, Any]:
        raise NotImplementedError

    # ---- connection and transactions --------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.backend} {self.path}>"

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise StoreError(f"run index {self.path} is closed")
        return self._conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes made inside share one transaction, committed at the end; all or nothing."""
        if self._in_batch:  # a nested batch is part of the outer one
            yield
            return
        with self._write() as handle:
            self._in_batch = True
            try:
                yield
                self._flush_run_updates(handle)
            finally:
                self._in_batch = False
                self._batch_runs.clear()
                self._batch_nodes.clear()
                self._batch_updates.clear()

    def _run_state(self, handle: Any, run_id: int) -> dict[str, Any]:
        """The run's RUN_STATE_COLUMNS (counts parsed), locked until the transaction ends. Inside a batch,
        read once: every write of these columns in the batch goes through `_run_state_set`."""
        row = self._batch_runs.get(run_id) if self._in_batch else None
        if row is None:
            row = dict(self._lock_run(handle, run_id, RUN_STATE_COLUMNS))
            row["counts"] = self._row_json(row["counts"])
            if self._in_batch:
                self._batch_runs[run_id] = row
        return row

    def _run_state_set(self, run_id: int, **values: Any) -> None:
        """After an UPDATE of RUN_STATE_COLUMNS inside a batch: the values it wrote (in the form a read gives)."""
        row = self._batch_runs.get(run_id)
        if row is not None:
            row.update(values)

    def _run_state_forget(self, run_id: int) -> None:
        """After a write of RUN_STATE_COLUMNS that `_run_state_set` does not follow: read them again."""
        self._batch_runs.pop(run_id, None)

    def _update_run_row(self, handle: Any, run_id: int, **columns: Any) -> None:
        """Write RUN_STATE_COLUMNS or the snapshot of a run row (values as stored; counts and snapshot as
        JSON text). Inside a batch that read the row under its lock, the writes wait for one UPDATE of the
        row, made before the batch commits or before any other statement that names the runs table: a
        transition rewrote the row up to five times, once for each of the lease, the counts, the event chain's
        head (twice) and the snapshot (issue 18.2)."""
        if self._in_batch and run_id in self._batch_runs:
            self._batch_updates.setdefault(run_id, {}).update(columns)
            return
        self._execute(handle, self._run_update_sql(columns), (*columns.values(), run_id))

    def _run_update_sql(self, columns: dict[str, Any]) -> str:
        sets = ", ".join(f"{c} = {self._JSON if c in ('counts', 'snapshot') else '?'}" for c in columns)
        return f"UPDATE runs SET {sets} WHERE id = ?"

    def _flush_run_updates(self, handle: Any) -> None:
        """Make the batch's deferred writes of run rows (see `_update_run_row`)."""
        pending, self._batch_updates = self._batch_updates, {}
        for run_id, columns in pending.items():
            handle.execute(self._sql(self._run_update_sql(columns)), (*columns.values(), run_id))

    def _flush_before_read(self) -> None:
        """A read inside a batch sees the batch's deferred writes of run rows."""
        if self._batch_updates:
            with self._write() as handle:
                self._flush_run_updates(handle)

    def _execute(self, handle: Any, sql: str, params: tuple = (), *, sees_deferred: bool = True) -> Any:
        """Run one statement on the transaction's connection or cursor; returns the cursor. A statement that
        names the runs table first makes the batch's deferred writes of run rows, unless the caller says
        (`sees_deferred=False`) that it touches none of the columns a batch defers."""
        if sees_deferred and self._batch_updates and " runs" in sql:
            self._flush_run_updates(handle)
        return handle.execute(self._sql(sql), params)

    def _read_one(self, sql: str, params: tuple | dict = ()) -> Any:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    def _missing_run(self, run_id: int) -> StoreError:
        return RunNotFound(f"no run {run_id} in {self.path}")

    def _require_run(self, run_id: int) -> None:
        if self._read_one("SELECT 1 AS x FROM runs WHERE id = ?", (run_id,)) is None:
            raise self._missing_run(run_id)

    def _missing_node(self, handle: Any, run_id: int, node_id: str) -> StoreError:
        if self._execute(handle, "SELECT 1 AS x FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            return self._missing_run(run_id)
        return StoreError(f"run {run_id} has no node {node_id!r}")

    def _require_node(self, handle: Any, run_id: int, node_id: str) -> None:
        if (run_id, node_id) in self._batch_nodes:
            return  # read in this batch's transaction: node rows are deleted only with their run
        sql = "SELECT 1 AS x FROM node_states WHERE run_id = ? AND node_id = ?"
        if self._execute(handle, sql, (run_id, node_id)).fetchone() is None:
            raise self._missing_node(handle, run_id, node_id)

    # ---- runs -------------------------------------------------------------------------------------

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
    ) -> Run:
        """A new RUNNING run, numbered next in its workflow, every node PENDING, with a run_started event;
        `owner` (the session that will drive it) holds its lease from the start."""
        trigger = check(trigger, TRIGGERS, "trigger")
        mode = check(mode, MODES, "mode")
        if len(set(node_ids)) != len(node_ids):
            raise StoreError("node ids given to create_run are not unique")
        started = to_timestamp(started_at)
        counts = to_json({"PENDING": len(node_ids)} if node_ids else {})
        j = self._JSON
        with self._write() as handle:
            number = self._next_number(handle, workflow)
            run_id = self._insert(
                handle,
                "INSERT INTO runs (workflow, number, title, status, started_at, trigger, actor, host, mode,"
                " variables, params, runbook_sha256, runbook_version, counts)"
                f" VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, {j}, {j}, ?, ?, {j})",
                (
                    workflow,
                    number,
                    title,
                    self._db_time(started),
                    trigger,
                    actor,
                    host,
                    mode,
                    to_json(variables or {}),
                    to_json(params or {}),
                    runbook_sha256,
                    runbook_version,
                    counts,
                ),
            )
            if owner is not None:
                self._set_owner(handle, run_id, owner, version=1)
            self._execute(
                handle, "INSERT INTO run_texts (run_id, runbook_text) VALUES (?, ?)", (run_id, runbook_text)
            )
            if node_ids:
                handle.executemany(
                    self._sql(
                        "INSERT INTO node_states (run_id, node_id, position, state, updated_at)"
                        " VALUES (?, ?, ?, 'PENDING', ?)"
                    ),
                    [(run_id, node_id, pos, self._db_time(started)) for pos, node_id in enumerate(node_ids)],
                )
            self._append_event(
                handle,
                run_id,
                "run_started",
                at=started,
                payload={
                    "workflow": workflow,
                    "number": number,
                    "runbook_sha256": runbook_sha256,
                    "trigger": trigger,
                    "actor": actor,
                    "host": host,
                    "mode": mode,
                },
                locked=True,  # the run was inserted by this transaction: nobody else sees it yet
            )
        return self.get_run(run_id)

    # ---- ownership and compare-and-set (issue 13) --------------------------------------------------

    def _set_owner(self, handle: Any, run_id: int, owner: Owner, *, version: int) -> None:
        self._run_state_forget(run_id)
        seen = to_timestamp(None)
        self._execute(
            handle,
            "UPDATE runs SET version = ?, owner_token = ?, owner_host = ?, owner_pid = ?, owner_pid_start = ?,"
            " owner_kind = ?, owner_actor = ?, owner_seen_at = ?, lease_expires = ? WHERE id = ?",
            (
                version,
                owner.token,
                owner.host,
                owner.pid,
                owner.pid_start,
                owner.kind,
                owner.actor,
                self._db_time(seen),
                self._db_time(to_timestamp(lease_until())),
                run_id,
            ),
        )

    def _owner_status(self, row: Any) -> OwnerStatus:
        return status_of(
            status=row["status"],
            token=row["owner_token"],
            host=row["owner_host"],
            pid=row["owner_pid"],
            pid_start=row["owner_pid_start"],
            kind=row["owner_kind"],
            actor=row["owner_actor"],
            seen_at=self._row_time(row["owner_seen_at"]),
            lease_expires=self._row_time(row["lease_expires"]),
        )

    def _check_owner(self, handle: Any, run_id: int, token: str | None) -> None:
        """A write of the session `token` (None: not an owned write): refused once the run is no longer its."""
        if token is None:
            return
        row = self._run_state(handle, run_id)
        if row["owner_token"] != token:
            owner = self._owner_status(row)
            who = f"driven by {owner.label}" if row["owner_token"] else f"{row['status']}, set by hand"
            raise StaleWrite(
                f"run {run_id} is now {who}; this session no longer drives it (nothing was changed)"
            )

    def claim_run(self, run_id: int, owner: Owner, *, take_over: bool = False) -> Run:
        """Make `owner` the session that drives the run (a resume, a take-over). Refused (RunOwned) while
        another owner of the RUNNING run lives, unless `take_over`; a take-over of a live owner is a
        `run_taken_over` event with the actor and the owner it replaced. Moves the run's version."""
        with self._write() as handle:
            row = self._lock_run(handle, run_id, OWNER_COLUMNS)
            current = self._owner_status(row)
            theirs = current.live and row["owner_token"] != owner.token
            if theirs and not take_over:
                raise RunOwned(
                    f"run {run_id} is driven by {current.label}; it can be watched, not driven, from here"
                    " (take it over explicitly to drive it)"
                )
            self._set_owner(handle, run_id, owner, version=row["version"] + 1)
            if theirs:
                self._append_event(
                    handle,
                    run_id,
                    "run_taken_over",
                    at=to_timestamp(None),
                    payload={
                        "actor": owner.actor,
                        "by": {"host": owner.host, "pid": owner.pid, "kind": owner.kind},
                        "from": {
                            "actor": row["owner_actor"],
                            "host": row["owner_host"],
                            "pid": row["owner_pid"],
                            "kind": row["owner_kind"],
                        },
                    },
                    locked=True,
                )
        return self.get_run(run_id)

    def renew_lease(self, run_id: int, token: str) -> bool:
        """The owner's heartbeat: push its lease on. False when the run is no longer RUNNING or no longer
        this owner's (taken over, set by hand): the heartbeat then stops."""
        with self._write() as handle:
            self._run_state_forget(run_id)
            cur = self._execute(
                handle,
                "UPDATE runs SET owner_seen_at = ?, lease_expires = ?"
                " WHERE id = ? AND owner_token = ? AND status = 'RUNNING'",
                (
                    self._db_time(to_timestamp(None)),
                    self._db_time(to_timestamp(lease_until())),
                    run_id,
                    token,
                ),
            )
            return cur.rowcount > 0

    def advance(self, run_id: int, *, token: str | None, version: int) -> int:
        """The compare-and-set every state change of a session makes first, inside its transaction (a
        `batch()`): the run is still driven by `token` and still at `version`. Moves the version on (and the
        owner's lease with it) and returns the new one; raises StaleWrite, changing nothing, otherwise."""
        with self._write() as handle:
            row = self._run_state(handle, run_id)
            if token is not None and row["owner_token"] != token:
                owner = self._owner_status(row)
                raise StaleWrite(
                    f"run {run_id} is now driven by {owner.label}; this session no longer drives it"
                    " (nothing was changed)"
                )
            if row["version"] != version:
                raise StaleWrite(
                    f"run {run_id} changed since this view was loaded (it is {row['status']} now);"
                    " refused, nothing was changed"
                )
            seen = self._db_time(to_timestamp(None))
            lease = self._db_time(to_timestamp(lease_until()))
            self._update_run_row(handle, run_id, version=version + 1, owner_seen_at=seen, lease_expires=lease)
            self._run_state_set(run_id, version=version + 1, owner_seen_at=seen, lease_expires=lease)
            return version + 1

    def check_decision(self, run_id: int, node_id: str, *, version: int, states: tuple[str, ...]) -> None:
        """Before a decision is applied: the run is RUNNING at `version` and the node is in one of `states`
        (a gate WAITING, a failed node's decision). Raises StaleWrite with the one line to show."""
        row = self._read_one("SELECT status, version FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise self._missing_run(run_id)
        if row["status"] != "RUNNING":
            raise StaleWrite(
                f"run {run_id} is {row['status']} (finished); the decision on '{node_id}' is refused"
            )
        node = self._read_one(
            "SELECT state FROM node_states WHERE run_id = ? AND node_id = ?", (run_id, node_id)
        )
        if node is None:
            raise StoreError(f"run {run_id} has no node {node_id!r}")
        if node["state"] not in states:
            raise StaleWrite(
                f"'{node_id}' of run {run_id} no longer waits for a decision (it is {node['state']});"
                " refused, nothing was changed"
            )
        if row["version"] != version:
            raise StaleWrite(
                f"run {run_id} changed since this view was loaded; the decision on '{node_id}' is refused"
                " (nothing was changed)"
            )

    def owner_status(self, run_id: int) -> OwnerStatus:
        row = self._read_one(f"SELECT {OWNER_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise self._missing_run(run_id)
        return self._owner_status(row)

    def live_process_groups(
        self, run_id: int
    ) -> list[tuple[str, int, int | None, int | None, str | None, str | None]]:
        """(node, attempt, pgid, pgid start, host, process token) of the run's RUNNING attempts that recorded a
        process group or a command's token."""
        rows = self._read(
            "SELECT node_id, attempt, pgid, pgid_start, host, process_token FROM attempts"
            " WHERE run_id = ? AND status = 'RUNNING' AND (pgid IS NOT NULL OR process_token IS NOT NULL)"
            " ORDER BY started_at",
            (run_id,),
        )
        return [
            (r["node_id"], r["attempt"], r["pgid"], r["pgid_start"], r["host"], r["process_token"])
            for r in rows
        ]

    def set_attempt_process(
        self, run_id: int, node_id: str, attempt: int, *, host: str, pgid: int, pgid_start: int | None
    ) -> None:
        """Where a running attempt's command runs: host, process group, the leader's start time."""
        with self._write() as handle:
            self._execute(
                handle,
                "UPDATE attempts SET host = ?, pgid = ?, pgid_start = ?"
                " WHERE run_id = ? AND node_id = ? AND attempt = ?",
                (host, pgid, pgid_start, run_id, node_id, attempt),
            )

    def add_revision(self, run_id: int, runbook_text: str, runbook_sha256: str, actor: str | None) -> int:
        """`resume --allow-changed` with another runbook text: it becomes the run's text and sha256, as a new
        revision (revision 1, the text the run started with, is kept in run_revisions at the first change).
        Returns the new revision number; the same text as now adds none."""
        now = to_timestamp(None)
        with self._write() as handle:
            run = self._lock_run(handle, run_id, "runbook_sha256, revision, started_at, actor")
            current = int(run["revision"])
            if run["runbook_sha256"] == runbook_sha256:
                return current
            if current == 1:  # the first change: keep the text the run started with
                text = self._execute(
                    handle, "SELECT runbook_text FROM run_texts WHERE run_id = ?", (run_id,)
                ).fetchone()["runbook_text"]
                self._execute(
                    handle,
                    "INSERT INTO run_revisions (run_id, revision, runbook_sha256, runbook_text, recorded_at, actor)"
                    " VALUES (?, 1, ?, ?, ?, ?)",
                    (run_id, run["runbook_sha256"], text, run["started_at"], run["actor"]),
                )
            revision = current + 1
            self._execute(
                handle,
                "INSERT INTO run_revisions (run_id, revision, runbook_sha256, runbook_text, recorded_at, actor)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, revision, runbook_sha256, runbook_text, self._db_time(now), actor),
            )
            self._execute(
                handle, "UPDATE run_texts SET runbook_text = ? WHERE run_id = ?", (runbook_text, run_id)
            )
            self._execute(
                handle,
                "UPDATE runs SET runbook_sha256 = ?, revision = ? WHERE id = ?",
                (runbook_sha256, revision, run_id),
            )
        return revision

    def revisions(self, run_id: int) -> list[RevisionRow]:
        """Every runbook text the run ran under, oldest first (one row, its text, when it never changed)."""
        run = self.get_run(run_id)
        rows = self._read("SELECT * FROM run_revisions WHERE run_id = ? ORDER BY revision", (run_id,))
        if not rows:
            return [RevisionRow(run_id, 1, run.runbook_sha256, run.runbook_text, run.started_at, run.actor)]
        return [
            RevisionRow(
                run_id=r["run_id"],
                revision=r["revision"],
                runbook_sha256=r["runbook_sha256"],
                runbook_text=r["runbook_text"],
                recorded_at=self._row_time(r["recorded_at"]),
                actor=r["actor"],
            )
            for r in rows
        ]

    def get_run(self, run_id: int) -> Run:
        row = self._read_one(f"{RUN_SELECT} WHERE runs.id = ?", (run_id,))
        if row is None:
            raise self._missing_run(run_id)
        return self._run(row, self._snapshot_of(row))

    def latest_run(self, workflow: str, status: str | None = None) -> Run | None:
        runs = self.list_runs(workflow=workflow, status=status, limit=1)
        return runs[0] if runs else None

    def list_runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        actor: str | None = None,
    ) -> list[Run]:
        """Newest first (by start time, then id). The runs come without their engine snapshot (`snapshot` is
        None; `get_run` and `load_snapshot` read it)."""
        where, params = [], []
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if status is not None:
            where.append("status = ?")
            params.append(check(status, RUN_STATUSES, "run status"))
        sql = RUN_SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY runs.started_at DESC, runs.id DESC LIMIT ? OFFSET ?"
        return [self._run(row, None) for row in self._read(sql, (*params, limit, offset))]

    def kpi_figures(self, workflow: str, limit: int, max_duration: float | None) -> dict[str, Any]:
        """What KPI attainment counts, computed by SQL over the workflow's newest `limit` runs (rehearsals left
        out): "runs", "finished" (OK, NOK, ABORTED), "ok", "timed_runs" (OK or NOK with an end),
        "within_max_duration" (timed runs whose duration is at most `max_duration`; None without it) and the
        nearest-rank "p50_duration" / "p95_duration" of the timed runs (None without any). Two statements,
        no run rows shipped to Python (issue 18.4): the counts, then the durations of the timed runs (one
        common table) giving the two ranked values (ORDER BY seconds LIMIT 1 OFFSET rank - 1, or from the top
        end when that is nearer) and the count
        within `max_duration`.

        Durations are kept to the millisecond (SQLite's julianday arithmetic is exact to about 50
        microseconds) by Python's `round(seconds, 3)`, as before: rounding keeps the order, so the rank-th
        duration in SQL's order, rounded, is the rank-th rounded duration; and only the distinct durations
        within a millisecond of `max_duration` come back (with their counts) to be compared once rounded.
        The second statement keeps to the runs started by the newest one the counts saw, so a run recorded
        in between does not shift the ranks."""
        rehearsal = f"{self._PARAM.format('rehearsal')} IS NULL"
        count = self._COUNT_IF.format
        finished, ok = "status IN ('OK', 'NOK', 'ABORTED')", "status = 'OK'"
        timed = "status IN ('OK', 'NOK') AND ended_at IS NOT NULL"
        everything = self._read_one(
            f"SELECT COUNT(*) AS n FROM runs WHERE workflow = ? AND {rehearsal}", (workflow,)
        )["n"]
        limited = everything > limit  # else the newest `limit` runs are all of them: no sort by start

        def selected(pinned: bool) -> tuple[str, tuple]:
            sql = (
                "(SELECT status, started_at, ended_at FROM runs"
                f" WHERE workflow = ? AND {rehearsal}{' AND started_at <= ?' if pinned else ''}"
                f"{' ORDER BY started_at DESC, id DESC LIMIT ?' if limited else ''}) AS sel"
            )
            return sql, (workflow, *((newest,) if pinned else ()), *((limit,) if limited else ()))

        newest = None
        source, params = selected(False)
        row = self._read_one(
            f"SELECT COUNT(*) AS runs, {count(finished)} AS finished, {count(ok)} AS ok,"
            f" {count(timed)} AS timed,"
            f" MAX(started_at) AS newest FROM {source}",
            params,
        )
        n = row["timed"] or 0  # SQLite's SUM over no rows is NULL
        figures: dict[str, Any] = {
            "runs": row["runs"],
            "finished": row["finished"] or 0,
            "ok": row["ok"] or 0,
            "timed_runs": n,
            "within_max_duration": None if max_duration is None else 0,
            "p50_duration": None,
            "p95_duration": None,
        }
        if not n:
            return figures
        newest = row["newest"]
        source, params = selected(True)
        # nearest rank, read from the nearer end: a bounded sort keeps only the rows up to the offset
        picks = []
        for q in (50, 95):
            rank = max(1, math.ceil(q / 100 * n))
            order, offset = ("", rank - 1) if rank - 1 <= n - rank else (" DESC", n - rank)
            picks.append(
                f"SELECT 'p{q}' AS kind, (SELECT seconds FROM t ORDER BY seconds{order} LIMIT 1 OFFSET ?)"
                " AS seconds, 1 AS n"
            )
            params = (*params, offset)
        sql = (
            f"WITH t AS (SELECT {self._RUN_SECONDS} AS seconds FROM {source} WHERE {timed}) "
            + " UNION ALL ".join(picks)
        )
        if max_duration is not None:
            # below max_duration - 1 ms a duration rounds to at most max_duration, above + 1 ms to more
            lo, hi = max_duration - 0.001, max_duration + 0.001
            sql += (
                " UNION ALL SELECT 'below', NULL, COUNT(*) FROM t WHERE seconds < ?"
                " UNION ALL SELECT 'band', seconds, COUNT(*) FROM t WHERE seconds >= ? AND seconds <= ?"
                " GROUP BY seconds"
            )
            params = (*params, lo, lo, hi)
        within = 0
        for r in self._read(sql, params):
            seconds = None if r["seconds"] is None else round(r["seconds"], 3)
            if r["kind"] in ("p50", "p95"):
                figures[f"{r['kind']}_duration"] = seconds
            elif r["kind"] == "below" or (seconds is not None and seconds <= max_duration):
                within += r["n"]
        if max_duration is not None:
            figures["within_max_duration"] = within
        return figures

    def set_run_status(
        self, run_id: int, status: str, *, reason: str | None = None, ended_at: When = None
    ) -> None:
        """Set the run's status; a final status also sets ended_at (now unless given), RUNNING clears it."""
        status = check(status, RUN_STATUSES, "run status")
        ended = None if status == "RUNNING" else self._db_time(to_timestamp(ended_at))
        with self._write() as handle:
            cur = self._execute(
                handle,
                "UPDATE runs SET status = ?, status_reason = ?, ended_at = ? WHERE id = ?",
                (status, reason, ended, run_id),
            )
            if cur.rowcount == 0:
                raise self._missing_run(run_id)
            self._run_state_set(run_id, status=status)

    def save_snapshot(self, run_id: int, snapshot: dict[str, Any] | str, *, partial: bool = False) -> None:
        """Save the engine snapshot: its "nodes" one row a node (node_snapshots), the rest in the run row.
        `partial`: `snapshot["nodes"]` holds only the nodes that changed; the others keep their rows."""
        with self._write() as handle:
            self._save_snapshot(handle, run_id, snapshot, partial=partial)

    def _save_snapshot(
        self, handle: Any, run_id: int, snapshot: dict[str, Any] | str, *, partial: bool
    ) -> None:
        data: Any = from_json(snapshot) if isinstance(snapshot, str) else snapshot
        nodes = data.get("nodes") if isinstance(data, dict) else None
        if isinstance(nodes, dict):
            data = {**data, "nodes": {}}  # the empty object stands for the node rows
        if self._in_batch and run_id in self._batch_runs:  # the batch read the row: it exists
            self._update_run_row(handle, run_id, snapshot=to_json(data))
        else:
            sql = f"UPDATE runs SET snapshot = {self._JSON} WHERE id = ?"
            if self._execute(handle, sql, (to_json(data), run_id)).rowcount == 0:
                raise self._missing_run(run_id)
        if not isinstance(nodes, dict):
            return
        if not partial:
            self._execute(handle, "DELETE FROM node_snapshots WHERE run_id = ?", (run_id,))
        if nodes:
            handle.executemany(
                self._sql(
                    f"INSERT INTO node_snapshots (run_id, node_id, data) VALUES (?, ?, {self._JSON})"
                    " ON CONFLICT (run_id, node_id) DO UPDATE SET data = excluded.data"
                ),
                [(run_id, node_id, to_json(data)) for node_id, data in nodes.items()],
            )

    def load_snapshot(self, run_id: int) -> dict[str, Any] | None:
        row = self._read_one("SELECT id, snapshot FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise self._missing_run(run_id)
        return self._snapshot_of(row)

    def _snapshot_of(self, row: Any) -> dict[str, Any] | None:
        """The whole snapshot of a run row: its own fields, and the nodes from node_snapshots."""
        snapshot = self._row_json(row["snapshot"])
        if isinstance(snapshot, dict) and snapshot.get("nodes") == {}:
            rows = self._read(
                "SELECT node_id, data FROM node_snapshots WHERE run_id = ? ORDER BY node_id", (row["id"],)
            )
            snapshot["nodes"] = {r["node_id"]: self._row_json(r["data"]) for r in rows}
        return snapshot

    def set_notebook_path(self, run_id: int, path: str | os.PathLike[str]) -> None:
        self._update_run(run_id, "notebook_path", os.fspath(path))

    def set_variables(self, run_id: int, variables: dict[str, Any]) -> None:
        self._update_run(run_id, "variables", to_json(variables))

    def _update_run(self, run_id: int, column: str, value: Any) -> None:
        assert column in ("snapshot", "notebook_path", "artifact_dir", "variables")
        mark = self._JSON if column in ("snapshot", "variables") else "?"
        with self._write() as handle:
            cur = self._execute(handle, f"UPDATE runs SET {column} = {mark} WHERE id = ?", (value, run_id))
            if cur.rowcount == 0:
                raise self._missing_run(run_id)

    def artifact_dir(self, run_id: int) -> Path:
        """The run's local artifact directory (`<artifacts root>/<run id>/`), created on first use.

        With a remote artifact store this is a local scratch directory: publish files with `put_artifact`.
        """
        run = self.get_run(run_id)
        location = run.artifact_dir or self.artifacts.run_location(run_id)
        if is_url(location):
            return local_staging_dir(location)
        directory = self.artifacts.local_dir(run_id, location)
        if run.artifact_dir is None:
            self._update_run(run_id, "artifact_dir", str(directory))
        return directory

    def delete_run(self, run_id: int) -> int:
        """Delete a finished run, its rows and its artifacts; returns the bytes freed."""
        run = self.get_run(run_id)
        if run.status == "RUNNING":
            raise StoreError(
                f"run {run_id} is RUNNING; set it to ABORTED first (set-status) if its process is gone"
            )
        with self._write() as handle:
            self._execute(handle, "DELETE FROM runs WHERE id = ?", (run_id,))
            self._run_state_forget(run_id)
            self._batch_updates.pop(run_id, None)
            self._batch_nodes = {key for key in self._batch_nodes if key[0] != run_id}
        if not run.artifact_dir:
            return 0
        if not self.artifacts.owns(run.artifact_dir):
            raise StoreError(
                f"run {run_id} deleted, but not its artifacts {run.artifact_dir}: they are not under this "
                f"index's artifact root {self.artifacts.root} (another index may use them); left in place"
            )
        try:
            return self.artifacts.delete(run.artifact_dir)
        except StoreError as err:
            raise StoreError(f"run {run_id} deleted, but not its artifacts: {err}") from None

    def set_status_manually(
        self,
        run_id: int,
        status: str,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str | None = None,
        confirmed: bool = False,
    ) -> Run:
        """`set-status`: an operator changes a run's status by hand (rules in `manual_status_problem`).

        Leaving RUNNING marks its RUNNING attempts INTERRUPTED. Records a `status_set_manually` event with the
        actor and how it was allowed: `forced` (--force) or `confirmed` (answered yes at the prompt).
        """
        new = name_of(status).upper()
        if new not in RUN_STATUSES:
            raise StoreError(f"invalid run status {name_of(status)!r}; valid: {', '.join(RUN_STATUSES)}")
        now = to_timestamp(None)
        with self._write() as handle:
            row = self._lock_run(handle, run_id, "status, ended_at")
            old = row["status"]
            problem = manual_status_problem(run_id, old, new, force)
            if problem:
                raise StoreError(problem)
            if old != new:
                if old == "RUNNING":
                    self._interrupt_attempts(handle, run_id, now)
                self._run_state_forget(run_id)
                self._execute(
                    handle,
                    "UPDATE runs SET status = ?, status_reason = ?, ended_at = ?, version = version + 1,"
                    " owner_token = NULL WHERE id = ?",
                    (
                        new,
                        reason or f"set manually from {old} to {new}",
                        None if new == "RUNNING" else row["ended_at"] or self._db_time(now),
                        run_id,
                    ),
                )
                self._append_event(
                    handle,
                    run_id,
                    "status_set_manually",
                    at=now,
                    payload={
                        "from": old,
                        "to": new,
                        "forced": force and not confirmed,
                        "confirmed": confirmed,
                        "actor": actor,
                        "reason": reason,
                    },
                    locked=True,
                )
        return self.get_run(run_id)

    # ---- nodes, attempts, decisions ---------------------------------------------------------------

    def node_states_of(self, run_ids: list[int]) -> dict[int, list[NodeStateRow]]:
        """The node states of several runs in one query (a listing of runs with their states)."""
        found: dict[int, list[NodeStateRow]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return found
        marks = ", ".join("?" for _ in run_ids)
        sql = f"SELECT * FROM node_states WHERE run_id IN ({marks}) ORDER BY run_id, position"
        for row in self._node_state_rows(self._read(sql, tuple(run_ids))):
            found[row.run_id].append(row)
        return found

    def node_states(self, run_id: int) -> list[NodeStateRow]:
        self._require_run(run_id)
        rows = self._read("SELECT * FROM node_states WHERE run_id = ? ORDER BY position", (run_id,))
        return self._node_state_rows(rows)

    def _node_state_rows(self, rows: list[Any]) -> list[NodeStateRow]:
        return [
            NodeStateRow(
                run_id=r["run_id"],
                node_id=r["node_id"],
                position=r["position"],
                state=r["state"],
                reason=r["reason"],
                attempts=r["attempts"],
                failed=bool(r["failed"]),
                updated_at=self._row_time_set(r["updated_at"]),
            )
            for r in rows
        ]

    def set_node_state(
        self,
        run_id: int,
        node_id: str,
        state: str,
        reason: str | None = None,
        attempts: int | None = None,
        failed: bool | None = None,
    ) -> None:
        """Set a node's state and reason; `attempts` and `failed` keep their value when None. Holds the run's
        lock, so the `counts` summary it moves by one node (old state to new) sees every committed change."""
        state = check(state, NODE_STATES, "node state")
        with self._write() as handle:
            counts = self._run_state(handle, run_id)["counts"]
            sql = "SELECT state FROM node_states WHERE run_id = ? AND node_id = ?"
            old = self._execute(handle, sql, (run_id, node_id)).fetchone()
            if old is None:
                raise StoreError(f"run {run_id} has no node {node_id!r}")
            if self._in_batch:
                self._batch_nodes.add((run_id, node_id))
            self._execute(
                handle,
                "UPDATE node_states SET state = ?, reason = ?, attempts = COALESCE(?, attempts),"
                " failed = COALESCE(?, failed), updated_at = ? WHERE run_id = ? AND node_id = ?",
                (
                    state,
                    reason,
                    attempts,
                    None if failed is None else bool(failed),
                    self._db_time(to_timestamp(None)),
                    run_id,
                    node_id,
                ),
            )
            if old["state"] != state:
                moved = moved_count(counts, old["state"], state)
                self._update_run_row(handle, run_id, counts=to_json(moved))
                self._run_state_set(run_id, counts=moved)

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
    ) -> None:
        """A RUNNING attempt; refused while the node has another live one (one per node, enforced by a unique
        index), and once the run is no longer driven by the session `token` (when given). A command's attempt
        gives the watchdog token its processes will carry and the host they run on."""
        with self._write() as handle:
            self._check_owner(handle, run_id, token)
            self._require_node(handle, run_id, node_id)
            cur = self._execute(
                handle,
                "INSERT INTO attempts (run_id, node_id, attempt, status, started_at, revision, process_token, host)"
                " VALUES (?, ?, ?, 'RUNNING', ?, (SELECT revision FROM runs WHERE id = ?), ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    run_id,
                    node_id,
                    attempt,
                    self._db_time(to_timestamp(started_at)),
                    run_id,
                    process_token,
                    host,
                ),
                sees_deferred=False,  # reads runs.revision, which no batch defers: the run row stays written once
            )
            if cur.rowcount == 0:
                live = self._execute(
                    handle,
                    "SELECT attempt FROM attempts WHERE run_id = ? AND node_id = ? AND status = 'RUNNING'",
                    (run_id, node_id),
                ).fetchone()
                if live is not None and live["attempt"] != attempt:
                    raise StaleWrite(
                        f"run {run_id}: node {node_id!r} already has a live attempt ({live['attempt']});"
                        " a node never runs twice at once"
                    )
                raise StoreError(f"run {run_id}: attempt {attempt} of node {node_id!r} already exists")

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
    ) -> None:
        """Close an attempt. `duration` (seconds, monotonic clock) defaults to ended_at - started_at. Refused
        once the run is no longer driven by the session `token` (when given), and for an attempt someone else
        recorded INTERRUPTED meanwhile."""
        status = check(status, ATTEMPT_STATUSES, "attempt status")
        ended = to_timestamp(ended_at)
        with self._write() as handle:
            self._check_owner(handle, run_id, token)
            row = self._execute(
                handle,
                "SELECT started_at, status FROM attempts WHERE run_id = ? AND node_id = ? AND attempt = ?"
                f"{self._FOR_UPDATE}",
                (run_id, node_id, attempt),
            ).fetchone()
            if row is None:
                raise StoreError(f"run {run_id}: no attempt {attempt} of node {node_id!r} was started")
            if row["status"] == "INTERRUPTED" and status != "INTERRUPTED":
                # closed by someone else meanwhile (set-status, a recovery): what they recorded stays
                raise StaleWrite(
                    f"run {run_id}: attempt {attempt} of {node_id!r} was already recorded INTERRUPTED;"
                    " nothing was changed"
                )
            if duration is None:
                duration = (
                    datetime.fromisoformat(ended) - self._row_time_set(row["started_at"])
                ).total_seconds()
            self._execute(
                handle,
                "UPDATE attempts SET status = ?, ended_at = ?, duration = ?, exit_code = ?, stdout = ?,"
                f" stderr = ?, result = {self._JSON}, error = ? WHERE run_id = ? AND node_id = ? AND attempt = ?",
                (
                    status,
                    self._db_time(ended),
                    duration,
                    exit_code,
                    stdout,
                    stderr,
                    None if result is None else to_json(result),
                    error,
                    run_id,
                    node_id,
                    attempt,
                ),
            )

    def attempts(self, run_id: int, node_id: str | None = None) -> list[AttemptRow]:
        self._require_run(run_id)
        sql = "SELECT a.* FROM attempts a JOIN node_states n USING (run_id, node_id) WHERE a.run_id = ?"
        params: tuple = (run_id,)
        if node_id is not None:
            sql += " AND a.node_id = ?"
            params += (node_id,)
        sql += " ORDER BY a.started_at, n.position, a.attempt"
        return [
            AttemptRow(
                run_id=r["run_id"],
                node_id=r["node_id"],
                attempt=r["attempt"],
                status=r["status"],
                started_at=self._row_time_set(r["started_at"]),
                ended_at=self._row_time(r["ended_at"]),
                duration=r["duration"],
                exit_code=r["exit_code"],
                stdout=r["stdout"],
                stderr=r["stderr"],
                result=self._row_json(r["result"]),
                error=r["error"],
                host=r["host"],
                pgid=r["pgid"],
                pgid_start=r["pgid_start"],
                process_token=r["process_token"],
                revision=r["revision"],
            )
            for r in self._read(sql, params)
        ]

    def mark_interrupted(self, run_id: int) -> int:
        """Attempts still RUNNING become INTERRUPTED (an attempt_interrupted event each); returns how many."""
        now = to_timestamp(None)
        with self._write() as handle:
            self._lock_run(handle, run_id)
            return self._interrupt_attempts(handle, run_id, now)

    def _interrupt_attempts(self, handle: Any, run_id: int, now: str) -> int:
        """Attempts still RUNNING become INTERRUPTED, and nodes still RUNNING become PENDING with the reason
        (a node never stays RUNNING in a run whose process is gone). The caller holds the run's lock."""
        rows = self._execute(
            handle,
            "SELECT node_id, attempt FROM attempts WHERE run_id = ? AND status = 'RUNNING'"
            " ORDER BY started_at, attempt",
            (run_id,),
        ).fetchall()
        running = self._execute(
            handle,
            "SELECT node_id, attempts FROM node_states WHERE run_id = ? AND state = 'RUNNING'",
            (run_id,),
        ).fetchall()
        if running:
            counts = self._row_json(
                self._execute(handle, "SELECT counts FROM runs WHERE id = ?", (run_id,)).fetchone()["counts"]
            )
            for node in running:
                self._execute(
                    handle,
                    "UPDATE node_states SET state = 'PENDING', reason = ?, updated_at = ?"
                    " WHERE run_id = ? AND node_id = ?",
                    (
                        interrupted_reason(node["attempts"], "its process ended"),
                        self._db_time(now),
                        run_id,
                        node["node_id"],
                    ),
                )
                counts = moved_count(counts, "RUNNING", "PENDING")
            self._execute(
                handle, f"UPDATE runs SET counts = {self._JSON} WHERE id = ?", (to_json(counts), run_id)
            )
            self._run_state_set(run_id, counts=counts)
        for row in rows:
            self._execute(
                handle,
                "UPDATE attempts SET status = 'INTERRUPTED', ended_at = ?, error = ?"
                " WHERE run_id = ? AND node_id = ? AND attempt = ?",
                (self._db_time(now), INTERRUPTED_ERROR, run_id, row["node_id"], row["attempt"]),
            )
            self._execute(
                handle,
                "UPDATE host_results SET state = 'NOK', ended_at = ?, error = ?"
                " WHERE run_id = ? AND node_id = ? AND attempt = ? AND state = 'RUNNING'",
                (self._db_time(now), INTERRUPTED_ERROR, run_id, row["node_id"], row["attempt"]),
            )
            self._append_event(
                handle,
                run_id,
                "attempt_interrupted",
                node_id=row["node_id"],
                attempt=row["attempt"],
                at=now,
                payload={"error": INTERRUPTED_ERROR},
                locked=True,
            )
        return len(rows)

    # ---- per-host rows of fleet nodes (issue 21) ---------------------------------------------------

    def record_hosts(self, run_id: int, node_id: str, attempt: int, rows: list[dict[str, Any]]) -> None:
        """Insert or update hosts of one attempt: each row has `host`, `position`, `state` and any of
        membership, exit_code, stdout, stderr, error, started_at, ended_at (When), duration."""
        if not rows:
            return
        with self._write() as handle:
            for row in rows:
                state = check(row["state"], HOST_STATES, "host state")
                started, ended = row.get("started_at"), row.get("ended_at")
                duration = row.get("duration")
                if duration is None and ended is not None:
                    if started is None:  # started in an earlier write
                        known = self._execute(
                            handle,
                            "SELECT started_at FROM host_results"
                            " WHERE run_id = ? AND node_id = ? AND attempt = ? AND host = ?",
                            (run_id, node_id, attempt, row["host"]),
                        ).fetchone()
                        begun = self._row_time(known["started_at"]) if known is not None else None
                    else:
                        begun = from_timestamp(to_timestamp(started))
                    if begun is not None:
                        duration = max(
                            0.0, (datetime.fromisoformat(to_timestamp(ended)) - begun).total_seconds()
                        )
                self._execute(
                    handle,
                    "INSERT INTO host_results (run_id, node_id, attempt, host, position, state, membership,"
                    " exit_code, stdout, stderr, error, started_at, ended_at, duration)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (run_id, node_id, attempt, host) DO UPDATE SET state = excluded.state,"
                    " membership = COALESCE(excluded.membership, host_results.membership),"
                    " exit_code = excluded.exit_code, stdout = excluded.stdout, stderr = excluded.stderr,"
                    " error = excluded.error,"
                    " started_at = COALESCE(excluded.started_at, host_results.started_at),"
                    " ended_at = excluded.ended_at, duration = excluded.duration",
                    (
                        run_id,
                        node_id,
                        attempt,
                        row["host"],
                        int(row.get("position", 0)),
                        state,
                        row.get("membership"),
                        row.get("exit_code"),
                        row.get("stdout"),
                        row.get("stderr"),
                        row.get("error"),
                        None if started is None else self._db_time(to_timestamp(started)),
                        None if ended is None else self._db_time(to_timestamp(ended)),
                        duration,
                    ),
                )

    def host_results(self, run_id: int, node_id: str | None = None) -> list[HostRow]:
        """Every host row of the run (or of one node), by node, attempt and inventory order."""
        self._require_run(run_id)
        sql = "SELECT * FROM host_results WHERE run_id = ?"
        params: tuple = (run_id,)
        if node_id is not None:
            sql += " AND node_id = ?"
            params += (node_id,)
        sql += " ORDER BY node_id, attempt, position, host"
        return [
            HostRow(
                run_id=r["run_id"],
                node_id=r["node_id"],
                attempt=r["attempt"],
                host=r["host"],
                position=r["position"],
                state=r["state"],
                membership=r["membership"],
                exit_code=r["exit_code"],
                stdout=r["stdout"],
                stderr=r["stderr"],
                error=r["error"],
                started_at=self._row_time(r["started_at"]),
                ended_at=self._row_time(r["ended_at"]),
                duration=r["duration"],
            )
            for r in self._read(sql, params)
        ]

    def record_decision(
        self,
        run_id: int,
        node_id: str,
        decision: str,
        actor: str | None,
        comment: str | None = None,
        decided_at: When = None,
        source: str | None = None,
    ) -> int:
        with self._write() as handle:
            self._require_node(handle, run_id, node_id)
            return self._insert(
                handle,
                "INSERT INTO decisions (run_id, node_id, decision, actor, comment, decided_at, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    node_id,
                    name_of(decision),
                    actor,
                    comment,
                    self._db_time(to_timestamp(decided_at)),
                    source,
                ),
            )

    def decisions(self, run_id: int) -> list[DecisionRow]:
        self._require_run(run_id)
        rows = self._read("SELECT * FROM decisions WHERE run_id = ? ORDER BY decided_at, id", (run_id,))
        return [
            DecisionRow(
                id=r["id"],
                run_id=r["run_id"],
                node_id=r["node_id"],
                decision=r["decision"],
                actor=r["actor"],
                comment=r["comment"],
                decided_at=self._row_time_set(r["decided_at"]),
                source=r["source"],
            )
            for r in rows
        ]

    # ---- gates decided from anywhere (issue 16) ---------------------------------------------------

    def _gate_wait_row(self, r: Any) -> GateWaitRow:
        return GateWaitRow(
            id=r["id"],
            run_id=r["run_id"],
            node_id=r["node_id"],
            status=r["status"],
            started_at=self._row_time_set(r["started_at"]),
            deadline=self._row_time_set(r["deadline"]),
            decision=r["decision"],
            actor=r["actor"],
            source=r["source"],
            comment=r["comment"],
            decided_at=self._row_time(r["decided_at"]),
        )

    def _notify_gate(self, handle: Any, wait_id: int) -> None:
        """Tell a run waiting at the gate that its wait row moved (PostgreSQL: NOTIFY)."""

    def open_gate_wait(self, run_id: int, node_id: str, deadline: When) -> GateWaitRow:
        with self._write() as handle:
            self._require_node(handle, run_id, node_id)
            self._execute(
                handle,
                "UPDATE gate_waits SET status = 'expired' WHERE run_id = ? AND node_id = ?"
                " AND status IN ('waiting', 'decided')",
                (run_id, node_id),
            )
            wait_id = self._insert(
                handle,
                "INSERT INTO gate_waits (run_id, node_id, status, started_at, deadline)"
                " VALUES (?, ?, 'waiting', ?, ?)",
                (run_id, node_id, self._db_time(to_timestamp(None)), self._db_time(to_timestamp(deadline))),
            )
        return self.gate_wait(wait_id)

    def gate_wait(self, wait_id: int) -> GateWaitRow:
        row = self._read_one("SELECT * FROM gate_waits WHERE id = ?", (wait_id,))
        if row is None:
            raise StoreError(f"no gate wait {wait_id} in {self.path}")
        return self._gate_wait_row(row)

    def open_wait_at(self, run_id: int, node_id: str) -> GateWaitRow | None:
        row = self._read_one(
            "SELECT * FROM gate_waits WHERE run_id = ? AND node_id = ? AND status IN ('waiting', 'decided')",
            (run_id, node_id),
        )
        return None if row is None else self._gate_wait_row(row)

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
        now = self._db_time(to_timestamp(at))
        same_version = "" if version is None else f" AND version = {int(version):d}"
        with self._write() as handle:
            moved = self._execute(
                handle,
                "UPDATE gate_waits SET status = 'decided', decision = ?, actor = ?, source = ?, comment = ?,"
                " decided_at = ? WHERE run_id = ? AND node_id = ? AND status = 'waiting' AND deadline > ?"
                f" AND EXISTS (SELECT 1 FROM runs WHERE id = ? AND status = 'RUNNING'{same_version})"
                " AND EXISTS (SELECT 1 FROM node_states WHERE run_id = ? AND node_id = ? AND state = 'WAITING')",
                (decision, actor, source, comment, now, run_id, node_id, now, run_id, run_id, node_id),
            ).rowcount
            if moved != 1:
                return None
            row = self._execute(
                handle,
                "SELECT * FROM gate_waits WHERE run_id = ? AND node_id = ? AND status = 'decided'",
                (run_id, node_id),
            ).fetchone()
            self._notify_gate(handle, row["id"])
        return self._gate_wait_row(row)

    def close_gate_wait(self, wait_id: int, status: str, *, expected: str) -> bool:
        check(status, ("applied", "expired"), "gate wait status")
        with self._write() as handle:
            moved = self._execute(
                handle,
                "UPDATE gate_waits SET status = ? WHERE id = ? AND status = ?",
                (status, wait_id, expected),
            ).rowcount
            if moved == 1:
                self._notify_gate(handle, wait_id)
        return moved == 1

    # ---- events -----------------------------------------------------------------------------------

    def append_event(
        self,
        run_id: int,
        kind: str,
        *,
        node_id: str | None = None,
        attempt: int | None = None,
        payload: Any = None,
        at: When = None,
    ) -> int:
        """Append one event to the run's hash chain, committed at once; returns its seq within the run."""
        with self._write() as handle:
            return self._append_event(
                handle, run_id, kind, node_id=node_id, attempt=attempt, payload=payload, at=to_timestamp(at)
            )

    def _append_event(
        self,
        handle: Any,
        run_id: int,
        kind: str,
        *,
        at: str,
        node_id: str | None = None,
        attempt: int | None = None,
        payload: Any = None,
        locked: bool = False,
    ) -> int:
        """Append under the run's lock (taken here unless the caller holds it already)."""
        if locked and run_id not in self._batch_runs:
            sql = "SELECT event_count, event_head FROM runs WHERE id = ?"
            head = self._execute(handle, sql, (run_id,)).fetchone()
            if head is None:
                raise self._missing_run(run_id)
        else:
            head = self._run_state(handle, run_id)
        seq = head["event_count"] + 1
        payload_text = to_json({} if payload is None else payload)
        digest = hashing.event_hash(
            head["event_head"],
            run_id=run_id,
            seq=seq,
            at=at,
            kind=kind,
            node_id=node_id,
            attempt=attempt,
            payload=payload_text,
            key=self.chain_key,
        )
        self._execute(
            handle,
            "INSERT INTO events (run_id, seq, at, kind, node_id, attempt, payload, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, seq, at, kind, node_id, attempt, payload_text, head["event_head"], digest),
        )
        self._update_run_row(handle, run_id, event_count=seq, event_head=digest)
        self._run_state_set(run_id, event_count=seq, event_head=digest)
        return seq

    def events(self, run_id: int) -> list[EventRow]:
        self._require_run(run_id)
        return [
            EventRow(
                id=r["id"],
                run_id=r["run_id"],
                seq=r["seq"],
                at=datetime.fromisoformat(
                    r["at"]
                ),  # events.at is text (NOT NULL) in both backends: hashed as stored
                kind=r["kind"],
                node_id=r["node_id"],
                attempt=r["attempt"],
                payload=from_json(r["payload"]),
                prev_hash=r["prev_hash"],
                hash=r["hash"],
            )
            for r in self._read("SELECT * FROM events WHERE run_id = ? ORDER BY seq, id", (run_id,))
        ]

    def verify_events(self, run_id: int) -> list[str]:
        """Problems in the run's event hash chain (edited, inserted or deleted events); empty when intact."""
        head = self._read_one("SELECT event_count, event_head FROM runs WHERE id = ?", (run_id,))
        if head is None:
            raise self._missing_run(run_id)
        rows = self._read("SELECT * FROM events WHERE run_id = ? ORDER BY seq, id", (run_id,))
        return hashing.verify_chain(
            run_id, (dict(r) for r in rows), head["event_count"], head["event_head"], key=self.chain_key
        )

    # ---- copying between stores -------------------------------------------------------------------

    def dump_run(self, run_id: int) -> dict[str, Any]:
        """Every row of the run, backend-neutral: timestamps as ISO text, JSON columns parsed,
        events.payload as the text hashed."""
        run = self._read_one(f"{RUN_SELECT} WHERE runs.id = ?", (run_id,))
        if run is None:
            raise self._missing_run(run_id)
        neutral = self._neutral(dict(run), "runs")
        neutral["snapshot"] = self._snapshot_of(run)  # whole, as before migration 0005
        dump: dict[str, Any] = {"run": neutral}
        for table, sql in DUMP_QUERIES.items():
            dump[table] = [self._neutral(dict(r), table) for r in self._read(sql, (run_id,))]
        return dump

    def _load_run_parts(self, handle: Any, run: dict[str, Any]) -> None:
        """After `load_run` inserted the run row (without its text and snapshot): the text, the snapshot."""
        self._execute(
            handle,
            "INSERT INTO run_texts (run_id, runbook_text) VALUES (?, ?)",
            (run["id"], run["runbook_text"]),
        )
        if run.get("snapshot") is not None:
            self._save_snapshot(handle, run["id"], run["snapshot"], partial=False)

    # ---- statistics -------------------------------------------------------------------------------

    def stats(self, workflow: str | None = None) -> dict[str, Any]:
        """Counts by status, success rate (OK among finished runs), mean run and node durations, runs per
        workflow. Durations are seconds; a node's mean covers its finished (OK or NOK) attempts."""
        where, params = ("WHERE workflow = ?", (workflow,)) if workflow is not None else ("", ())
        ok, nok = self._COUNT_IF.format("status = 'OK'"), self._COUNT_IF.format("a.status = 'NOK'")
        by_status = {s: 0 for s in RUN_STATUSES}
        for r in self._read(f"SELECT status, COUNT(*) AS n FROM runs {where} GROUP BY status", params):
            by_status[r["status"]] = r["n"]
        total = sum(by_status.values())
        finished = by_status["OK"] + by_status["NOK"] + by_status["ABORTED"]
        per_workflow = {
            r["workflow"]: {"runs": r["n"], "ok": r["ok"], "last_started_at": self._time_text(r["last"])}
            for r in self._read(
                f"SELECT workflow, COUNT(*) AS n, {ok} AS ok,"
                f" MAX(started_at) AS last FROM runs {where} GROUP BY workflow ORDER BY workflow",
                params,
            )
        }
        durations = self._read_one(
            f"SELECT AVG({self._RUN_SECONDS}) AS mean"
            f" FROM runs {where} {'AND' if where else 'WHERE'} ended_at IS NOT NULL",
            params,
        )
        # From the attempts_stats index alone when no workflow is named, or when the named one holds every run
        # of the index (one runbook's index: 0.07 s instead of 0.35 s over 100,000 runs, issue 18.4); else
        # the attempts of the workflow's runs, looked up run by run.
        narrow = workflow is not None and total != self._read_one("SELECT COUNT(*) AS n FROM runs")["n"]
        node_rows = self._read(
            f"SELECT a.node_id, COUNT(*) AS n, AVG(a.duration) AS mean, {nok} AS nok FROM attempts a"
            " WHERE a.status IN ('OK', 'NOK')"
            f" {'AND a.run_id IN (SELECT id FROM runs WHERE workflow = ?)' if narrow else ''}"
            " GROUP BY a.node_id ORDER BY a.node_id",
            params if narrow else (),
        )
        return {
            "workflow": workflow,
            "runs": total,
            "by_status": by_status,
            "success_rate": by_status["OK"] / finished if finished else None,
            "mean_run_seconds": durations["mean"] if durations else None,
            "runs_per_workflow": per_workflow,
            "nodes": {
                r["node_id"]: {"attempts": r["n"], "failed_attempts": r["nok"], "mean_seconds": r["mean"]}
                for r in node_rows
            },
        }

    # ---- rows -------------------------------------------------------------------------------------

    def _run(self, row: Any, snapshot: dict[str, Any] | None) -> Run:
        return Run(
            id=row["id"],
            workflow=row["workflow"],
            number=row["number"],
            title=row["title"],
            status=row["status"],
            status_reason=row["status_reason"],
            started_at=self._row_time_set(row["started_at"]),
            ended_at=self._row_time(row["ended_at"]),
            trigger=row["trigger"],
            actor=row["actor"],
            host=row["host"],
            mode=row["mode"],
            variables=self._row_json(row["variables"]),
            params=self._row_json(row["params"]),
            runbook_text=row["runbook_text"],
            runbook_sha256=row["runbook_sha256"],
            runbook_version=row["runbook_version"],
            notebook_path=row["notebook_path"],
            artifact_dir=row["artifact_dir"],
            counts=self._row_json(row["counts"]),
            snapshot=snapshot,
            event_count=row["event_count"],
            event_head=row["event_head"],
            version=row["version"],
            owner_token=row["owner_token"],
            owner_host=row["owner_host"],
            owner_pid=row["owner_pid"],
            owner_pid_start=row["owner_pid_start"],
            owner_kind=row["owner_kind"],
            owner_actor=row["owner_actor"],
            owner_seen_at=self._row_time(row["owner_seen_at"]),
            lease_expires=self._row_time(row["lease_expires"]),
            revision=row["revision"],
        )
