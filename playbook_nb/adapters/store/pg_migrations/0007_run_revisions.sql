-- 0007 (PostgreSQL): a run's runbook revisions, same columns and meaning as migrations/0007_run_revisions.sql.

CREATE TABLE run_revisions (
    run_id         bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    revision       integer NOT NULL,
    runbook_sha256 text NOT NULL,
    runbook_text   text NOT NULL,
    recorded_at    timestamptz NOT NULL,
    actor          text,
    PRIMARY KEY (run_id, revision)
);

ALTER TABLE runs ADD COLUMN revision integer NOT NULL DEFAULT 1;
ALTER TABLE attempts ADD COLUMN revision integer NOT NULL DEFAULT 1;
