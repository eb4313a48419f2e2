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

The SQL both backends share (reads, row mapping, the event chain, stats, manual status rules) is in
`sql_common.SQLStore`; this module holds PostgreSQL's own: connecting, migrations, transactions, run
numbering, locking, the column types (timestamptz, jsonb) and `load_run`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from playbook_nb.adapters.store.location import DB_URL_ENV, default_artifacts_dir, postgres_artifacts_key
from playbook_nb.adapters.store.models import GateWaitRow, When, to_json, to_timestamp
from playbook_nb.adapters.store.sql_common import COPY_TABLES, JSON_COLUMNS, SQLStore, dumped_run_row
from playbook_nb.domain.errors import StorageFault, StoreError

DEFAULT_TIMEOUT = 30.0
GATE_CHANNEL = "playbook_nb_gates"  # NOTIFY payload: the id of the gate wait that moved
LISTEN_RECHECK = 5.0  # seconds between reads of the wait row while no notification comes
MIGRATION_LOCK = 0x706C6E62  # "plnb": the advisory lock key held while migrating
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

TIME_COLUMNS = {
    "runs": ("started_at", "ended_at", "owner_seen_at", "lease_expires"),
    "node_states": ("updated_at",),
    "attempts": ("started_at", "ended_at"),
    "host_results": ("started_at", "ended_at"),
    "decisions": ("decided_at",),
    "events": (),  # events.at is text: hashed as stored
}


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
    for entry in resources.files("playbook_nb.adapters.store").joinpath("pg_migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise RuntimeError(f"PostgreSQL migration {name}: expected number {expected:04d}")
    return found


def _ts(value: When) -> datetime:
    """A moment for a timestamptz column, with the same rounding as the SQLite text (microseconds)."""
    return datetime.fromisoformat(to_timestamp(value))


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


class PostgresStore(SQLStore):
    """The run record in a PostgreSQL database, plus an artifact store (local directory or fsspec URL)."""

    backend = "postgresql"
    _JSON = "?::jsonb"
    _COUNT_IF = "COUNT(*) FILTER (WHERE {})"
    _RUN_SECONDS = "EXTRACT(EPOCH FROM ended_at - started_at)::float8"
    _PARAM = "(params ->> '{}')"  # one key of the params JSON (NULL when absent)
    _FOR_UPDATE = " FOR UPDATE"

    def __init__(self, url: str, conn: Any, artifacts_root: str | os.PathLike[str]):
        super().__init__(redact(url), conn, artifacts_root)  # `path` is the URL: there is no file
        self._url = url
        self._listener: Any = None  # the LISTEN connection, opened by the first wait at a gate
        self._artifacts_arg = artifacts_root

    def reopen(self) -> PostgresStore:
        return PostgresStore.open(self._url, artifacts_root=self._artifacts_arg)

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
            return cls(url, conn, artifacts_root or default_artifacts_dir(postgres_artifacts_key(shown)))
        except StoreError:
            conn.close()
            raise

    @property
    def schema_version(self) -> int:
        return self._read_one("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")["v"]

    # ---- transactions -----------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        """The shared SQL's `?` placeholders as psycopg's `%s`."""
        return sql.replace("?", "%s")

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
            # The transaction is rolled back whole. The server or the connection failing (disk full, read
            # only, a lock held past lock_timeout, no permission, the connection lost) is a storage fault.
            fault = isinstance(err, psycopg.OperationalError | psycopg.errors.InsufficientPrivilege) or (
                getattr(err, "sqlstate", "") or ""
            ).startswith(("53", "55", "57", "58", "08", "25006"))
            cls = StorageFault if fault else StoreError
            raise cls(f"cannot write the run index {self.path}: {_one_line(err)}") from None

    def _read(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        psycopg = _psycopg()
        from psycopg.rows import dict_row

        self._flush_before_read()
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(self._sql(sql), params)
                return cur.fetchall()
        except psycopg.Error as err:
            raise StoreError(f"cannot read the run index {self.path}: {_one_line(err)}") from None

    def _next_number(self, cur: Any, workflow: str) -> int:
        """The workflow's counter row, bumped atomically and row-locked until the transaction ends."""
        cur.execute(
            "INSERT INTO workflow_counters AS c (workflow, last_number) VALUES (%s, 1)"
            " ON CONFLICT (workflow) DO UPDATE SET last_number = c.last_number + 1"
            " RETURNING last_number",
            (workflow,),
        )
        return cur.fetchone()["last_number"]

    def _insert(self, cur: Any, sql: str, params: tuple) -> int:
        cur.execute(self._sql(sql) + " RETURNING id", params)
        return cur.fetchone()["id"]

    def _select_locked(self, cur: Any, run_id: int, columns: str) -> dict[str, Any]:
        cur.execute(f"SELECT {columns} FROM runs WHERE id = %s FOR UPDATE", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise self._missing_run(run_id)
        return row

    # ---- gates decided from anywhere: NOTIFY on a decision, LISTEN while waiting -------------------

    def _notify_gate(self, cur: Any, wait_id: int) -> None:
        cur.execute("SELECT pg_notify(%s, %s)", (GATE_CHANNEL, str(wait_id)))

    def wait_for_gate_decision(self, wait_id: int, timeout: float) -> GateWaitRow:
        """LISTEN on a connection of its own while the wait is 'waiting': a decision's NOTIFY wakes it at once;
        without one it reads the row again every few seconds (a missed notification costs a few seconds)."""
        import time

        psycopg = _psycopg()
        deadline = time.monotonic() + timeout
        try:
            if self._listener is None:
                self._listener = psycopg.connect(
                    _with_password_from_env(self._url), autocommit=True, application_name="playbook-nb gate"
                )
                self._listener.execute(f"LISTEN {GATE_CHANNEL}")
            while True:
                row = self.gate_wait(wait_id)
                left = deadline - time.monotonic()
                if row.status != "waiting" or left <= 0:
                    return row
                for _note in self._listener.notifies(timeout=min(left, LISTEN_RECHECK), stop_after=1):
                    pass  # any gate's notification: read the row again
        except psycopg.Error as err:
            raise StoreError(f"cannot wait for a gate decision in {self.path}: {_one_line(err)}") from None

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
            self._listener = None
        super().close()

    # time columns are timestamptz (read back as aware datetimes), JSON columns jsonb (read back parsed)
    def _db_time(self, text: str) -> datetime:
        return datetime.fromisoformat(text)

    def _row_time(self, value: datetime | None) -> datetime | None:
        return _utc(value)

    def _row_json(self, value: Any) -> Any:
        return value

    def _time_text(self, value: datetime | None) -> str | None:
        return to_timestamp(value)

    def _neutral(self, row: dict[str, Any], table: str) -> dict[str, Any]:
        for column in TIME_COLUMNS[table]:
            if row[column] is not None:
                row[column] = to_timestamp(row[column])
        return row

    # ---- copying between stores -------------------------------------------------------------------

    def load_run(self, dump: dict[str, Any]) -> None:
        with self._write() as cur:
            run = dump["run"]
            for table in COPY_TABLES:
                rows = [dumped_run_row(run)] if table == "runs" else dump[table]
                if rows:
                    columns = list(rows[0])
                    marks = ", ".join(
                        "%s::jsonb" if c in JSON_COLUMNS.get(table, ()) else "%s" for c in columns
                    )
                    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                    cur.executemany(sql, [tuple(_stored(r, table)[c] for c in columns) for r in rows])
                if table == "runs":
                    self._load_run_parts(cur, run)
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
    from playbook_nb.adapters.store.migrate import latest_version

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
