-- 0005: a run's large, cold columns leave the `runs` row (issue 18.4). Every engine transition updates the
-- run row (event head, counts, version, snapshot); SQLite rewrites a whole row on each update, and the
-- row held the runbook text and the whole engine snapshot, so each write of a run cost its size: a
-- 1000-node run grew O(n^2). Now the runbook text is written once into run_texts, and the snapshot is kept
-- per node in node_snapshots (a flush writes the nodes that changed); runs.snapshot keeps the run's own
-- fields with an empty "nodes" object standing for the rows.

CREATE TABLE run_texts (
    run_id       INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    runbook_text TEXT NOT NULL
);
INSERT INTO run_texts (run_id, runbook_text) SELECT id, runbook_text FROM runs;
ALTER TABLE runs DROP COLUMN runbook_text;

CREATE TABLE node_snapshots (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    data    TEXT NOT NULL,                          -- JSON: the engine snapshot entry of one node
    PRIMARY KEY (run_id, node_id)
);
INSERT INTO node_snapshots (run_id, node_id, data)
SELECT runs.id, n.key, n.value FROM runs, json_each(runs.snapshot, '$.nodes') AS n
WHERE runs.snapshot IS NOT NULL AND json_type(runs.snapshot, '$.nodes') = 'object';
UPDATE runs SET snapshot = json_set(snapshot, '$.nodes', json('{}'))
WHERE snapshot IS NOT NULL AND json_type(snapshot, '$.nodes') = 'object';
