-- 0005 (PostgreSQL): as migrations/0005_run_texts_node_snapshots.sql: the runbook text moves to run_texts,
-- the engine snapshot's nodes to node_snapshots (one row a node); runs.snapshot keeps the run's own fields.

CREATE TABLE run_texts (
    run_id       bigint PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    runbook_text text NOT NULL
);
INSERT INTO run_texts (run_id, runbook_text) SELECT id, runbook_text FROM runs;
ALTER TABLE runs DROP COLUMN runbook_text;

CREATE TABLE node_snapshots (
    run_id  bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id text NOT NULL,
    data    jsonb NOT NULL,
    PRIMARY KEY (run_id, node_id)
);
INSERT INTO node_snapshots (run_id, node_id, data)
SELECT r.id, n.key, n.value FROM runs r, jsonb_each(r.snapshot -> 'nodes') AS n
WHERE jsonb_typeof(r.snapshot -> 'nodes') = 'object';
UPDATE runs SET snapshot = jsonb_set(snapshot, '{nodes}', '{}'::jsonb)
WHERE jsonb_typeof(snapshot -> 'nodes') = 'object';
