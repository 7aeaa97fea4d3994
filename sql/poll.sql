--
-- Polling, backfill, reconciliation: settings, bad input, privileges.
-- (The behaviour against the fake HubSpot is in test/t/030-032.)
--
CREATE EXTENSION IF NOT EXISTS hubsync;

-- settings refuse nonsense with a clear message; units work
ALTER SYSTEM SET hubsync.poll_index_lag = '-1';
ALTER SYSTEM SET hubsync.poll_trailing_interval = '0';
ALTER SYSTEM SET hubsync.poll_archived_interval = '2 weeks';
ALTER SYSTEM SET hubsync.poll_association_interval = 'often';
ALTER SYSTEM SET hubsync.poll_index_lag = '2min';
ALTER SYSTEM SET hubsync.poll_archived_interval = '1d';
ALTER SYSTEM RESET hubsync.poll_index_lag;
ALTER SYSTEM RESET hubsync.poll_archived_interval;

-- backfill: unknown type refused, nothing started
SELECT hubsync.backfill('nosuch');
SELECT count(*) FROM hubsync.backfills;

-- a backfill starts once; progress is readable at once
SELECT * FROM hubsync.backfill('deals');
SELECT * FROM hubsync.backfill('deals');
SELECT object_type, state, done, rate, eta FROM hubsync.backfill_progress;
SELECT object_type, backfill, backfill_done FROM hubsync.status WHERE object_type IN ('deals', 'contacts') ORDER BY 1;
DELETE FROM hubsync.backfills;

-- reconcile: unknown type and missing credentials are clear errors
SELECT * FROM hubsync.reconcile('nosuch');
SELECT * FROM hubsync.reconcile('contacts');
SELECT count(*) FROM hubsync.reconcile_runs;

-- not for every role
CREATE ROLE poll_app;
SET ROLE poll_app;
SELECT hubsync.backfill();
SELECT * FROM hubsync.reconcile();
SELECT hubsync._ingest_records('contacts', '[]', 'poll');
SELECT count(*) FROM hubsync.poll_state;
RESET ROLE;
DROP ROLE poll_app;
