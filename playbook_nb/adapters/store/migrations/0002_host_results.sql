-- 0002: per-host rows of fleet steps (issue 21). One row per host and attempt of a node that runs on many
-- hosts (`targets`, or an Ansible playbook). A later attempt holds only the hosts it ran (or marked ADDED or
-- REMOVED); a host's current state is its row of the highest attempt.

CREATE TABLE host_results (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id    TEXT NOT NULL,
    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
    host       TEXT NOT NULL,                      -- the target as written ([user@]host[:port])
    position   INTEGER NOT NULL,                   -- order in the node's inventory
    state      TEXT NOT NULL DEFAULT 'PENDING'
               CHECK (state IN ('PENDING', 'RUNNING', 'OK', 'NOK', 'SKIPPED', 'ADDED', 'REMOVED')),
    membership TEXT CHECK (membership IN ('ADDED', 'REMOVED')),  -- joined or left the inventory mid-run
    exit_code  INTEGER,
    stdout     TEXT,                               -- bounded (head and tail), secrets masked
    stderr     TEXT,
    error      TEXT,
    started_at TEXT,
    ended_at   TEXT,
    duration   REAL,                               -- seconds
    PRIMARY KEY (run_id, node_id, attempt, host),
    FOREIGN KEY (run_id, node_id, attempt) REFERENCES attempts (run_id, node_id, attempt) ON DELETE CASCADE
);

CREATE INDEX host_results_host ON host_results (host, state);
