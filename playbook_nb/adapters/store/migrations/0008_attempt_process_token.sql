-- 0008: a command's watchdog token with its attempt (issue 18.2). Written with the attempt's start, before the
-- command runs: a recovery finds the command's processes by the token in their environment (as the driver's
-- watchdog does), so the process group is recorded only for a command still running after 50 ms, one
-- transaction a node fewer for the short ones. `host` is written then too, for a command's attempt.

ALTER TABLE attempts ADD COLUMN process_token TEXT;
