-- 0002 (PostgreSQL): per-host rows of fleet steps, same columns and meaning as migrations/0002_host_results.sql.

CREATE TABLE host_results (
    run_id     bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id    text NOT NULL,
    attempt    integer NOT NULL CHECK (attempt >= 1),
    host       text NOT NULL,
    position   integer NOT NULL,
    state      text NOT NULL DEFAULT 'PENDING'
               CHECK (state IN ('PENDING', 'RUNNING', 'OK', 'NOK', 'SKIPPED', 'ADDED', 'REMOVED')),
    membership text CHECK (membership IN ('ADDED', 'REMOVED')),
    exit_code  integer,
    stdout     text,
    stderr     text,
    error      text,
    started_at timestamptz,
    ended_at   timestamptz,
    duration   double precision,
    PRIMARY KEY (run_id, node_id, attempt, host),
    FOREIGN KEY (run_id, node_id, attempt) REFERENCES attempts (run_id, node_id, attempt) ON DELETE CASCADE
);

CREATE INDEX host_results_host ON host_results (host, state);
