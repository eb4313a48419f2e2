"""The SQLite run record: one `Store` per process (one connection), safe for several processes on one file.

Connection: WAL journal, `busy_timeout` (30 s by default), foreign keys on, autocommit mode with explicit
transactions. Every write is one `BEGIN IMMEDIATE ... COMMIT` (the write lock is taken up front, so a
read-then-insert such as allocating a run number never races and never fails with "database is locked" on
upgrade). Each method commits before it returns: a killed process loses at most the attempt in flight.
Inside `with store.batch():` the writes share one such transaction instead, committed when the block ends
(a session writes the events of one engine transition that way).

The SQL both backends share (reads, row mapping, the event chain, stats, manual status rules) is in
`sql_common.SQLStore`; this module holds what is SQLite's own: connecting, migrations, transactions, run
numbering, the writes whose locking differs, and the column types of `load_run`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from playbook_nb.adapters.store.location import default_sqlite_artifacts
from playbook_nb.adapters.store.migrate import latest_version, migrate_sqlite
from playbook_nb.adapters.store.models import (
    from_json,
    from_timestamp,
    to_json,
)
from playbook_nb.adapters.store.sql_common import COPY_TABLES, JSON_COLUMNS, SQLStore, dumped_run_row
from playbook_nb.domain.errors import StorageFault, StoreError

DEFAULT_TIMEOUT = 30.0
TIMEOUT_ENV = "PLAYBOOK_DB_BUSY_TIMEOUT"  # seconds a write waits for another writer's lock
# sqlite3 errors that are the storage failing, not a mistake: disk full, read-only, locked past the busy
# timeout, I/O errors (`sqlite3.Error.sqlite_errorname`)
FAULTS = {"SQLITE_FULL", "SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN"}


def write_error(path: Path, err: sqlite3.Error) -> StoreError:
    """The one-line error for a failed write; a StorageFault when the storage failed."""
    name = getattr(err, "sqlite_errorname", "") or ""
    fault = any(name == code or name.startswith(code + "_") for code in FAULTS)
    return (StorageFault if fault else StoreError)(f"cannot write the run index {path}: {err}")


def _file_of(location: str) -> str:
    """The file of a `sqlite:///relative` or `sqlite:////absolute` URL; a path as it is."""
    if not location.startswith("sqlite:///"):
        return location
    text = location[len("sqlite:///") :] or "."
    return "/" + text.lstrip("/") if text.startswith("/") else text


class SQLiteStore(SQLStore):
    """The run record in one SQLite file, plus a directory per run for artifacts."""

    backend = "sqlite"

    _JSON = "?"  # JSON columns are TEXT
    _COUNT_IF = "SUM({})"
    _RUN_SECONDS = "(julianday(ended_at) - julianday(started_at)) * 86400.0"
    _PARAM = "json_extract(params, '$.{}')"  # one key of the params JSON (NULL when absent)
    _FOR_UPDATE = ""  # every write transaction holds the database's write lock (BEGIN IMMEDIATE)

    # ---- opening and closing ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        artifacts_root: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SQLiteStore:
        path = Path(_file_of(os.fspath(path))).expanduser().resolve()
        if os.environ.get(TIMEOUT_ENV):
            timeout = float(os.environ[TIMEOUT_ENV])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the run index directory {path.parent}: {_reason(err)}") from None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            read_only = False
            with contextlib.suppress(OSError):
                read_only = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
            cause = "is on a read-only file system" if read_only else "is not writable"
            raise StorageFault(f"cannot write the run index {path}: directory {path.parent} {cause}")
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
            latest = latest_version()
            if version > latest:
                raise StoreError(
                    f"run index {path} has schema version {version}, newer than this playbook-nb "
                    f"knows ({latest}); upgrade playbook-nb"
                )
            if version < latest:  # at the latest version, this one PRAGMA was the whole check
                migrate_sqlite(conn)
        except sqlite3.Error as err:
            if conn is not None:
                conn.close()
            fault = write_error(path, err)
            raise type(fault)(f"cannot open the run index {path}: {err}") from None
        except StoreError:
            if conn is not None:
                conn.close()
            raise
        # each index its own artifact root: two index files in one folder never share `artifacts/<run id>/`
        root = os.fspath(artifacts_root) if artifacts_root else default_sqlite_artifacts(path)
        try:
            return cls(path, conn, root)
        except StoreError:
            conn.close()
            raise

    @property
    def schema_version(self) -> int:
        return self._read_one("PRAGMA user_version")[0]

    def reopen(self) -> SQLiteStore:
        return SQLiteStore.open(self.path, artifacts_root=self.artifacts.root)

    # ---- transactions -----------------------------------------------------------------------------

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction holding the write lock from its start; all or nothing. Inside `batch()`,
        the batch's transaction (a plain context object: a transition makes about ten writes in its batch,
        and a generator's context manager costs more than what it does there; issue 18.2)."""
        if self._in_batch:
            return _InBatch(self.conn, self.path)
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise write_error(self.path, err) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise write_error(self.path, err) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _read(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        self._flush_before_read()
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read the run index {self.path}: {err}") from None

    def _next_number(self, conn: sqlite3.Connection, workflow: str) -> int:
        """Under the IMMEDIATE write lock, so no other writer can take the same number."""
        (number,) = conn.execute(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE workflow = ?", (workflow,)
        ).fetchone()
        return number

    def _insert(self, conn: sqlite3.Connection, sql: str, params: tuple) -> int:
        row_id = conn.execute(sql, params).lastrowid
        assert row_id is not None  # an INSERT always sets it
        return row_id

    def _select_locked(self, conn: sqlite3.Connection, run_id: int, columns: str) -> sqlite3.Row:
        """The run's row; the transaction already holds the database's write lock (BEGIN IMMEDIATE)."""
        row = conn.execute(f"SELECT {columns} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._missing_run(run_id)
        return row

    # time columns hold the ISO text of `to_timestamp`, JSON columns the text of `to_json`
    def _db_time(self, text: str) -> str:
        return text

    def _row_time(self, value: str | None) -> datetime | None:
        return from_timestamp(value)

    def _row_json(self, value: str | None) -> Any:
        return from_json(value)

    def _time_text(self, value: str | None) -> str | None:
        return value

    def _neutral(self, row: dict[str, Any], table: str) -> dict[str, Any]:
        for column in JSON_COLUMNS.get(table, ()):
            row[column] = from_json(row[column])
        for column in BOOL_COLUMNS.get(table, ()):
            row[column] = bool(row[column])
        return row

    # ---- copying between stores -------------------------------------------------------------------

    def load_run(self, dump: dict[str, Any]) -> None:
        with self._write() as conn:
            run = dump["run"]
            for table in COPY_TABLES:
                rows = [dumped_run_row(run)] if table == "runs" else dump[table]
                for row in rows:
                    stored = _stored(row, table)
                    columns = ", ".join(stored)
                    marks = ", ".join("?" for _ in stored)
                    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(stored.values()))
                if table == "runs":
                    self._load_run_parts(conn, run)


class _InBatch:
    """A write inside `batch()`: the batch's connection; a SQLite error becomes the store's write error."""

    __slots__ = ("conn", "path")

    def __init__(self, conn: sqlite3.Connection, path: Any):
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, kind: Any, err: Any, traceback: Any) -> None:
        if kind is not None and issubclass(kind, sqlite3.Error):
            raise write_error(self.path, err) from None


BOOL_COLUMNS = {"node_states": ("failed",)}


def _stored(row: dict[str, Any], table: str) -> dict[str, Any]:
    row = dict(row)
    for column in JSON_COLUMNS.get(table, ()):
        row[column] = None if row[column] is None else to_json(row[column])
    for column in BOOL_COLUMNS.get(table, ()):
        row[column] = int(bool(row[column]))
    return row


def _reason(err: OSError) -> str:
    return err.strerror or str(err)
