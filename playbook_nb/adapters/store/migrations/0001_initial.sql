-- 0001: the run record. Timestamps are ISO-8601 UTC text; JSON columns hold canonical JSON text.

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,           -- the global run id shown on the CLI
    workflow        TEXT NOT NULL,                 -- the runbook's raw (unrendered) title
    number          INTEGER NOT NULL,              -- run number within the workflow: 1, 2, 3 ...
    title           TEXT NOT NULL,                 -- the rendered title
    status          TEXT NOT NULL DEFAULT 'RUNNING'
                    CHECK (status IN ('RUNNING', 'OK', 'NOK', 'ABORTED')),
    status_reason   TEXT,
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    trigger         TEXT NOT NULL,                 -- terminal, notebook, papermill, widget, resume
    actor           TEXT,
    host            TEXT,
    mode            TEXT NOT NULL,                 -- interactive, headless
    variables       TEXT NOT NULL DEFAULT '{}',    -- JSON, secrets already masked by the caller
    params          TEXT NOT NULL DEFAULT '{}',    -- JSON
    runbook_text    TEXT NOT NULL,
    runbook_sha256  TEXT NOT NULL,
    runbook_version TEXT,
    notebook_path   TEXT,
    artifact_dir    TEXT,
    counts          TEXT NOT NULL DEFAULT '{}',    -- JSON {node state: number of nodes}, kept in step with node_states
    snapshot        TEXT,                          -- JSON engine snapshot, for resume
    event_count     INTEGER NOT NULL DEFAULT 0,    -- head of the event hash chain: number of events ...
    event_head      TEXT NOT NULL DEFAULT '',      -- ... and the hash of the last one
    UNIQUE (workflow, number)
);

CREATE INDEX runs_workflow_started ON runs (workflow, started_at);
CREATE INDEX runs_status_started ON runs (status, started_at);
CREATE INDEX runs_started ON runs (started_at);

CREATE TABLE node_states (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id    TEXT NOT NULL,
    position   INTEGER NOT NULL,                   -- order of the node ids given at run creation
    state      TEXT NOT NULL DEFAULT 'PENDING'
               CHECK (state IN ('PENDING', 'RUNNING', 'WAITING', 'OK', 'NOK', 'SKIPPED')),
    reason     TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0 CHECK (failed IN (0, 1)),  -- its last attempt failed
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, node_id)
);

CREATE TABLE attempts (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id    TEXT NOT NULL,
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    status     TEXT NOT NULL DEFAULT 'RUNNING'
               CHECK (status IN ('RUNNING', 'OK', 'NOK', 'INTERRUPTED')),
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    duration   REAL,                               -- seconds
    exit_code  INTEGER,
    stdout     TEXT,
    stderr     TEXT,
    result     TEXT,                               -- JSON
    error      TEXT,
    PRIMARY KEY (run_id, node_id, attempt),
    FOREIGN KEY (run_id, node_id) REFERENCES node_states (run_id, node_id) ON DELETE CASCADE
);

CREATE INDEX attempts_node_status ON attempts (node_id, status);

CREATE TABLE decisions (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id    TEXT NOT NULL,
    decision   TEXT NOT NULL,
    actor      TEXT,
    comment    TEXT,
    decided_at TEXT NOT NULL,
    FOREIGN KEY (run_id, node_id) REFERENCES node_states (run_id, node_id) ON DELETE CASCADE
);

CREATE INDEX decisions_run ON decisions (run_id, node_id);

-- Append-only; each row carries the hash of the one before it (see playbook_nb.store.hashing).
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,                    -- 1, 2, 3 ... within the run
    at        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    node_id   TEXT,
    attempt   INTEGER,
    payload   TEXT NOT NULL DEFAULT '{}',          -- canonical JSON, hashed as stored
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    UNIQUE (run_id, seq)
);

-- A guard against mistakes in code, not against someone with a SQLite shell: verify_events() is the check.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

-- Deleting a whole run (runs row first, events by cascade) is allowed; deleting single events is not.
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id)
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
