-------------------------------------------------------------------------------
-- Outbox, dead letters, sync state
-------------------------------------------------------------------------------
-- Local changes waiting for HubSpot, those HubSpot refused for good, and
-- what hubsync knows HubSpot holds for each record.

CREATE TABLE hubsync.outbox (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	object_type      text NOT NULL,
	hubsync_id       uuid NOT NULL,
	hs_object_id     bigint,
	op               text NOT NULL CHECK (op IN ('create', 'update', 'archive')),
	changed          text[] NOT NULL DEFAULT '{}',
	origin           text NOT NULL,
	priority         smallint NOT NULL DEFAULT 0,
	state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in_flight')),
	solo             boolean NOT NULL DEFAULT false,
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	lease_until      timestamptz,
	created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_status      integer,
	last_error       text
);
CREATE INDEX outbox_hubsync_id_idx ON hubsync.outbox (hubsync_id);
-- the claim takes the oldest changes of each object type that is not
-- paused, real-time ones first, so a paused type's backlog is never
-- walked through and a bulk backlog never delays the real-time lane
CREATE INDEX outbox_object_type_id_idx ON hubsync.outbox (object_type, priority, id);
COMMENT ON TABLE hubsync.outbox IS
  'Local changes waiting for HubSpot, written in the application''s own transaction';
COMMENT ON COLUMN hubsync.outbox.op IS 'create, update or archive';
COMMENT ON COLUMN hubsync.outbox.hs_object_id IS 'HubSpot id when known at capture (updates, archives)';
COMMENT ON COLUMN hubsync.outbox.changed IS 'names of the changed properties (empty for a create: all of them); values are read from the mirror row when sent';
COMMENT ON COLUMN hubsync.outbox.origin IS 'hubsync.origin of the writing session';
COMMENT ON COLUMN hubsync.outbox.priority IS '1: real-time lane (a transaction that captured at most 10 rows), sent before bulk changes (0); each lane in commit order';
COMMENT ON COLUMN hubsync.outbox.state IS 'pending, or in_flight while a worker holds its lease';
COMMENT ON COLUMN hubsync.outbox.solo IS 'send in a batch of its own (after HubSpot refused a whole batch)';
COMMENT ON COLUMN hubsync.outbox.lease_until IS 'an in_flight row whose lease passed goes back to pending';

-- Hot queue tables: vacuum and analyze them early -- a drained backlog
-- leaves as many dead rows as it had changes, and the claim's plan needs
-- fresh statistics -- and leave room in each page for HOT updates
-- (outbox state, sync_state values).  The outbox keeps half of each page
-- free: the claim updates every row once (state, lease), and with room
-- on the page that update touches no index (about 8 us of the push
-- worker's CPU per record otherwise).
ALTER TABLE hubsync.outbox SET (fillfactor = 50,
	autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_insert_threshold = 1000,
	autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);

CREATE TABLE hubsync.dead_letters (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	outbox_id        bigint,
	object_type      text NOT NULL,
	hubsync_id       uuid NOT NULL,
	op               text NOT NULL,
	properties       jsonb NOT NULL,
	origin           text NOT NULL,
	attempts         integer NOT NULL,
	status           integer,
	category         text,
	message          text,
	request          jsonb,
	response         jsonb,
	created_at       timestamptz NOT NULL,
	failed_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX dead_letters_hubsync_id_idx ON hubsync.dead_letters (hubsync_id);
COMMENT ON TABLE hubsync.dead_letters IS
  'Changes HubSpot refused for good, with HubSpot''s answer; hubsync.retry_dead_letters() sends them again';

CREATE TABLE hubsync.sync_state (
	hubsync_id       uuid PRIMARY KEY,
	object_type      text NOT NULL,
	hs_object_id     bigint,
	remote           jsonb NOT NULL DEFAULT '{}',
	versions         jsonb NOT NULL DEFAULT '{}',
	synced_at        timestamptz
);
COMMENT ON TABLE hubsync.sync_state IS
  'Per record: last values known to be in HubSpot (compare-before-write) and per-property occurredAt of the newest applied HubSpot change';

-- Hot queue tables: vacuum and analyze them early -- a drained backlog
-- leaves as many dead rows as it had changes, and the claim's plan needs
-- fresh statistics -- and leave room in each page for HOT updates
-- (outbox state, sync_state values).
ALTER TABLE hubsync.sync_state SET (fillfactor = 80,
	autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
