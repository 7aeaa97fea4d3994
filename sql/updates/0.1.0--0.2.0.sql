-------------------------------------------------------------------------------
-- Update from 0.1.0 to 0.2.0: the modfile
-------------------------------------------------------------------------------
-- Run by ALTER EXTENSION hubsync UPDATE before the re-runnable sources
-- (functions, views, triggers, privileges, pg_dump entries): what those
-- cannot do to a 0.1.0 database -- new tables, columns and indexes,
-- type changes, data changes, and DROPs of the functions whose
-- signature or result changed and of the views they would not replace.
-- Tables here are created as 0.2.0 first had them; sql/schema/ has
-- their current form (test/t/040_upgrade.pl compares the two paths).

-- issue 7: revenue data and the object model
-- quotes.hs_expiration_date is a HubSpot date property
UPDATE hubsync.property_map SET sql_type = 'date' WHERE object_type = 'quotes' AND property = 'hs_expiration_date';
ALTER TABLE hubspot.quotes ALTER COLUMN hs_expiration_date TYPE date USING (hs_expiration_date AT TIME ZONE 'UTC')::date;

-------------------------------------------------------------------------------
-- Revenue data and the object model (issue 7): associations both ways
-------------------------------------------------------------------------------

-- An association row may name its type by label alone: the push worker
-- resolves the id from HubSpot's labels endpoint.
ALTER TABLE hubspot.associations ALTER COLUMN type_id DROP NOT NULL;
COMMENT ON COLUMN hubspot.associations.type_id IS
  'HubSpot associationTypeId; NULL on INSERT means: resolve it from label (NULL label = the unlabeled default type) through HubSpot''s labels endpoint';

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
CREATE INDEX association_outbox_pending_idx ON hubsync.association_outbox (id) WHERE state = 'pending';

-- the claim's look-ups: older changes of a pair, rows waiting for an id
CREATE INDEX association_outbox_from_idx ON hubsync.association_outbox (from_hubsync_id);
CREATE INDEX association_outbox_from_id_idx ON hubsync.association_outbox (from_id);
CREATE INDEX associations_from_hubsync_id_idx ON hubspot.associations (from_hubsync_id);
CREATE INDEX associations_from_id_idx ON hubspot.associations (from_type, from_id);
COMMENT ON TABLE hubsync.association_outbox IS
  'INSERTs and DELETEs of hubspot.associations waiting for HubSpot (v4 batch create / labels archive); an entry waits until both records have a HubSpot id; failed entries stay with their error';
COMMENT ON COLUMN hubsync.association_outbox.state IS
  'pending, in_flight while the push worker sends it, failed when HubSpot refused it for good (see last_error)';

-- convergence fixes (chaos run)

DROP FUNCTION hubsync._push_done(uuid, text, text, bigint, jsonb, bigint[]);

-------------------------------------------------------------------------------
-- Lead enrichment (issue 8): its tables are sql/schema/enrichment.sql, run
-- after this file (SQL_NEW_SINCE_0.1.0 in sql/sources.mk)
-------------------------------------------------------------------------------

ALTER TABLE hubsync.changes ADD COLUMN provider text;
ALTER TABLE hubsync.changes ADD COLUMN score numeric;
COMMENT ON COLUMN hubsync.changes.provider IS 'enrichment provider that supplied the values (origin enrichment)';
COMMENT ON COLUMN hubsync.changes.score IS 'the enrichment provider''s score for these values';

-------------------------------------------------------------------------------
-- Operations: status, alerts, housekeeping (issue 10)
-------------------------------------------------------------------------------

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
ALTER TABLE hubsync.inbox SET (fillfactor = 90,
	autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0.05,
	autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
ALTER TABLE hubsync.sync_state SET (fillfactor = 80,
	autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE hubsync.changes SET (
	autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05,
	autovacuum_analyze_scale_factor = 0.05);

-- The change feed's before values (properties holds the after values).
ALTER TABLE hubsync.changes ADD COLUMN before jsonb;
COMMENT ON COLUMN hubsync.changes.properties IS
  'after: the values sent to HubSpot (out) or applied from it (in), as HubSpot wire strings';
COMMENT ON COLUMN hubsync.changes.before IS
  'before: the same properties'' values HubSpot had, as last known to hubsync (NULL when unknown, e.g. a create)';

-- Last push and pull per object type, and pruning of the change feed by
-- age per object type and direction.
CREATE INDEX changes_object_type_direction_at_idx ON hubsync.changes (object_type, direction, at);

-- Pruning of applied and skipped webhook events by age.
CREATE INDEX inbox_done_received_at_idx ON hubsync.inbox (received_at) WHERE state IN ('applied', 'skipped');

-- Failed events, counted by hubsync.status and the inbound_failed alert.
CREATE INDEX inbox_failed_idx ON hubsync.inbox (id) WHERE state = 'failed';

-- The alerts sent on NOTIFY hubsync_alerts: the latest of each kind and
-- subject, and how many were held back since by the rate limit.
CREATE TABLE hubsync.alerts (
	alert            text NOT NULL,
	key              text NOT NULL DEFAULT '',
	first_sent_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_sent_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_seen_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
	sent             bigint NOT NULL DEFAULT 1,
	suppressed       bigint NOT NULL DEFAULT 0,
	payload          jsonb NOT NULL,
	PRIMARY KEY (alert, key)
);
COMMENT ON TABLE hubsync.alerts IS
  'Alerts sent on NOTIFY hubsync_alerts: the latest of each kind and subject; repeats within hubsync.alert_interval are counted, not sent';
COMMENT ON COLUMN hubsync.alerts.alert IS 'dead_letter, auth_failed, auth_refresh_failed, pending_age, inbound_lag, inbound_failed, backfill_failed, poll_failing, worker_down, webhook_refused, daily_quota, trigger_grant or association_failed';
COMMENT ON COLUMN hubsync.alerts.key IS 'subject: object type (dead_letter, pending_age, inbound_failed, backfill_failed, poll_failing), worker (worker_down), UTC day (daily_quota), mirror table (trigger_grant) or empty';
COMMENT ON COLUMN hubsync.alerts.last_sent_at IS 'when the last NOTIFY was sent';
COMMENT ON COLUMN hubsync.alerts.last_seen_at IS 'when the condition was last seen, sent or not';
COMMENT ON COLUMN hubsync.alerts.sent IS 'notifications sent for this kind and subject';
COMMENT ON COLUMN hubsync.alerts.suppressed IS 'occurrences held back by the rate limit since the last notification';
COMMENT ON COLUMN hubsync.alerts.payload IS 'JSON payload of the last notification';

-- What the alert checks must remember between housekeeping rounds: since
-- when a condition holds (a worker down, a poll failing) and the last
-- value of a counter (webhook signature refusals).
CREATE TABLE hubsync.alert_watch (
	watch            text PRIMARY KEY,
	since            timestamptz NOT NULL DEFAULT pg_catalog.now(),
	value            bigint
);
COMMENT ON TABLE hubsync.alert_watch IS
  'Alert checks: since when a condition holds (worker_down, poll_failing) and the last counter value seen (webhook_refused)';

-- Pauses survive pg_dump: the rows of the built-in object types are not
-- dumped (CREATE EXTENSION makes them), so their paused flag is mirrored
-- in a table that is.  Triggers keep the two in step both ways; a restore
-- of hubsync.paused_types pauses the types again.
CREATE TABLE hubsync.paused_types (
	object_type      text PRIMARY KEY
);
COMMENT ON TABLE hubsync.paused_types IS
  'Object types held by hubsync.pause(), kept in step with hubsync.object_types.paused so that pg_dump carries pauses';

INSERT INTO hubsync.paused_types (object_type)
SELECT t.object_type FROM hubsync.object_types t WHERE t.paused;

-- security: OAuth refresh state and the authentication state in
-- hubsync.credentials_status (issue 9)
DROP VIEW hubsync.credentials_status;
DROP FUNCTION hubsync._credentials_status();
ALTER TABLE hubsync._credentials
	ADD COLUMN oauth_refreshed_at timestamptz,
	ADD COLUMN oauth_refresh_error text;

-------------------------------------------------------------------------------
-- Inbound: typed inbox columns filled by the receiver (which also computes
-- the dedupe key), cheaper set-based apply, a change feed of real changes
-- only (issue 5)
-------------------------------------------------------------------------------

DROP INDEX hubsync.inbox_pending_idx;
ALTER TABLE hubsync.inbox
	ALTER COLUMN dedupe_key TYPE bytea USING pg_catalog.decode(dedupe_key, 'hex'),
	ADD COLUMN property_name text,
	ADD COLUMN property_value text,
	ADD COLUMN change_source text,
	ADD COLUMN source_id text;
UPDATE hubsync.inbox
SET property_name = event ->> 'propertyName', property_value = event ->> 'propertyValue',
    change_source = event ->> 'changeSource', source_id = event ->> 'sourceId';
COMMENT ON COLUMN hubsync.inbox.dedupe_key IS
  'sha256 of subscriptionId, objectId, occurredAt, propertyName, propertyValue, eventId (and association ends, subscriptionType, objectTypeId), computed by the receiver: duplicate deliveries store nothing';
COMMENT ON COLUMN hubsync.inbox.property_name IS
  'propertyName of a propertyChange event, read from the event at receipt';
COMMENT ON COLUMN hubsync.inbox.property_value IS
  'propertyValue of a propertyChange event, read from the event at receipt (NULL once a privacy deletion erased it)';
COMMENT ON COLUMN hubsync.inbox.change_source IS
  'changeSource of the event (CRM_UI, API, INTEGRATION...), read at receipt';
COMMENT ON COLUMN hubsync.inbox.source_id IS
  'sourceId of the event (userId:..., or the app id of an API write), read at receipt';

DROP FUNCTION hubsync._record_in_change(text, uuid, bigint, text, jsonb, jsonb);

-------------------------------------------------------------------------------
-- Polling safety net, backfill and reconciliation (issue 6): its tables are
-- sql/schema/polling.sql, run after this file (SQL_NEW_SINCE_0.1.0)
-------------------------------------------------------------------------------

-- security

-- 0.1.0 registered hubsync._credentials with pg_extension_config_dump;
-- leaving the extension and joining it again is how a table's entry is
-- removed (its grants are recorded again as the extension's)
ALTER EXTENSION hubsync DROP TABLE hubsync._credentials;
ALTER EXTENSION hubsync ADD TABLE hubsync._credentials;

-- _mirror_wire loses its OUT parameter found (PL/pgSQL's FOUND shadowed it:
-- it was always NULL, and nothing read it)
DROP FUNCTION hubsync._mirror_wire(text, uuid);

-- the push claim takes the oldest changes of each object type that is not
-- paused, real-time ones first, so a paused type's backlog never holds up
-- the others and a bulk backlog never delays the real-time lane
CREATE INDEX outbox_object_type_id_idx ON hubsync.outbox (object_type, priority, id);

COMMENT ON COLUMN hubsync.outbox.priority IS '1: real-time lane (a transaction that captured at most 10 rows), sent before bulk changes (0); each lane in commit order';

-- _claim says which records are real-time (issue 21): a new result column
DROP FUNCTION hubsync._claim(integer, integer);

-------------------------------------------------------------------------------
-- BI model (issue 22) and the Webhooks Journal (issue 24): their tables are
-- new files, sql/schema/bi.sql and sql/schema/journal.sql, which the update
-- runs after this file (SQL_NEW_SINCE_0.1.0 in sql/sources.mk); the
-- histories start from the mirror in the .post.sql part.
-------------------------------------------------------------------------------

-- the Webhooks Journal (issue 24): a change that came both as a webhook and
-- from the journal is stored once (its change key, without subscriptionId)
ALTER TABLE hubsync.inbox ADD COLUMN change_key bytea;
CREATE UNIQUE INDEX inbox_change_key_idx ON hubsync.inbox (change_key) WHERE change_key IS NOT NULL;
COMMENT ON COLUMN hubsync.inbox.change_key IS
  'sha256 of the dedupe key''s fields but subscriptionId, computed at receipt: the same change brought by a webhook and by the Webhooks Journal is stored once (NULL for events stored before 0.2.0 and events hubsync queued itself)';
