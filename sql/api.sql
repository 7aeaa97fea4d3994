-- api: hubsync.upsert, record_status, await_synced, dead letters, pause.
-- No credentials are set here, so nothing leaves the outbox.

-- the push worker runs (it retries until the test database exists):
-- await_synced refuses to wait when no push worker can send
DO $$
BEGIN
	FOR i IN 1..300 LOOP
		EXIT WHEN (SELECT w.state FROM hubsync.worker_status() w WHERE w.worker = 'hubsync push') = 'running';
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
SELECT state FROM hubsync.worker_status() WHERE worker = 'hubsync push';

-- upsert inserts once, then updates in place; the same call twice enqueues
-- one change
SELECT hubsync.upsert('contacts', 'email', 'ann@example.com', '{"firstname": "Ann", "favourite": "tea"}') AS ann \gset
SELECT hubsync.upsert('contacts', 'email', 'ann@example.com', '{"firstname": "Ann", "favourite": "tea"}') = :'ann' AS same_row;
SELECT count(*) AS rows FROM hubspot.contacts;
SELECT op, changed FROM hubsync.outbox ORDER BY id;
SELECT email, firstname, properties FROM hubspot.contacts;

-- a changed value updates and enqueues only that property
SELECT hubsync.upsert('contacts', 'email', 'ann@example.com', '{"firstname": "Annie"}') = :'ann' AS same_row;
SELECT op, changed FROM hubsync.outbox ORDER BY id;

-- typed conversions from wire strings: numbers exact, epoch ms, multi-select
SELECT hubsync.upsert('deals', 'dealname', 'Renewal', '{"amount": "1234567890.123456789", "closedate": "1751284800000"}') AS deal \gset
SELECT dealname, amount, closedate AT TIME ZONE 'UTC' AS closedate_utc FROM hubspot.deals;
SELECT hubsync.upsert('deals', 'dealname', 'Renewal', '{"amount": ""}') = :'deal' AS same_row;
SELECT amount IS NULL AS cleared FROM hubspot.deals;

-- a key kept in the properties jsonb
SELECT hubsync.upsert('invoices', 'erp_invoice_id', 'INV-1001', '{"hs_currency": "EUR", "hs_amount_billed": "20.00"}') AS inv \gset
SELECT hubsync.upsert('invoices', 'erp_invoice_id', 'INV-1001', '{"hs_currency": "EUR", "hs_amount_billed": "20.00"}') = :'inv' AS same_row;
SELECT hs_currency, hs_amount_billed, properties FROM hubspot.invoices;
SELECT count(*) AS invoice_changes FROM hubsync.outbox WHERE object_type = 'invoices';

-- bad input
SELECT hubsync.upsert('widgets', 'email', 'x', '{}');
SELECT hubsync.upsert('contacts', NULL, 'x', '{}');
SELECT hubsync.upsert('contacts', 'email', 'x', '[1, 2]');
SELECT hubsync.upsert('deals', 'dealname', 'Bad', '{"amount": "twelve"}');

-- record_status: pending while queued
SELECT object_type, status, attempts FROM hubsync.record_status WHERE hubsync_id = :'ann';

-- await_synced times out on a pending record, and refuses inside the
-- transaction that made the change
SELECT hubsync.await_synced('contacts', :'ann', '50ms');
INSERT INTO hubspot.contacts (hubsync_id, email) VALUES ('00000000-0000-0000-0000-0000000000a1', 'fixed@example.com');
BEGIN;
UPDATE hubspot.contacts SET lastname = 'Lee' WHERE hubsync_id = '00000000-0000-0000-0000-0000000000a1';
SELECT hubsync.await_synced('contacts', '00000000-0000-0000-0000-0000000000a1', '50ms');
ROLLBACK;
SELECT hubsync.await_synced('widgets', :'ann', '50ms');
-- an id hubsync does not know, or one of another type, is an error
SELECT hubsync.await_synced('contacts', '00000000-0000-0000-0000-0000000000ff', '50ms');
SELECT hubsync.await_synced('deals', '00000000-0000-0000-0000-0000000000a1', '50ms');

-- dead letters: failed status, retry re-queues, discard drops
INSERT INTO hubsync.dead_letters (object_type, hubsync_id, op, properties, origin, attempts, status, category, message, created_at)
VALUES ('contacts', :'ann', 'update', '{"firstname": "Annie"}', 'app', 3, 400, 'VALIDATION_ERROR', 'bad value', now());
DELETE FROM hubsync.outbox WHERE hubsync_id = :'ann';
SELECT status, last_error FROM hubsync.record_status WHERE hubsync_id = :'ann';
SELECT hubsync.retry_dead_letters(category => 'OTHER');
SELECT hubsync.retry_dead_letters(object_type => 'contacts');
SELECT op, changed, origin FROM hubsync.outbox WHERE hubsync_id = :'ann';
SELECT count(*) AS dead_left FROM hubsync.dead_letters;
INSERT INTO hubsync.dead_letters (object_type, hubsync_id, op, properties, origin, attempts, status, category, message, created_at)
VALUES ('deals', :'deal', 'create', '{}', 'app', 1, 404, 'OBJECT_NOT_FOUND', 'gone', now());
SELECT hubsync.discard_dead_letters(category => 'OBJECT_NOT_FOUND');

-- pause and resume; a record held by a pause is paused, not pending
SELECT hubsync.pause('deals');
SELECT object_type FROM hubsync.object_types WHERE paused;
SELECT status FROM hubsync.record_status WHERE hubsync_id = :'deal';
SELECT hubsync.await_synced('deals', :'deal', '50ms');
SELECT hubsync.pause('widgets');
SELECT hubsync.resume();
SELECT count(*) AS paused FROM hubsync.object_types WHERE paused;

-- an application role can upsert and wait, but not manage dead letters
CREATE ROLE hubsync_regress_api;
GRANT SELECT, INSERT, UPDATE ON hubspot.contacts TO hubsync_regress_api;
SET ROLE hubsync_regress_api;
SELECT hubsync.upsert('contacts', 'email', 'bob@example.com', '{"firstname": "Bob"}') IS NOT NULL AS upserted;
SELECT hubsync.await_synced('contacts', :'ann', '10ms');
SELECT hubsync.retry_dead_letters();
SELECT hubsync.pause();
SELECT hubsync._push_done(:'ann', 'contacts', 'update', 1, '{}', '{}');
RESET ROLE;
DROP OWNED BY hubsync_regress_api;
DROP ROLE hubsync_regress_api;

-- a push a rep's newer edit overtook (its event applied before the push
-- was recorded): the mirror and the known HubSpot value stay the rep's
INSERT INTO hubspot.contacts (email, firstname, hs_object_id) VALUES ('olga@example.com', 'Olga', 9001)
RETURNING hubsync_id AS olga \gset
UPDATE hubspot.contacts SET firstname = 'Rep' WHERE hubsync_id = :'olga';
INSERT INTO hubsync.sync_state (hubsync_id, object_type, hs_object_id, remote, versions, synced_at)
VALUES (:'olga', 'contacts', 9001, '{"firstname": "Rep"}', '{"firstname": 1767225602000}', now());
SELECT hubsync._push_done(:'olga', 'contacts', 'update', 9001, '{"firstname": "Olga"}',
	ARRAY(SELECT id FROM hubsync.outbox WHERE hubsync_id = :'olga'), '2026-01-01 00:00:01+00');
SELECT firstname FROM hubspot.contacts WHERE hubsync_id = :'olga';
SELECT remote ->> 'firstname' AS remote, versions ->> 'firstname' AS version
FROM hubsync.sync_state WHERE hubsync_id = :'olga';

-- HubSpot answers a push for another record of ours: ours was merged into
-- it; its row goes, the lineage is kept and the survivor is read again
INSERT INTO hubspot.contacts (email, hs_object_id) VALUES ('gone@example.com', 9101) RETURNING hubsync_id AS gone \gset
INSERT INTO hubspot.contacts (email, hs_object_id) VALUES ('kept@example.com', 9102);
UPDATE hubspot.contacts SET lastname = 'Late' WHERE hubsync_id = :'gone';
SELECT hubsync._push_done(:'gone', 'contacts', 'update', 9102, '{"lastname": "Late"}',
	ARRAY(SELECT id FROM hubsync.outbox WHERE hubsync_id = :'gone'), now());
SELECT email FROM hubspot.contacts WHERE hs_object_id IN (9101, 9102) ORDER BY 1;
SELECT merged_id, survivor_id FROM hubsync.merges WHERE merged_id = 9101;
SELECT subscription_type, object_id FROM hubsync.inbox WHERE event ->> 'changeSource' = 'HUBSYNC_REFRESH';
DELETE FROM hubsync.inbox;
DELETE FROM hubsync.merges;

TRUNCATE hubsync.outbox, hubsync.dead_letters;
DELETE FROM hubspot.contacts;
DELETE FROM hubspot.deals;
DELETE FROM hubspot.invoices;
TRUNCATE hubsync.outbox;
