-------------------------------------------------------------------------------
-- Associations
-------------------------------------------------------------------------------
-- HubSpot associations mirrored both ways, their types, and the
-- association changes waiting for HubSpot.

CREATE TABLE hubspot.associations (
	from_type        text NOT NULL,
	from_id          bigint,
	to_type          text NOT NULL,
	to_id            bigint,
	-- An association row may name its type by label alone: the push worker
	-- resolves the id from HubSpot's labels endpoint.
	type_id          integer,
	category         text NOT NULL DEFAULT 'HUBSPOT_DEFINED',
	label            text,
	from_hubsync_id  uuid,
	to_hubsync_id    uuid,
	UNIQUE NULLS NOT DISTINCT (from_type, from_id, from_hubsync_id, to_type, to_id, to_hubsync_id, type_id, category),
	CHECK (from_id IS NOT NULL OR from_hubsync_id IS NOT NULL),
	CHECK (to_id IS NOT NULL OR to_hubsync_id IS NOT NULL)
);

-- the claim's look-ups: older changes of a pair, rows waiting for an id
CREATE INDEX associations_from_hubsync_id_idx ON hubspot.associations (from_hubsync_id);
CREATE INDEX associations_from_id_idx ON hubspot.associations (from_type, from_id);
COMMENT ON TABLE hubspot.associations IS
  'HubSpot v4 associations, one row per direction; an endpoint not yet in HubSpot is named by its hubsync_id';
COMMENT ON COLUMN hubspot.associations.from_type IS 'mirror table name of the source record';
COMMENT ON COLUMN hubspot.associations.from_id IS 'HubSpot id of the source record';
COMMENT ON COLUMN hubspot.associations.to_type IS 'mirror table name of the target record';
COMMENT ON COLUMN hubspot.associations.to_id IS 'HubSpot id of the target record';
COMMENT ON COLUMN hubspot.associations.type_id IS
  'HubSpot associationTypeId; NULL on INSERT means: resolve it from label (NULL label = the unlabeled default type) through HubSpot''s labels endpoint';
COMMENT ON COLUMN hubspot.associations.category IS 'HUBSPOT_DEFINED, USER_DEFINED or INTEGRATOR_DEFINED';
COMMENT ON COLUMN hubspot.associations.label IS 'association label, NULL when unlabeled';
COMMENT ON COLUMN hubspot.associations.from_hubsync_id IS 'source record by hubsync_id while it is not yet in HubSpot';
COMMENT ON COLUMN hubspot.associations.to_hubsync_id IS 'target record by hubsync_id while it is not yet in HubSpot';

CREATE TABLE hubsync.association_types (
	from_type   text NOT NULL,
	to_type     text NOT NULL,
	type_id     integer NOT NULL,
	category    text NOT NULL,
	label       text,
	fetched_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (from_type, to_type, type_id)
);
COMMENT ON TABLE hubsync.association_types IS
  'Cache of HubSpot''s association labels endpoint (GET /crm/v4/associations/{from}/{to}/labels): type ids, categories and labels per pair of object types';
COMMENT ON COLUMN hubsync.association_types.label IS 'label, NULL for the unlabeled type';

-- Association changes waiting for HubSpot.  Kept apart from the record
-- outbox: an entry leaves only once both ends have a HubSpot id, so an
-- association to a record created in the same transaction follows that
-- record's create, and entries of one pair leave in commit order.
CREATE TABLE hubsync.association_outbox (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	op               text NOT NULL CHECK (op IN ('create', 'archive')),
	from_type        text NOT NULL,
	from_id          bigint,
	from_hubsync_id  uuid,
	to_type          text NOT NULL,
	to_id            bigint,
	to_hubsync_id    uuid,
	type_id          integer,
	category         text NOT NULL DEFAULT 'HUBSPOT_DEFINED',
	label            text,
	origin           text NOT NULL,
	state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in_flight', 'failed')),
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	lease_until      timestamptz,
	created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_status      integer,
	last_error       text
);

-- Association changes waiting for HubSpot.  Kept apart from the record
-- outbox: an entry leaves only once both ends have a HubSpot id, so an
-- association to a record created in the same transaction follows that
-- record's create, and entries of one pair leave in commit order.
CREATE INDEX association_outbox_pending_idx ON hubsync.association_outbox (id) WHERE state = 'pending';

-- the claim's look-ups: older changes of a pair, rows waiting for an id
CREATE INDEX association_outbox_from_idx ON hubsync.association_outbox (from_hubsync_id);
CREATE INDEX association_outbox_from_id_idx ON hubsync.association_outbox (from_id);
COMMENT ON TABLE hubsync.association_outbox IS
  'INSERTs and DELETEs of hubspot.associations waiting for HubSpot (v4 batch create / labels archive); an entry waits until both records have a HubSpot id; failed entries stay with their error';
COMMENT ON COLUMN hubsync.association_outbox.state IS
  'pending, in_flight while the push worker sends it, failed when HubSpot refused it for good (see last_error)';
