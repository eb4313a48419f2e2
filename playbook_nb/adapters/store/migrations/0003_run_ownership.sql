-- 0003: run ownership and compare-and-set (issues 13 and 24). At most one session drives a run: the owner
-- (host, process id and its start time, the kernel or process it is, the actor) holds a lease it renews
-- while it lives. `version` moves with every state change the owner writes, a take-over and set-status:
-- a write made against an older version (a stale view, a second kernel) is refused.
-- Each attempt records where its command runs (host, process group, the group leader's start time), so
-- whoever recovers an orphaned run can make sure that group is gone; a node has at most one live attempt.

ALTER TABLE runs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN owner_token TEXT;          -- the owning session (a random id per session)
ALTER TABLE runs ADD COLUMN owner_host TEXT;
ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
ALTER TABLE runs ADD COLUMN owner_pid_start INTEGER;   -- the owner process's start time (clock ticks since boot)
ALTER TABLE runs ADD COLUMN owner_kind TEXT;           -- "kernel <id>", "playbook-nb run", "papermill" ...
ALTER TABLE runs ADD COLUMN owner_actor TEXT;
ALTER TABLE runs ADD COLUMN owner_seen_at TEXT;        -- the owner's last renewal
ALTER TABLE runs ADD COLUMN lease_expires TEXT;

ALTER TABLE attempts ADD COLUMN host TEXT;
ALTER TABLE attempts ADD COLUMN pgid INTEGER;
ALTER TABLE attempts ADD COLUMN pgid_start INTEGER;    -- start time of the group's leader (clock ticks since boot)

-- Older records may hold two RUNNING attempts of a node (a resume while the first copy still ran): all but
-- the newest become INTERRUPTED before the index that forbids it is built.
UPDATE attempts SET status = 'INTERRUPTED', error = COALESCE(error, 'interrupted: a later attempt started')
WHERE status = 'RUNNING' AND EXISTS (
    SELECT 1 FROM attempts later
    WHERE later.run_id = attempts.run_id AND later.node_id = attempts.node_id
      AND later.status = 'RUNNING' AND later.attempt > attempts.attempt
);

CREATE UNIQUE INDEX attempts_one_live ON attempts (run_id, node_id) WHERE status = 'RUNNING';
