-------------------------------------------------------------------------------
-- Row security
-------------------------------------------------------------------------------
-- Row-level security of hubsync's tables and their policies, which
-- show a row to a role only for the object types whose mirror table it
-- may read.  After the functions (the policies call them), before the
-- views.  Install only: CREATE POLICY cannot be re-run, so an update
-- enables row security and creates its new policies in its modfile's
-- .post.sql part (sql/updates/), which also runs after the functions.

-- HubSpot's error messages (last_error, error) and the drift's local and
-- remote values are shown to a role only for the object types whose mirror
-- table it may read (a run over every type: only to a role that may read
-- them all).  The extension owner and superusers, the workers included,
-- are not subject to these policies.
ALTER TABLE hubsync.poll_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.backfills ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.reconcile_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.reconcile_drift ENABLE ROW LEVEL SECURITY;
CREATE POLICY mirror_readers ON hubsync.poll_state FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
CREATE POLICY mirror_readers ON hubsync.backfills FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
CREATE POLICY mirror_readers ON hubsync.reconcile_runs FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
-- drift can be many rows: the readable types are looked up once
CREATE POLICY mirror_readers ON hubsync.reconcile_drift FOR SELECT
	USING (object_type IN (SELECT t.object_type FROM hubsync.object_types t
	                       WHERE hubsync._can_read_mirror(t.object_type)));

ALTER TABLE hubsync.merges ENABLE ROW LEVEL SECURITY;
CREATE POLICY mirror_readers ON hubsync.merges FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
