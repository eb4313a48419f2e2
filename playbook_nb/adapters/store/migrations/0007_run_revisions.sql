-- 0007: every runbook text a run ran under (issue 14.10). `resume --allow-changed` with an edited runbook adds a
-- revision: the run's text (run_texts) and sha256 (runs) become the new one, run_revisions keeps each text with
-- its sha256, when and by whom (revision 1, the text the run started with, is copied there at the first
-- change), and each attempt records the revision it ran under.

CREATE TABLE run_revisions (
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    revision       INTEGER NOT NULL,               -- 1: the text the run started with
    runbook_sha256 TEXT NOT NULL,
    runbook_text   TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    actor          TEXT,
    PRIMARY KEY (run_id, revision)
);

ALTER TABLE runs ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;       -- the revision now in force
ALTER TABLE attempts ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;   -- the revision the attempt ran under
