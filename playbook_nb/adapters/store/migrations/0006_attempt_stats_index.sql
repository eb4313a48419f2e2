-- 0006: `info` over 100,000 runs (issue 18.4). The per-node statistics (attempts, failed attempts,
-- mean duration by node) read only node_id, status and duration: an index holding the three answers them
-- without reading the attempts' rows (their stdout and stderr). It replaces attempts_node_status, its prefix.

CREATE INDEX attempts_stats ON attempts (node_id, status, duration);
DROP INDEX attempts_node_status;
