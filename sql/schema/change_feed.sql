-------------------------------------------------------------------------------
-- Change feed, conflicts, merges
-------------------------------------------------------------------------------
-- What changed in either direction, clashes with field owners, and the
-- lineage of HubSpot merges.

CREATE TABLE hubsync.changes (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at               timestamptz NOT NULL DEFAULT pg_catalog.now(),
	direction        text NOT NULL CHECK (direction IN ('out', 'in')),
	object_type      text NOT NULL,
	hubsync_id       uuid,
	hs_object_id     bigint,
	op               text NOT NULL,
	origin           text NOT NULL,
	properties       jsonb NOT NULL DEFAULT '{}',
	provider         text,
	score            numeric,
	before           jsonb
);
CREATE INDEX changes_hubsync_id_idx ON hubsync.changes (hubsync_id);

-- Last push and pull per object type, and pruning of the change feed by
-- age per object type and direction.
CREATE INDEX changes_object_type_direction_at_idx ON hubsync.changes (object_type, direction, at);

COMMENT ON TABLE hubsync.changes IS
  'Change feed, in and out: what changed, where it came from, before and after values';
COMMENT ON COLUMN hubsync.changes.provider IS 'enrichment provider that supplied the values (origin enrichment)';
COMMENT ON COLUMN hubsync.changes.score IS 'the enrichment provider''s score for these values';
COMMENT ON COLUMN hubsync.changes.properties IS
  'after: the values sent to HubSpot (out) or applied from it (in), as HubSpot wire strings';
COMMENT ON COLUMN hubsync.changes.before IS
  'before: the same properties'' values HubSpot had, as last known to hubsync (NULL when unknown, e.g. a create)';

-- Hot queue tables: vacuum and analyze them early -- a drained backlog
-- leaves as many dead rows as it had changes, and the claim's plan needs
-- fresh statistics -- and leave room in each page for HOT updates
-- (outbox state, sync_state values).
ALTER TABLE hubsync.changes SET (
	autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05,
	autovacuum_analyze_scale_factor = 0.05);

CREATE TABLE hubsync.conflicts (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at               timestamptz NOT NULL DEFAULT pg_catalog.now(),
	object_type      text NOT NULL,
	hubsync_id       uuid,
	hs_object_id     bigint,
	property         text NOT NULL,
	local_value      text,
	remote_value     text,
	resolution       text NOT NULL
);
COMMENT ON TABLE hubsync.conflicts IS
  'Clashes between a HubSpot edit and the owner of the property, and how they were resolved';

CREATE TABLE hubsync.merges (
	object_type      text NOT NULL,
	merged_id        bigint NOT NULL,
	survivor_id      bigint NOT NULL,
	merged_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (object_type, merged_id)
);
COMMENT ON TABLE hubsync.merges IS
  'Lineage of HubSpot merges: records merged away and the record that absorbed them';
