-- 0004: gates decided from anywhere (issue 16). A run that waits at a gate (`--gate-wait`, the `gate_wait`
-- notebook parameter) opens a `gate_waits` row; a decision from another process (`playbook-nb approve`, the
-- REST API) is a compare-and-set on that row: it moves from 'waiting' to 'decided' only while the run is
-- RUNNING, the node WAITING and the deadline not passed. The waiting run then applies it ('applied'), or its
-- deadline passes first ('expired'). A decision records where it came from (`decisions.source`).

ALTER TABLE decisions ADD COLUMN source TEXT;  -- server, cli, notebook, parameter, policy, replay

CREATE TABLE gate_waits (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id    TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'waiting'
               CHECK (status IN ('waiting', 'decided', 'applied', 'expired')),
    started_at TEXT NOT NULL,
    deadline   TEXT NOT NULL,                      -- no decision is taken after it
    decision   TEXT CHECK (decision IN ('approve', 'reject')),
    actor      TEXT,
    source     TEXT,
    comment    TEXT,
    decided_at TEXT,
    FOREIGN KEY (run_id, node_id) REFERENCES node_states (run_id, node_id) ON DELETE CASCADE
);

-- at most one open wait per gate: two deciders racing, only one moves it
CREATE UNIQUE INDEX gate_waits_open ON gate_waits (run_id, node_id) WHERE status IN ('waiting', 'decided');
