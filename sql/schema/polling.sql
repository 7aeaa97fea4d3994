-------------------------------------------------------------------------------
-- Polling safety net, backfill, reconciliation
-------------------------------------------------------------------------------
-- Poller cursors, background imports, reconciliation runs and their drift.

CREATE TABLE hubsync.poll_state (
	object_type      text PRIMARY KEY REFERENCES hubsync.object_types ON DELETE CASCADE,
	cursor_ms        bigint,
	cursor_id        bigint,
	catching_up      boolean NOT NULL DEFAULT false,
	trail_ms         bigint,
	trail_id         bigint,
	polled_at        timestamptz,
	trailed_at       timestamptz,
	archived_at      timestamptz,
	associations_at  timestamptz,
	found            bigint NOT NULL DEFAULT 0,
	last_error       text
);
COMMENT ON TABLE hubsync.poll_state IS
  'Per object type: where the poller (search on the last-modified property) stands';
COMMENT ON COLUMN hubsync.poll_state.cursor_ms IS 'fast poll: last-modified time (HubSpot epoch ms) read up to; the next poll starts a little before it';
COMMENT ON COLUMN hubsync.poll_state.cursor_id IS 'hs_object_id reached while walking records that share cursor_ms (NULL when not walking)';
COMMENT ON COLUMN hubsync.poll_state.catching_up IS 'true while a poll stopped after its slice of pages and goes on at once';
COMMENT ON COLUMN hubsync.poll_state.trail_ms IS 'trailing sweep: start of its next window (records older than hubsync.poll_index_lag)';
COMMENT ON COLUMN hubsync.poll_state.trail_id IS 'hs_object_id reached while the trailing sweep walks records sharing trail_ms';
COMMENT ON COLUMN hubsync.poll_state.polled_at IS 'end of the last fast poll';
COMMENT ON COLUMN hubsync.poll_state.trailed_at IS 'end of the last trailing sweep';
COMMENT ON COLUMN hubsync.poll_state.archived_at IS 'end of the last sweep of archived records';
COMMENT ON COLUMN hubsync.poll_state.associations_at IS 'end of the last association sweep';
COMMENT ON COLUMN hubsync.poll_state.found IS 'records read by the poller so far';
COMMENT ON COLUMN hubsync.poll_state.last_error IS 'last HubSpot error of the poller for this type (NULL after a success)';

CREATE TABLE hubsync.backfills (
	object_type      text PRIMARY KEY REFERENCES hubsync.object_types ON DELETE CASCADE,
	state            text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
	streams          jsonb,
	done             bigint NOT NULL DEFAULT 0,
	total_estimate   bigint,
	requests         bigint NOT NULL DEFAULT 0,
	started_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at      timestamptz,
	last_error       text
);
COMMENT ON TABLE hubsync.backfills IS
  'Background imports started by hubsync.backfill(): where each stands (resumed after a restart)';
COMMENT ON COLUMN hubsync.backfills.streams IS 'list paging cursors still to read, as [{"after": cursor, "end": id or null, "hi": highest id when planned, "seq": true when paging on HubSpot''s own cursors}]; NULL until planned';
COMMENT ON COLUMN hubsync.backfills.done IS 'records imported or matched so far';
COMMENT ON COLUMN hubsync.backfills.total_estimate IS 'records HubSpot reported at the start (search total)';
COMMENT ON COLUMN hubsync.backfills.requests IS 'HubSpot list requests made';

CREATE TABLE hubsync.reconcile_runs (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at      timestamptz,
	trigger          text NOT NULL CHECK (trigger IN ('manual', 'daily', 'background')),
	object_type      text,
	repair           boolean NOT NULL,
	state            text NOT NULL DEFAULT 'running' CHECK (state IN ('queued', 'running', 'done', 'failed', 'abandoned')),
	records_local    bigint NOT NULL DEFAULT 0,
	records_remote   bigint NOT NULL DEFAULT 0,
	missing_local    bigint NOT NULL DEFAULT 0,
	missing_remote   bigint NOT NULL DEFAULT 0,
	mismatch         bigint NOT NULL DEFAULT 0,
	archived_remote  bigint NOT NULL DEFAULT 0,
	repaired         bigint NOT NULL DEFAULT 0,
	requests         bigint NOT NULL DEFAULT 0,
	error            text,
	records_read     bigint NOT NULL DEFAULT 0,
	records_estimate bigint
);
COMMENT ON TABLE hubsync.reconcile_runs IS
  'History of reconciliation runs (hubsync.reconcile() and the daily run at hubsync.reconcile_at) with their drift counts';
COMMENT ON COLUMN hubsync.reconcile_runs.object_type IS 'the object type compared, NULL for all';
COMMENT ON COLUMN hubsync.reconcile_runs.mismatch IS 'properties whose values differ (one per record and property)';
COMMENT ON COLUMN hubsync.reconcile_runs.repaired IS 'drifts acted on (pull or push)';
COMMENT ON COLUMN hubsync.reconcile_runs.requests IS 'HubSpot requests the run made';
COMMENT ON COLUMN hubsync.reconcile_runs.trigger IS 'manual (hubsync.reconcile(), in the caller''s session), daily (hubsync.reconcile_at) or background (hubsync.reconcile_start())';
COMMENT ON COLUMN hubsync.reconcile_runs.state IS 'queued (a background run waiting for the pull worker), running, done, failed or abandoned';
COMMENT ON COLUMN hubsync.reconcile_runs.records_read IS 'HubSpot records (live and archived) read so far';
COMMENT ON COLUMN hubsync.reconcile_runs.records_estimate IS 'mirror rows of the type(s) when a background run was queued (planner estimate), for progress';

CREATE TABLE hubsync.reconcile_drift (
	run_id           bigint NOT NULL REFERENCES hubsync.reconcile_runs ON DELETE CASCADE,
	object_type      text NOT NULL,
	hubsync_id       uuid,
	hs_object_id     bigint,
	kind             text NOT NULL CHECK (kind IN ('missing_local', 'missing_remote', 'mismatch', 'archived_remote')),
	property         text,
	local_value      text,
	remote_value     text,
	action           text NOT NULL
);
CREATE INDEX reconcile_drift_run_idx ON hubsync.reconcile_drift (run_id);
COMMENT ON TABLE hubsync.reconcile_drift IS
  'Drifts found by each reconciliation run (the rows hubsync.reconcile() returned)';

-- HubSpot records read by a reconciliation run, until it compares them.
CREATE UNLOGGED TABLE hubsync._reconcile_remote (
	run_id           bigint NOT NULL,
	object_type      text NOT NULL,
	id               bigint NOT NULL,
	archived         boolean NOT NULL,
	rec              jsonb,
	PRIMARY KEY (run_id, object_type, id)
);
COMMENT ON TABLE hubsync._reconcile_remote IS
  'API: private. HubSpot records read by a running reconciliation, dropped when it ends';
