"""The PostgreSQL run record (psycopg 3): one index shared by a whole team's runners.

Same public methods, rows, rules and event hash chain as `SQLiteStore`; what differs is how concurrency is
made safe:

- Run numbers: a `workflow_counters` row per workflow, bumped with
  `INSERT ... ON CONFLICT (workflow) DO UPDATE SET last_number = last_number + 1 RETURNING last_number`.
  The statement is atomic and row-locks the counter until the transaction commits, so two runners starting
  the same workflow get consecutive numbers, never the same one, and runners of different workflows never
  wait for each other. (A read-MAX-then-insert would race under READ COMMITTED.) The counter and the run are
  written in one transaction, so a failed create_run gives no number away. One difference from SQLite:
  numbers of deleted runs are not reused.
- Hash chain: appending an event first takes the run's row lock (`SELECT ... FOR UPDATE`), then reads the
  chain head, inserts the event and moves the head, all in one transaction: concurrent appends to one run
  are serialised, appends to different runs are not.
- Node states: `set_node_state` locks the run row too, so the `counts` summary it moves by one node (from
  the node's old state to its new one) sees every committed change (parallel nodes of one run).
- `with store.batch():` makes the writes inside one transaction (a session writes the events of one engine
  transition that way).
- Migrations: numbered files in `pg_migrations/` (same numbers as the SQLite ones), tracked in
  `schema_migrations`; applying them holds a transaction-scoped advisory lock, so several runners opening a
  new database at once apply each migration once.

Connection: one connection per `Store` (autocommit, explicit transactions), session time zone UTC,
`connect_timeout` and `lock_timeout` from `timeout`. The password never appears in `path`, `url` or an error
message: give it in the URL, in `PGPASSWORD` or in `~/.pgpass`. When the URL given has no password and
`PLAYBOOK_DB_URL` holds the same URL with one, that password is used (so a notebook kernel can be handed the
password-free URL).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from playbook_nb.errors import StoreError
from playbook_nb.store import hashing
from playbook_nb.store.artifacts import ArtifactStore, is_url, local_staging_dir
from playbook_nb.store.base import Store, moved_count
from playbook_nb.store.location import DB_URL_ENV, default_artifacts_dir
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
    from_timestamp,
    name_of,
    to_json,
    to_timestamp,
)
from playbook_nb.store.sqlite import manual_status_problem

DEFAULT_TIMEOUT = 30.0
MIGRATION_LOCK = 0x706C6E62  # "plnb": the advisory lock key held while migrating
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

JSON_COLUMNS = {"runs": ("variables", "params", "counts", "snapshot"), "attempts": ("result",)}
TIME_COLUMNS = {
    "runs": ("started_at", "ended_at"),
    "node_states": ("updated_at",),
    "attempts": ("started_at", "ended_at"),
    "decisions": ("decided_at",),
    "events": (),  # events.at is text: hashed as stored
}
COPY_TABLES = ("runs", "node_states", "attempts", "decisions", "events")


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "a postgresql:// run index needs psycopg 3: pip install 'playbook-nb[postgres]'"
        ) from None
    return psycopg


def redact(url: str) -> str:
    """The URL without its password (what is shown, logged and handed to notebook kernels)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[1]}" if len(netloc) == 2 else netloc[0]))


def _with_password_from_env(url: str) -> str:
    env_url = os.environ.get(DB_URL_ENV, "")
    if urlsplit(url).password is None and env_url and redact(env_url) == url:
        return env_url
    return url


def load_pg_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every PostgreSQL migration, numbered 1, 2, 3 ... without gaps."""
    found = []
    for entry in resources.files("playbook_nb.store").joinpath("pg_migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise RuntimeError(f"PostgreSQL migration {name}: expected number {expected:04d}")
    return found


def _check(value: Any, allowed: tuple[str, ...], what: str) -> str:
    text = name_of(value)
    if text not in allowed:
        raise StoreError(f"invalid {what} {text!r}; valid: {', '.join(allowed)}")
    return text


def _ts(value: When) -> datetime:
    """A moment for a timestamptz column, with the same rounding as the SQLite text (microseconds)."""
    return datetime.fromisoformat(to_timestamp(value))


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


class PostgresStore(Store):
    """The run record in a PostgreSQL database, plus an artifact store (local directory or fsspec URL)."""

    backend = "postgresql"

    def __init__(self, url: str, conn: Any, artifacts_root: str | os.PathLike[str]):
        self.path = redact(url)  # type: ignore[assignment]  # a URL: there is no file
        self.artifacts = ArtifactStore.from_url(artifacts_root)
        self.artifacts_root = Path(self.artifacts.root) if self.artifacts.is_local else self.artifacts.root
        self._conn = conn
        self._in_batch = False

    # ---- opening and closing ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        artifacts_root: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> PostgresStore:
        psycopg = _psycopg()
        url = os.fspath(url)
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        shown = redact(url)
        conn = None
        try:
            conn = psycopg.connect(
                _with_password_from_env(url),
                autocommit=True,
                connect_timeout=max(1, int(min(timeout, 10))),
                options=f"-c timezone=UTC -c lock_timeout={int(timeout * 1000)}",
                application_name="playbook-nb",
            )
            _migrate(conn, shown)
        except psycopg.Error as err:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot open the PostgreSQL run index {shown}: {_one_line(err)}") from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        try:
            return cls(url, conn, artifacts_root or default_artifacts_dir())
        except StoreError:
            conn.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store postgresql {self.path}>"

    @property
    def schema_version(self) -> int:
        return self._read_one("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")["v"]

    # ---- transactions -----------------------------------------------------------------------------

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
        with self._write():
            self._in_batch = True
            try:
                yield
            finally:
                self._in_batch = False

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One transaction (a cursor returning dict rows); all or nothing. Inside `batch()`, the batch's
        transaction."""
        psycopg = _psycopg()
        from psycopg.rows import dict_row

        conn = self.conn
        try:
            if self._in_batch:
                with conn.cursor(row_factory=dict_row) as cur:
                    yield cur
                return
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except psycopg.Error as err:
            raise StoreError(f"cannot write the run index {self.path}: {_one_line(err)}") from None

    def _read(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        psycopg = _psycopg()
        from psycopg.rows import dict_row

        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg.Error as err:
            raise StoreError(f"cannot read the run index {self.path}: {_one_line(err)}") from None

    def _read_one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    def _missing_run(self, run_id: int) -> StoreError:
        return StoreError(f"no run {run_id} in {self.path}")

    def _lock_run(self, cur: Any, run_id: int, columns: str = "id") -> dict[str, Any]:
        cur.execute(f"SELECT {columns} FROM runs WHERE id = %s FOR UPDATE", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise self._missing_run(run_id)
        return row

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
        with self._write() as cur:
            cur.execute(
                "INSERT INTO workflow_counters AS c (workflow, last_number) VALUES (%s, 1)"
                " ON CONFLICT (workflow) DO UPDATE SET last_number = c.last_number + 1"
                " RETURNING last_number",
                (workflow,),
            )
            number = cur.fetchone()["last_number"]
            cur.execute(
                "INSERT INTO runs (workflow, number, title, status, started_at, trigger, actor, host, mode,"
                " variables, params, runbook_text, runbook_sha256, runbook_version, counts)"
                " VALUES (%s, %s, %s, 'RUNNING', %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s,"
                " %s::jsonb) RETURNING id",
                (
                    workflow,
                    number,
                    title,
                    _ts(started),
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
            run_id = cur.fetchone()["id"]
            if node_ids:
                cur.executemany(
                    "INSERT INTO node_states (run_id, node_id, position, state, updated_at)"
                    " VALUES (%s, %s, %s, 'PENDING', %s)",
                    [(run_id, node_id, position, _ts(started)) for position, node_id in enumerate(node_ids)],
                )
            self._append_event(
                cur,
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

    def get_run(self, run_id: int) -> Run:
        row = self._read_one("SELECT * FROM runs WHERE id = %s", (run_id,))
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
            where.append("workflow = %s")
            params.append(workflow)
        if status is not None:
            where.append("status = %s")
            params.append(_check(status, RUN_STATUSES, "run status"))
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT %s OFFSET %s"
        return [_run(row) for row in self._read(sql, (*params, limit, offset))]

    def set_run_status(
        self, run_id: int, status: str, *, reason: str | None = None, ended_at: When = None
    ) -> None:
        status = _check(status, RUN_STATUSES, "run status")
        ended = None if status == "RUNNING" else _ts(ended_at)
        with self._write() as cur:
            cur.execute(
                "UPDATE runs SET status = %s, status_reason = %s, ended_at = %s WHERE id = %s",
                (status, reason, ended, run_id),
            )
            if cur.rowcount == 0:
                raise self._missing_run(run_id)

    def save_snapshot(self, run_id: int, snapshot: dict[str, Any] | str) -> None:
        self._update_run(run_id, "snapshot", snapshot if isinstance(snapshot, str) else to_json(snapshot))

    def load_snapshot(self, run_id: int) -> dict[str, Any] | None:
        row = self._read_one("SELECT snapshot FROM runs WHERE id = %s", (run_id,))
        if row is None:
            raise self._missing_run(run_id)
        return row["snapshot"]

    def set_notebook_path(self, run_id: int, path: str | os.PathLike[str]) -> None:
        self._update_run(run_id, "notebook_path", os.fspath(path))

    def _update_run(self, run_id: int, column: str, value: Any) -> None:
        assert column in ("snapshot", "notebook_path", "artifact_dir")
        cast = "::jsonb" if column == "snapshot" else ""
        with self._write() as cur:
            cur.execute(f"UPDATE runs SET {column} = %s{cast} WHERE id = %s", (value, run_id))
            if cur.rowcount == 0:
                raise self._missing_run(run_id)

    def artifact_dir(self, run_id: int) -> Path:
        """The run's local artifact directory, created on first use (a scratch directory for remote stores:
        publish files with `put_artifact`)."""
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
        with self._write() as cur:
            cur.execute("DELETE FROM runs WHERE id = %s", (run_id,))
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
        state = _check(state, NODE_STATES, "node state")
        with self._write() as cur:
            counts = self._lock_run(cur, run_id, "counts")["counts"]
            cur.execute("SELECT state FROM node_states WHERE run_id = %s AND node_id = %s", (run_id, node_id))
            old = cur.fetchone()
            if old is None:
                raise StoreError(f"run {run_id} has no node {node_id!r}")
            cur.execute(
                "UPDATE node_states SET state = %s, reason = %s, attempts = COALESCE(%s, attempts),"
                " failed = COALESCE(%s, failed), updated_at = %s WHERE run_id = %s AND node_id = %s",
                (
                    state,
                    reason,
                    attempts,
                    None if failed is None else bool(failed),
                    _ts(None),
                    run_id,
                    node_id,
                ),
            )
            if old["state"] != state:
                cur.execute(
                    "UPDATE runs SET counts = %s::jsonb WHERE id = %s",
                    (to_json(moved_count(counts, old["state"], state)), run_id),
                )

    def _require_node(self, cur: Any, run_id: int, node_id: str) -> None:
        cur.execute("SELECT 1 FROM node_states WHERE run_id = %s AND node_id = %s", (run_id, node_id))
        if cur.fetchone() is None:
            cur.execute("SELECT 1 FROM runs WHERE id = %s", (run_id,))
            if cur.fetchone() is None:
                raise self._missing_run(run_id)
            raise StoreError(f"run {run_id} has no node {node_id!r}")

    def node_states(self, run_id: int) -> list[NodeStateRow]:
        self._require_run(run_id)
        rows = self._read("SELECT * FROM node_states WHERE run_id = %s ORDER BY position", (run_id,))
        return [
            NodeStateRow(
                run_id=r["run_id"],
                node_id=r["node_id"],
                position=r["position"],
                state=r["state"],
                reason=r["reason"],
                attempts=r["attempts"],
                failed=bool(r["failed"]),
                updated_at=_utc(r["updated_at"]),
            )
            for r in rows
        ]

    def _require_run(self, run_id: int) -> None:
        if self._read_one("SELECT 1 AS x FROM runs WHERE id = %s", (run_id,)) is None:
            raise self._missing_run(run_id)

    def start_attempt(self, run_id: int, node_id: str, attempt: int, started_at: When = None) -> None:
        with self._write() as cur:
            self._require_node(cur, run_id, node_id)
            cur.execute(
                "INSERT INTO attempts (run_id, node_id, attempt, status, started_at)"
                " VALUES (%s, %s, %s, 'RUNNING', %s) ON CONFLICT DO NOTHING",
                (run_id, node_id, attempt, _ts(started_at)),
            )
            if cur.rowcount == 0:
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
    ) -> None:
        status = _check(status, ATTEMPT_STATUSES, "attempt status")
        ended = _ts(ended_at)
        with self._write() as cur:
            cur.execute(
                "SELECT started_at FROM attempts WHERE run_id = %s AND node_id = %s AND attempt = %s FOR UPDATE",
                (run_id, node_id, attempt),
            )
            row = cur.fetchone()
            if row is None:
                raise StoreError(f"run {run_id}: no attempt {attempt} of node {node_id!r} was started")
            if duration is None:
                duration = (ended - row["started_at"]).total_seconds()
            cur.execute(
                "UPDATE attempts SET status = %s, ended_at = %s, duration = %s, exit_code = %s, stdout = %s,"
                " stderr = %s, result = %s::jsonb, error = %s WHERE run_id = %s AND node_id = %s AND attempt = %s",
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
        sql = "SELECT a.* FROM attempts a JOIN node_states n USING (run_id, node_id) WHERE a.run_id = %s"
        params: tuple = (run_id,)
        if node_id is not None:
            sql += " AND a.node_id = %s"
            params += (node_id,)
        sql += " ORDER BY a.started_at, n.position, a.attempt"
        return [
            AttemptRow(
                run_id=r["run_id"],
                node_id=r["node_id"],
                attempt=r["attempt"],
                status=r["status"],
                started_at=_utc(r["started_at"]),
                ended_at=_utc(r["ended_at"]),
                duration=r["duration"],
                exit_code=r["exit_code"],
                stdout=r["stdout"],
                stderr=r["stderr"],
                result=r["result"],
                error=r["error"],
            )
            for r in self._read(sql, params)
        ]

    def mark_interrupted(self, run_id: int) -> int:
        now = to_timestamp(None)
        with self._write() as cur:
            self._lock_run(cur, run_id)
            return self._interrupt_attempts(cur, run_id, now)

    def _interrupt_attempts(self, cur: Any, run_id: int, now: str) -> int:
        cur.execute(
            "SELECT node_id, attempt FROM attempts WHERE run_id = %s AND status = 'RUNNING'"
            " ORDER BY started_at, attempt",
            (run_id,),
        )
        rows = cur.fetchall()
        for row in rows:
            cur.execute(
                "UPDATE attempts SET status = 'INTERRUPTED', ended_at = %s, error = %s"
                " WHERE run_id = %s AND node_id = %s AND attempt = %s",
                (_ts(now), INTERRUPTED_ERROR, run_id, row["node_id"], row["attempt"]),
            )
            self._append_event(
                cur,
                run_id,
                "attempt_interrupted",
                node_id=row["node_id"],
                attempt=row["attempt"],
                at=now,
                payload={"error": INTERRUPTED_ERROR},
                locked=True,
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
        with self._write() as cur:
            self._require_node(cur, run_id, node_id)
            cur.execute(
                "INSERT INTO decisions (run_id, node_id, decision, actor, comment, decided_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (run_id, node_id, name_of(decision), actor, comment, _ts(decided_at)),
            )
            return cur.fetchone()["id"]

    def decisions(self, run_id: int) -> list[DecisionRow]:
        self._require_run(run_id)
        rows = self._read("SELECT * FROM decisions WHERE run_id = %s ORDER BY decided_at, id", (run_id,))
        return [
            DecisionRow(
                id=r["id"],
                run_id=r["run_id"],
                node_id=r["node_id"],
                decision=r["decision"],
                actor=r["actor"],
                comment=r["comment"],
                decided_at=_utc(r["decided_at"]),
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
        with self._write() as cur:
            return self._append_event(
                cur, run_id, kind, node_id=node_id, attempt=attempt, payload=payload, at=to_timestamp(at)
            )

    def _append_event(
        self,
        cur: Any,
        run_id: int,
        kind: str,
        *,
        at: str,
        node_id: str | None = None,
        attempt: int | None = None,
        payload: Any = None,
        locked: bool = False,
    ) -> int:
        """Append under the run's row lock (taken here unless the caller holds it already)."""
        if locked:
            cur.execute("SELECT event_count, event_head FROM runs WHERE id = %s", (run_id,))
            head = cur.fetchone()
        else:
            cur.execute("SELECT event_count, event_head FROM runs WHERE id = %s FOR UPDATE", (run_id,))
            head = cur.fetchone()
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
        cur.execute(
            "INSERT INTO events (run_id, seq, at, kind, node_id, attempt, payload, prev_hash, hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (run_id, seq, at, kind, node_id, attempt, payload_text, head["event_head"], digest),
        )
        cur.execute("UPDATE runs SET event_count = %s, event_head = %s WHERE id = %s", (seq, digest, run_id))
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
                payload=_json(r["payload"]),
                prev_hash=r["prev_hash"],
                hash=r["hash"],
            )
            for r in self._read("SELECT * FROM events WHERE run_id = %s ORDER BY seq, id", (run_id,))
        ]

    def verify_events(self, run_id: int) -> list[str]:
        head = self._read_one("SELECT event_count, event_head FROM runs WHERE id = %s", (run_id,))
        if head is None:
            raise self._missing_run(run_id)
        rows = self._read("SELECT * FROM events WHERE run_id = %s ORDER BY seq, id", (run_id,))
        return hashing.verify_chain(run_id, rows, head["event_count"], head["event_head"])

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
        new = name_of(status).upper()
        if new not in RUN_STATUSES:
            raise StoreError(f"invalid run status {name_of(status)!r}; valid: {', '.join(RUN_STATUSES)}")
        now = to_timestamp(None)
        with self._write() as cur:
            row = self._lock_run(cur, run_id, "status, ended_at")
            old = row["status"]
            problem = manual_status_problem(run_id, old, new, force)
            if problem:
                raise StoreError(problem)
            if old != new:
                if old == "RUNNING":
                    self._interrupt_attempts(cur, run_id, now)
                cur.execute(
                    "UPDATE runs SET status = %s, status_reason = %s, ended_at = %s WHERE id = %s",
                    (new, reason or f"set manually from {old} to {new}", row["ended_at"] or _ts(now), run_id),
                )
                self._append_event(
                    cur,
                    run_id,
                    "status_set_manually",
                    at=now,
                    payload={"from": old, "to": new, "forced": force, "actor": actor, "reason": reason},
                    locked=True,
                )
        return self.get_run(run_id)

    # ---- statistics -------------------------------------------------------------------------------

    def stats(self, workflow: str | None = None) -> dict[str, Any]:
        where, params = ("WHERE workflow = %s", (workflow,)) if workflow is not None else ("", ())
        by_status = {s: 0 for s in RUN_STATUSES}
        for r in self._read(f"SELECT status, COUNT(*) AS n FROM runs {where} GROUP BY status", params):
            by_status[r["status"]] = r["n"]
        total = sum(by_status.values())
        finished = by_status["OK"] + by_status["NOK"] + by_status["ABORTED"]
        per_workflow = {
            r["workflow"]: {"runs": r["n"], "ok": r["ok"], "last_started_at": to_timestamp(r["last"])}
            for r in self._read(
                "SELECT workflow, COUNT(*) AS n, COUNT(*) FILTER (WHERE status = 'OK') AS ok,"
                f" MAX(started_at) AS last FROM runs {where} GROUP BY workflow ORDER BY workflow",
                params,
            )
        }
        durations = self._read_one(
            "SELECT AVG(EXTRACT(EPOCH FROM ended_at - started_at))::float8 AS mean"
            f" FROM runs {where} {'AND' if where else 'WHERE'} ended_at IS NOT NULL",
            params,
        )
        node_rows = self._read(
            "SELECT a.node_id, COUNT(*) AS n, AVG(a.duration) AS mean,"
            " COUNT(*) FILTER (WHERE a.status = 'NOK') AS nok"
            " FROM attempts a JOIN runs r ON r.id = a.run_id"
            f" WHERE a.status IN ('OK', 'NOK') {'AND r.workflow = %s' if workflow is not None else ''}"
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

    # ---- copying between stores -------------------------------------------------------------------

    def dump_run(self, run_id: int) -> dict[str, Any]:
        """Every row of the run, backend-neutral: timestamps as the ISO text SQLite stores, JSON parsed."""
        run = self._read_one("SELECT * FROM runs WHERE id = %s", (run_id,))
        if run is None:
            raise self._missing_run(run_id)
        queries = {
            "node_states": "SELECT * FROM node_states WHERE run_id = %s ORDER BY position",
            "attempts": "SELECT * FROM attempts WHERE run_id = %s ORDER BY node_id, attempt",
            "decisions": "SELECT * FROM decisions WHERE run_id = %s ORDER BY id",
            "events": "SELECT * FROM events WHERE run_id = %s ORDER BY seq",
        }
        dump: dict[str, Any] = {"run": _neutral(run, "runs")}
        for table, sql in queries.items():
            dump[table] = [_neutral(r, table) for r in self._read(sql, (run_id,))]
        return dump

    def load_run(self, dump: dict[str, Any]) -> None:
        with self._write() as cur:
            for table in COPY_TABLES:
                rows = [dump["run"]] if table == "runs" else dump[table]
                if not rows:
                    continue
                columns = list(rows[0])
                marks = ", ".join("%s::jsonb" if c in JSON_COLUMNS.get(table, ()) else "%s" for c in columns)
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                cur.executemany(sql, [tuple(_stored(r, table)[c] for c in columns) for r in rows])
            run = dump["run"]
            cur.execute(
                "INSERT INTO workflow_counters AS c (workflow, last_number) VALUES (%s, %s)"
                " ON CONFLICT (workflow) DO UPDATE SET last_number = GREATEST(c.last_number, EXCLUDED.last_number)",
                (run["workflow"], run["number"]),
            )
            # rows came with their ids: move the id sequences past the largest one
            for table in ("runs", "decisions", "events"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" GREATEST((SELECT MAX(id) FROM {table}), 1), (SELECT MAX(id) FROM {table}) IS NOT NULL)"
                )


def _json(value: Any) -> Any:
    import json

    return None if value is None else json.loads(value)


def _neutral(row: dict[str, Any], table: str) -> dict[str, Any]:
    row = dict(row)
    for column in TIME_COLUMNS[table]:
        if row[column] is not None:
            row[column] = to_timestamp(row[column])
    return row


def _stored(row: dict[str, Any], table: str) -> dict[str, Any]:
    row = dict(row)
    for column in TIME_COLUMNS[table]:
        if row.get(column) is not None:
            row[column] = _ts(row[column])
    for column in JSON_COLUMNS.get(table, ()):
        if row.get(column) is not None:
            row[column] = to_json(row[column])
    if table == "node_states":
        row["failed"] = bool(row["failed"])
    return row


def _migrate(conn: Any, shown: str) -> int:
    """Apply the PostgreSQL migrations not applied yet, under an advisory lock; returns how many."""
    from playbook_nb.store.migrate import latest_version

    migrations = load_pg_migrations()
    if len(migrations) != latest_version():
        raise RuntimeError("PostgreSQL and SQLite migrations must be numbered alike")
    applied = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        if current > len(migrations):
            raise StoreError(
                f"run index {shown} has schema version {current}, newer than this playbook-nb "
                f"knows ({len(migrations)}); upgrade playbook-nb"
            )
        for version, name, sql in migrations:
            if version <= current:
                continue
            with conn.transaction():
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied += 1
    return applied


def _run(row: dict[str, Any]) -> Run:
    return Run(
        id=row["id"],
        workflow=row["workflow"],
        number=row["number"],
        title=row["title"],
        status=row["status"],
        status_reason=row["status_reason"],
        started_at=_utc(row["started_at"]),
        ended_at=_utc(row["ended_at"]),
        trigger=row["trigger"],
        actor=row["actor"],
        host=row["host"],
        mode=row["mode"],
        variables=row["variables"],
        params=row["params"],
        runbook_text=row["runbook_text"],
        runbook_sha256=row["runbook_sha256"],
        runbook_version=row["runbook_version"],
        notebook_path=row["notebook_path"],
        artifact_dir=row["artifact_dir"],
        counts=row["counts"],
        snapshot=row["snapshot"],
        event_count=row["event_count"],
        event_head=row["event_head"],
    )
