"""The SQLite run record: one `Store` per process (one connection), safe for several processes on one file.

Connection: WAL journal, `busy_timeout` (30 s by default), foreign keys on, autocommit mode with explicit
transactions. Every write is one `BEGIN IMMEDIATE ... COMMIT` (the write lock is taken up front, so a
read-then-insert such as allocating a run number never races and never fails with "database is locked" on
upgrade). Each method commits before it returns: a killed process loses at most the attempt in flight.
Inside `with store.batch():` the writes share one such transaction instead, committed when the block ends
(a session writes the events of one engine transition that way).

SQL lives in small explicit methods, one statement or a few per method, so a PostgreSQL backend (psycopg 3)
can implement the same public methods with `%s` placeholders and `SELECT ... FOR UPDATE` where SQLite takes
its IMMEDIATE lock.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playbook_nb.errors import StoreError
from playbook_nb.store import hashing
from playbook_nb.store.artifacts import ArtifactStore, is_url, local_staging_dir
from playbook_nb.store.base import Store, moved_count
from playbook_nb.store.migrate import latest_version, migrate_sqlite
from playbook_nb.store.models import (
    ATTEMPT_STATUSES,
    INTERRUPTED_ERROR,
    MODES,
    NODE_STATES,
    RUN_STATUSES,
    TRIGGERS,
    AttemptRow,
    DecisionRow,
    EventRow,
    NodeStateRow,
    Run,
    When,
    from_json,
    from_timestamp,
    name_of,
    to_json,
    to_timestamp,
)

DEFAULT_TIMEOUT = 30.0


def _check(value: Any, allowed: tuple[str, ...], what: str) -> str:
    text = name_of(value)
    if text not in allowed:
        raise StoreError(f"invalid {what} {text!r}; valid: {', '.join(allowed)}")
    return text


class SQLiteStore(Store):
    """The run record in one SQLite file, plus a directory per run for artifacts."""

    backend = "sqlite"

    def __init__(self, path: Path, conn: sqlite3.Connection, artifacts_root: Path | str):
        self.path = path
        self.artifacts = ArtifactStore.from_url(artifacts_root)
        # a Path for a local directory (what callers write into), the URL text for a remote store
        self.artifacts_root = Path(self.artifacts.root) if self.artifacts.is_local else self.artifacts.root
        self._conn: sqlite3.Connection | None = conn
        self._in_batch = False

    # ---- opening and closing ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        artifacts_root: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SQLiteStore:
        path = Path(path).expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the run index directory {path.parent}: {_reason(err)}") from None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise StoreError(f"cannot write the run index {path}: directory {path.parent} is not writable")
        conn = None
        try:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000):d}")
            conn.execute("PRAGMA foreign_keys = ON")
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL journal (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > latest_version():
                raise StoreError(
                    f"run index {path} has schema version {version}, newer than this playbook-nb "
                    f"knows ({latest_version()}); upgrade playbook-nb"
                )
            migrate_sqlite(conn)
        except sqlite3.Error as err:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot open the run index {path}: {err}") from None
        except StoreError:
            if conn is not None:
                conn.close()
            raise
        root = os.fspath(artifacts_root) if artifacts_root else path.parent / "artifacts"
        try:
            return cls(path, conn, root)
        except StoreError:
            conn.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store sqlite {self.path}>"

    @property
    def schema_version(self) -> int:
        return self._read_one("PRAGMA user_version")[0]

    # ---- transactions -----------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"run index {self.path} is closed")
        return self._conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes made inside share one transaction, committed at the end; all or nothing."""
        if self._in_batch:  # a nested batch is part of the outer one
            yield
            return
        with self._write():
            self._in_batch = True
            try:
                yield
            finally:
                self._in_batch = False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the write lock from its start; all or nothing. Inside `batch()`,
        the batch's transaction."""
        conn = self.conn
        if self._in_batch:
            try:
                yield conn
            except sqlite3.Error as err:
                raise StoreError(f"cannot write the run index {self.path}: {err}") from None
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(f"cannot write the run index {self.path}: {err}") from None
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot write the run index {self.path}: {err}") from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _read(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read the run index {self.path}: {err}") from None

    def _read_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    def _missing_run(self, run_id: int) -> StoreError:
        return StoreError(f"no run {run_id} in {self.path}")

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
    ) -> Run:
        """A new RUNNING run, numbered next in its workflow, every node PENDING, with a run_started event."""
        trigger = _check(trigger, TRIGGERS, "trigger")
        mode = _check(mode, MODES, "mode")
        if len(set(node_ids)) != len(node_ids):
            raise StoreError("node ids given to create_run are not unique")
        started = to_timestamp(started_at)
        counts = to_json({"PENDING": len(node_ids)} if node_ids else {})
        with self._write() as conn:
            number = self._next_number(conn, workflow)
            cur = conn.execute(
                "INSERT INTO runs (workflow, number, title, status, started_at, trigger, actor, host, mode,"
                " variables, params, runbook_text, runbook_sha256, runbook_version, counts)"
                " VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    workflow,
                    number,
                    title,
                    started,
                    trigger,
                    actor,
                    host,
                    mode,
                    to_json(variables or {}),
                    to_json(params or {}),
                    runbook_text,
                    runbook_sha256,
                    runbook_version,
                    counts,
                ),
            )
            run_id = cur.lastrowid
            conn.executemany(
                "INSERT INTO node_states (run_id, node_id, position, state, updated_at)"
                " VALUES (?, ?, ?, 'PENDING', ?)",
                [(run_id, node_id, position, started) for position, node_id in enumerate(node_ids)],
            )
            self._append_event(
                conn,
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
            )
        return self.get_run(run_id)

    def _next_number(self, conn: sqlite3.Connection, workflow: str) -> int:
        (number,) = conn.execute(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE workflow = ?", (workflow,)
        ).fetchone()
        return number

    def get_run(self, run_id: int) -> Run:
        row = self._read_one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise self._missing_run(run_id)
        return _run(row)

    def latest_run(self, workflow: str, status: str | None = None) -> Run | None:
        runs = self.list_runs(workflow=workflow, status=status, limit=1)
        return runs[0] if runs else None

    def list_runs(
        self, workflow: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Run]:
        """Newest first (by start time, then id)."""
        where, params = [], []
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
        if status is not None:
            where.append("status = ?")
            params.append(_check(status, RUN_STATUSES, "run status"))
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
        return [_run(row) for row in self._read(sql, (*params, limit, offset))]

    def set_run_status(
        self, run_id: int, status: str, *, reason: str | None = None, ended_at: When = None
    ) -> None:
        """Set the run's status; a final status also sets ended_at (now unless given), RUNNING clears it."""
        status = _check(status, RUN_STATUSES, "run status")
        ended = None if status == "RUNNING" else to_timestamp(ended_at)
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, status_reason = ?, ended_at = ? WHERE id = ?",
                (status, reason, ended, run_id),
            )
            if cur.rowcount == 0:
                raise self._missing_run(run_id)

    def save_snapshot(self, run_id: int, snapshot: dict[str, Any] | str) -> None:
        self._update_run(run_id, "snapshot", snapshot if isinstance(snapshot, str) else to_json(snapshot))

    def load_snapshot(self, run_id: int) -> dict[str, Any] | None:
        row = self._read_one("SELECT snapshot FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise self._missing_run(run_id)
        return from_json(row["snapshot"])

    def set_notebook_path(self, run_id: int, path: str | os.PathLike[str]) -> None:
        self._update_run(run_id, "notebook_path", str(path))

    def _update_run(self, run_id: int, column: str, value: Any) -> None:
        assert column in ("snapshot", "notebook_path", "artifact_dir")
        with self._write() as conn:
            cur = conn.execute(f"UPDATE runs SET {column} = ? WHERE id = ?", (value, run_id))
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
        """Delete a finished run, its rows and its artifact directory; returns the bytes freed on disk."""
        run = self.get_run(run_id)
        if run.status == "RUNNING":
            raise StoreError(
                f"run {run_id} is RUNNING; set it to ABORTED first (set-status) if its process is gone"
            )
        with self._write() as conn:
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        if not run.artifact_dir:
            return 0
        try:
            return self.artifacts.delete(run.artifact_dir)
        except StoreError as err:
            raise StoreError(f"run {run_id} deleted, but not its artifacts: {err}") from None

    # ---- nodes, attempts, decisions ---------------------------------------------------------------

    def set_node_state(
        self,
        run_id: int,
        node_id: str,
        state: str,
        reason: str | None = None,
        attempts: int | None = None,
        failed: bool | None = None,
    ) -> None:
        """Set a node's state and reason; `attempts` and `failed` keep their value when None."""
        state = _check(state, NODE_STATES, "node state")
        with self._write() as conn:
            old = conn.execute(
                "SELECT state FROM node_states WHERE run_id = ? AND node_id = ?", (run_id, node_id)
            ).fetchone()
            if old is None:
                raise self._missing_node(conn, run_id, node_id)
            conn.execute(
                "UPDATE node_states SET state = ?, reason = ?, attempts = COALESCE(?, attempts),"
                " failed = COALESCE(?, failed), updated_at = ? WHERE run_id = ? AND node_id = ?",
                (
                    state,
                    reason,
                    attempts,
                    None if failed is None else int(bool(failed)),
                    to_timestamp(None),
                    run_id,
                    node_id,
                ),
            )
            if old["state"] != state:
                self._move_count(conn, run_id, old["state"], state)

    def _move_count(self, conn: sqlite3.Connection, run_id: int, old: str, new: str) -> None:
        """Keep `runs.counts` in step with node_states: one node went from state `old` to `new`."""
        (text,) = conn.execute("SELECT counts FROM runs WHERE id = ?", (run_id,)).fetchone()
        conn.execute(
            "UPDATE runs SET counts = ? WHERE id = ?",
            (to_json(moved_count(from_json(text), old, new)), run_id),
        )

    def _missing_node(self, conn: sqlite3.Connection, run_id: int, node_id: str) -> StoreError:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            return self._missing_run(run_id)
        return StoreError(f"run {run_id} has no node {node_id!r}")

    def node_states(self, run_id: int) -> list[NodeStateRow]:
        self._require_run(run_id)
        rows = self._read("SELECT * FROM node_states WHERE run_id = ? ORDER BY position", (run_id,))
        return [
            NodeStateRow(
                run_id=r["run_id"],
                node_id=r["node_id"],
                position=r["position"],
                state=r["state"],
                reason=r["reason"],
                attempts=r["attempts"],
                failed=bool(r["failed"]),
                updated_at=from_timestamp(r["updated_at"]),
            )
            for r in rows
        ]

    def _require_run(self, run_id: int) -> None:
        if self._read_one("SELECT 1 FROM runs WHERE id = ?", (run_id,)) is None:
            raise self._missing_run(run_id)

    def start_attempt(self, run_id: int, node_id: str, attempt: int, started_at: When = None) -> None:
        with self._write() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM node_states WHERE run_id = ? AND node_id = ?", (run_id, node_id)
                ).fetchone()
                is None
            ):
                raise self._missing_node(conn, run_id, node_id)
            if conn.execute(
                "SELECT 1 FROM attempts WHERE run_id = ? AND node_id = ? AND attempt = ?",
                (run_id, node_id, attempt),
            ).fetchone():
                raise StoreError(f"run {run_id}: attempt {attempt} of node {node_id!r} already exists")
            conn.execute(
                "INSERT INTO attempts (run_id, node_id, attempt, status, started_at)"
                " VALUES (?, ?, ?, 'RUNNING', ?)",
                (run_id, node_id, attempt, to_timestamp(started_at)),
            )

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
    ) -> None:
        """Close an attempt. `duration` (seconds, monotonic clock) defaults to ended_at - started_at."""
        status = _check(status, ATTEMPT_STATUSES, "attempt status")
        ended = to_timestamp(ended_at)
        with self._write() as conn:
            row = conn.execute(
                "SELECT started_at FROM attempts WHERE run_id = ? AND node_id = ? AND attempt = ?",
                (run_id, node_id, attempt),
            ).fetchone()
            if row is None:
                raise StoreError(f"run {run_id}: no attempt {attempt} of node {node_id!r} was started")
            if duration is None:
                duration = (from_timestamp(ended) - from_timestamp(row["started_at"])).total_seconds()
            conn.execute(
                "UPDATE attempts SET status = ?, ended_at = ?, duration = ?, exit_code = ?, stdout = ?,"
                " stderr = ?, result = ?, error = ? WHERE run_id = ? AND node_id = ? AND attempt = ?",
                (
                    status,
                    ended,
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
                started_at=from_timestamp(r["started_at"]),
                ended_at=from_timestamp(r["ended_at"]),
                duration=r["duration"],
                exit_code=r["exit_code"],
                stdout=r["stdout"],
                stderr=r["stderr"],
                result=from_json(r["result"]),
                error=r["error"],
            )
            for r in self._read(sql, params)
        ]

    def mark_interrupted(self, run_id: int) -> int:
        """Attempts still RUNNING become INTERRUPTED (an attempt_interrupted event each); returns how many."""
        now = to_timestamp(None)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise self._missing_run(run_id)
            return self._interrupt_attempts(conn, run_id, now)

    def _interrupt_attempts(self, conn: sqlite3.Connection, run_id: int, now: str) -> int:
        rows = conn.execute(
            "SELECT node_id, attempt FROM attempts WHERE run_id = ? AND status = 'RUNNING'"
            " ORDER BY started_at, attempt",
            (run_id,),
        ).fetchall()
        for node_id, attempt in rows:
            conn.execute(
                "UPDATE attempts SET status = 'INTERRUPTED', ended_at = ?, error = ?"
                " WHERE run_id = ? AND node_id = ? AND attempt = ?",
                (now, INTERRUPTED_ERROR, run_id, node_id, attempt),
            )
            self._append_event(
                conn,
                run_id,
                "attempt_interrupted",
                node_id=node_id,
                attempt=attempt,
                at=now,
                payload={"error": INTERRUPTED_ERROR},
            )
        return len(rows)

    def record_decision(
        self,
        run_id: int,
        node_id: str,
        decision: str,
        actor: str | None,
        comment: str | None = None,
        decided_at: When = None,
    ) -> int:
        with self._write() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM node_states WHERE run_id = ? AND node_id = ?", (run_id, node_id)
                ).fetchone()
                is None
            ):
                raise self._missing_node(conn, run_id, node_id)
            cur = conn.execute(
                "INSERT INTO decisions (run_id, node_id, decision, actor, comment, decided_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, node_id, name_of(decision), actor, comment, to_timestamp(decided_at)),
            )
            return cur.lastrowid

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
                decided_at=from_timestamp(r["decided_at"]),
            )
            for r in rows
        ]

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
        with self._write() as conn:
            return self._append_event(
                conn, run_id, kind, node_id=node_id, attempt=attempt, payload=payload, at=to_timestamp(at)
            )

    def _append_event(
        self,
        conn: sqlite3.Connection,
        run_id: int,
        kind: str,
        *,
        at: str,
        node_id: str | None = None,
        attempt: int | None = None,
        payload: Any = None,
    ) -> int:
        head = conn.execute("SELECT event_count, event_head FROM runs WHERE id = ?", (run_id,)).fetchone()
        if head is None:
            raise self._missing_run(run_id)
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
        )
        conn.execute(
            "INSERT INTO events (run_id, seq, at, kind, node_id, attempt, payload, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, seq, at, kind, node_id, attempt, payload_text, head["event_head"], digest),
        )
        conn.execute("UPDATE runs SET event_count = ?, event_head = ? WHERE id = ?", (seq, digest, run_id))
        return seq

    def events(self, run_id: int) -> list[EventRow]:
        self._require_run(run_id)
        return [
            EventRow(
                id=r["id"],
                run_id=r["run_id"],
                seq=r["seq"],
                at=from_timestamp(r["at"]),
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
        return hashing.verify_chain(run_id, (dict(r) for r in rows), head["event_count"], head["event_head"])

    # ---- copying between stores -------------------------------------------------------------------

    def dump_run(self, run_id: int) -> dict[str, Any]:
        """Every row of the run as stored: timestamps ISO text, JSON columns parsed, events.payload text."""
        run = self._read_one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if run is None:
            raise self._missing_run(run_id)
        tables = {
            "node_states": "SELECT * FROM node_states WHERE run_id = ? ORDER BY position",
            "attempts": "SELECT * FROM attempts WHERE run_id = ? ORDER BY node_id, attempt",
            "decisions": "SELECT * FROM decisions WHERE run_id = ? ORDER BY id",
            "events": "SELECT * FROM events WHERE run_id = ? ORDER BY seq",
        }
        dump: dict[str, Any] = {"run": _neutral(dict(run), "runs")}
        for table, sql in tables.items():
            dump[table] = [_neutral(dict(r), table) for r in self._read(sql, (run_id,))]
        return dump

    def load_run(self, dump: dict[str, Any]) -> None:
        with self._write() as conn:
            for table in ("runs", "node_states", "attempts", "decisions", "events"):
                rows = [dump["run"]] if table == "runs" else dump[table]
                for row in rows:
                    stored = _stored(row, table)
                    columns = ", ".join(stored)
                    marks = ", ".join("?" for _ in stored)
                    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(stored.values()))

    # ---- manual status changes --------------------------------------------------------------------

    def set_status_manually(
        self,
        run_id: int,
        status: str,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Run:
        """`set-status`: an operator changes a run's status by hand (rules in `manual_status_problem`).

        Leaving RUNNING marks its RUNNING attempts INTERRUPTED. Records a `status_set_manually` event.
        """
        new = name_of(status).upper()
        if new not in RUN_STATUSES:
            raise StoreError(f"invalid run status {name_of(status)!r}; valid: {', '.join(RUN_STATUSES)}")
        now = to_timestamp(None)
        with self._write() as conn:
            row = conn.execute("SELECT status, ended_at FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise self._missing_run(run_id)
            old = row["status"]
            problem = manual_status_problem(run_id, old, new, force)
            if problem:
                raise StoreError(problem)
            if old != new:
                if old == "RUNNING":
                    self._interrupt_attempts(conn, run_id, now)
                conn.execute(
                    "UPDATE runs SET status = ?, status_reason = ?, ended_at = ? WHERE id = ?",
                    (new, reason or f"set manually from {old} to {new}", row["ended_at"] or now, run_id),
                )
                self._append_event(
                    conn,
                    run_id,
                    "status_set_manually",
                    at=now,
                    payload={"from": old, "to": new, "forced": force, "actor": actor, "reason": reason},
                )
        return self.get_run(run_id)

    # ---- statistics -------------------------------------------------------------------------------

    def stats(self, workflow: str | None = None) -> dict[str, Any]:
        """Counts by status, success rate (OK among finished runs), mean run and node durations, runs per
        workflow. Durations are seconds; a node's mean covers its finished (OK or NOK) attempts."""
        where, params = ("WHERE workflow = ?", (workflow,)) if workflow is not None else ("", ())
        by_status = {s: 0 for s in RUN_STATUSES}
        for status, n in self._read(f"SELECT status, COUNT(*) FROM runs {where} GROUP BY status", params):
            by_status[status] = n
        total = sum(by_status.values())
        finished = by_status["OK"] + by_status["NOK"] + by_status["ABORTED"]
        per_workflow = {
            r["workflow"]: {"runs": r["n"], "ok": r["ok"], "last_started_at": r["last"]}
            for r in self._read(
                "SELECT workflow, COUNT(*) AS n, SUM(status = 'OK') AS ok, MAX(started_at) AS last"
                f" FROM runs {where} GROUP BY workflow ORDER BY workflow",
                params,
            )
        }
        durations = self._read_one(
            "SELECT AVG((julianday(ended_at) - julianday(started_at)) * 86400.0) AS mean"
            f" FROM runs {where} {'AND' if where else 'WHERE'} ended_at IS NOT NULL",
            params,
        )
        node_rows = self._read(
            "SELECT a.node_id, COUNT(*) AS n, AVG(a.duration) AS mean, SUM(a.status = 'NOK') AS nok"
            " FROM attempts a JOIN runs r ON r.id = a.run_id"
            f" WHERE a.status IN ('OK', 'NOK') {'AND r.workflow = ?' if workflow is not None else ''}"
            " GROUP BY a.node_id ORDER BY a.node_id",
            params,
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


def manual_status_problem(run_id: int, old: str, new: str, force: bool) -> str | None:
    """Why `set-status` may not move a run from `old` to `new`, or None when it may.

    - Same status: nothing to do (allowed).
    - Nothing is set to RUNNING by hand: a run is RUNNING only while a process drives it (resume it instead).
    - RUNNING -> ABORTED, OK or NOK: allowed; the way to close a run whose process was killed
      (ABORTED makes it resumable).
    - ABORTED -> OK or NOK: allowed (closing an aborted run without resuming it).
    - OK or NOK -> anything else: a finished run's outcome is history; only with force.
    """
    if old == new:
        return None
    if new == "RUNNING":
        return f"run {run_id} cannot be set to RUNNING by hand; resume an ABORTED run instead"
    if old in ("OK", "NOK") and not force:
        return f"run {run_id} finished {old}; changing it to {new} needs --force"
    return None


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        workflow=row["workflow"],
        number=row["number"],
        title=row["title"],
        status=row["status"],
        status_reason=row["status_reason"],
        started_at=from_timestamp(row["started_at"]),
        ended_at=from_timestamp(row["ended_at"]),
        trigger=row["trigger"],
        actor=row["actor"],
        host=row["host"],
        mode=row["mode"],
        variables=from_json(row["variables"]),
        params=from_json(row["params"]),
        runbook_text=row["runbook_text"],
        runbook_sha256=row["runbook_sha256"],
        runbook_version=row["runbook_version"],
        notebook_path=row["notebook_path"],
        artifact_dir=row["artifact_dir"],
        counts=from_json(row["counts"]),
        snapshot=from_json(row["snapshot"]),
        event_count=row["event_count"],
        event_head=row["event_head"],
    )


JSON_COLUMNS = {
    "runs": ("variables", "params", "counts", "snapshot"),
    "attempts": ("result",),
}
BOOL_COLUMNS = {"node_states": ("failed",)}


def _neutral(row: dict[str, Any], table: str) -> dict[str, Any]:
    for column in JSON_COLUMNS.get(table, ()):
        row[column] = from_json(row[column])
    for column in BOOL_COLUMNS.get(table, ()):
        row[column] = bool(row[column])
    return row


def _stored(row: dict[str, Any], table: str) -> dict[str, Any]:
    row = dict(row)
    for column in JSON_COLUMNS.get(table, ()):
        row[column] = None if row[column] is None else to_json(row[column])
    for column in BOOL_COLUMNS.get(table, ()):
        row[column] = int(bool(row[column]))
    return row


def _reason(err: OSError) -> str:
    return err.strerror or str(err)
