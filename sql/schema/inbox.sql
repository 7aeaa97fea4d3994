-------------------------------------------------------------------------------
-- Inbox
-------------------------------------------------------------------------------
-- HubSpot webhook events, stored on receipt and applied in order.

CREATE TABLE hubsync.inbox (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	dedupe_key       bytea NOT NULL UNIQUE,
	subscription_type text NOT NULL,
	object_type_id   text,
	object_id        bigint,
	occurred_at      bigint NOT NULL,
	event            jsonb NOT NULL,
	state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'skipped', 'failed')),
	received_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	applied_at       timestamptz,
	error            text,
	property_name    text,
	property_value   text,
	change_source    text,
	source_id        text,
	change_key       bytea
);
CREATE INDEX inbox_pending_order_idx ON hubsync.inbox (occurred_at, id) WHERE state = 'pending';

-- A change that came both as a webhook and from the Webhooks Journal (two
-- subscriptions, two subscriptionIds) is stored once.
CREATE UNIQUE INDEX inbox_change_key_idx ON hubsync.inbox (change_key) WHERE change_key IS NOT NULL;

-- Pruning of applied and skipped webhook events by age.
CREATE INDEX inbox_done_received_at_idx ON hubsync.inbox (received_at) WHERE state IN ('applied', 'skipped');

-- Failed events (kept until retried: hubsync.retry_inbox), counted by
-- hubsync.status and the inbound_failed alert without a scan of the inbox.
CREATE INDEX inbox_failed_idx ON hubsync.inbox (id) WHERE state = 'failed';

COMMENT ON TABLE hubsync.inbox IS
  'HubSpot webhook events, stored on receipt and applied in occurredAt order';
COMMENT ON COLUMN hubsync.inbox.dedupe_key IS
  'sha256 of subscriptionId, objectId, occurredAt, propertyName, propertyValue, eventId (and association ends, subscriptionType, objectTypeId), computed by the receiver: duplicate deliveries store nothing';
COMMENT ON COLUMN hubsync.inbox.change_key IS
  'sha256 of the dedupe key''s fields but subscriptionId, computed at receipt: the same change brought by a webhook and by the Webhooks Journal is stored once (NULL for events stored before 0.2.0 and events hubsync queued itself)';
COMMENT ON COLUMN hubsync.inbox.property_name IS
  'propertyName of a propertyChange event, read from the event at receipt';
COMMENT ON COLUMN hubsync.inbox.property_value IS
  'propertyValue of a propertyChange event, read from the event at receipt (NULL once a privacy deletion erased it)';
COMMENT ON COLUMN hubsync.inbox.change_source IS
  'changeSource of the event (CRM_UI, API, INTEGRATION...), read at receipt';
COMMENT ON COLUMN hubsync.inbox.source_id IS
  'sourceId of the event (userId:..., or the app id of an API write), read at receipt';
COMMENT ON COLUMN hubsync.inbox.state IS
  'pending, applied, skipped (unknown type, stale, echo, record gone) or failed (see error)';

-- Hot queue tables: vacuum and analyze them early -- a drained backlog
-- leaves as many dead rows as it had changes, and the claim's plan needs
-- fresh statistics -- and leave room in each page for HOT updates
-- (outbox state, sync_state values).
ALTER TABLE hubsync.inbox SET (fillfactor = 90,
	autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0.05,
	autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
