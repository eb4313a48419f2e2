-- 0003 (PostgreSQL): run ownership and compare-and-set, as migrations/0003_run_ownership.sql.

ALTER TABLE runs ADD COLUMN version integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN owner_token text;
ALTER TABLE runs ADD COLUMN owner_host text;
ALTER TABLE runs ADD COLUMN owner_pid integer;
ALTER TABLE runs ADD COLUMN owner_pid_start bigint;
ALTER TABLE runs ADD COLUMN owner_kind text;
ALTER TABLE runs ADD COLUMN owner_actor text;
ALTER TABLE runs ADD COLUMN owner_seen_at timestamptz;
ALTER TABLE runs ADD COLUMN lease_expires timestamptz;

ALTER TABLE attempts ADD COLUMN host text;
ALTER TABLE attempts ADD COLUMN pgid integer;
ALTER TABLE attempts ADD COLUMN pgid_start bigint;

UPDATE attempts SET status = 'INTERRUPTED', error = COALESCE(error, 'interrupted: a later attempt started')
WHERE status = 'RUNNING' AND EXISTS (
    SELECT 1 FROM attempts later
    WHERE later.run_id = attempts.run_id AND later.node_id = attempts.node_id
      AND later.status = 'RUNNING' AND later.attempt > attempts.attempt
);

CREATE UNIQUE INDEX attempts_one_live ON attempts (run_id, node_id) WHERE status = 'RUNNING';
