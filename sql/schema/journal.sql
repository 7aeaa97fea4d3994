-------------------------------------------------------------------------------
-- Webhooks Journal
-------------------------------------------------------------------------------
-- Where the pull worker stands in HubSpot's Webhooks Journal, and the
-- journal subscriptions hubsync keeps for the mirrored object types.

CREATE TABLE hubsync.journal_state (
	id               boolean PRIMARY KEY DEFAULT true CHECK (id),
	started          boolean NOT NULL DEFAULT false,
	current_offset   text,
	read_at          timestamptz,
	entries          bigint NOT NULL DEFAULT 0,
	events           bigint NOT NULL DEFAULT 0,
	expired          bigint NOT NULL DEFAULT 0,
	expired_at       timestamptz,
	last_error       text
);
COMMENT ON TABLE hubsync.journal_state IS
  'Where the pull worker stands in HubSpot''s Webhooks Journal (one row); the offset moves in the transaction that stores the events read';
COMMENT ON COLUMN hubsync.journal_state.started IS 'false until the first read set the starting point (the latest entry then)';
COMMENT ON COLUMN hubsync.journal_state.current_offset IS 'offset (a UUID) of the last journal entry whose events are stored; NULL once started: read from the earliest entry';
COMMENT ON COLUMN hubsync.journal_state.read_at IS 'time of the last read that stored entries';
COMMENT ON COLUMN hubsync.journal_state.entries IS 'journal entries (downloaded files) read so far';
COMMENT ON COLUMN hubsync.journal_state.events IS 'events those entries stored in hubsync.inbox (duplicates of webhook deliveries not counted)';
COMMENT ON COLUMN hubsync.journal_state.expired IS 'times the stored offset had expired or was unknown to HubSpot (then polling caught up)';
COMMENT ON COLUMN hubsync.journal_state.expired_at IS 'when the stored offset was last found expired';
COMMENT ON COLUMN hubsync.journal_state.last_error IS 'last error reading the journal (NULL after a success)';

CREATE TABLE hubsync.journal_subscriptions (
	object_type       text NOT NULL,
	subscription_type text NOT NULL CHECK (subscription_type IN ('OBJECT', 'ASSOCIATION')),
	actions           text[] NOT NULL,
	state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'active', 'failed', 'removing', 'off')),
	hubspot_id        bigint,
	synced_at         timestamptz,
	last_error        text,
	PRIMARY KEY (object_type, subscription_type)
);
COMMENT ON TABLE hubsync.journal_subscriptions IS
  'Webhooks Journal subscriptions hubsync keeps in HubSpot, one per mirrored object type and kind; set state to pending to (re)create one, removing to delete it';
COMMENT ON COLUMN hubsync.journal_subscriptions.object_type IS 'mirrored object type (hubsync.object_types)';
COMMENT ON COLUMN hubsync.journal_subscriptions.subscription_type IS 'OBJECT (creations, property changes, deletions, merges, restores) or ASSOCIATION';
COMMENT ON COLUMN hubsync.journal_subscriptions.actions IS 'HubSpot actions subscribed to (CREATE, UPDATE, DELETE, MERGE, RESTORE, ASSOCIATION_ADDED, ASSOCIATION_REMOVED)';
COMMENT ON COLUMN hubsync.journal_subscriptions.state IS 'pending (to create in HubSpot), active, failed (see last_error), removing (to delete in HubSpot), off';
COMMENT ON COLUMN hubsync.journal_subscriptions.hubspot_id IS 'HubSpot''s id of the subscription while it exists';
COMMENT ON COLUMN hubsync.journal_subscriptions.synced_at IS 'when the pull worker last created or deleted it in HubSpot';
COMMENT ON COLUMN hubsync.journal_subscriptions.last_error IS 'HubSpot''s answer when it refused (state failed)';
