-- 0008: a command's watchdog token with its attempt (issue 18.2); see the SQLite migration of the same number.

ALTER TABLE attempts ADD COLUMN process_token text;
