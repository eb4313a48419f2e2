"""The run record: a SQLite index (WAL, numbered migrations tracked by `PRAGMA user_version`) plus a directory
per run for the executed notebook and large outputs.

    with Store.open(resolve_db_path(cli_value, config)) as store:
        run = store.create_run(workflow=..., node_ids=[...], ...)
        store.start_attempt(run.id, "build", 1, started_at)
        ...

`Store` is the backend-neutral interface (`base.py`); `SQLiteStore` (`sqlite.py`) the SQLite backend. Every
method commits before returning. Errors a user can cause (missing run, unwritable directory, read-only or full
disk, refused status change) raise `StoreError` with one line naming the run or the path.
"""

from playbook_nb.adapters.store.base import Store
from playbook_nb.adapters.store.location import default_db_path, resolve_db_path
from playbook_nb.adapters.store.models import (
    ATTEMPT_STATUSES,
    FINAL_RUN_STATUSES,
    INTERRUPTED_ERROR,
    MODES,
    NODE_STATES,
    RUN_STATUSES,
    TRIGGERS,
    AttemptRow,
    DecisionRow,
    EventRow,
    NodeStateRow,
    RevisionRow,
    Run,
)
from playbook_nb.adapters.store.sql_common import manual_status_problem
from playbook_nb.adapters.store.sqlite import SQLiteStore

__all__ = [
    "ATTEMPT_STATUSES",
    "FINAL_RUN_STATUSES",
    "INTERRUPTED_ERROR",
    "MODES",
    "NODE_STATES",
    "RUN_STATUSES",
    "TRIGGERS",
    "AttemptRow",
    "RevisionRow",
    "DecisionRow",
    "EventRow",
    "NodeStateRow",
    "Run",
    "SQLiteStore",
    "Store",
    "default_db_path",
    "manual_status_problem",
    "resolve_db_path",
]
