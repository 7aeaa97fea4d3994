-- capture: application writes on mirror tables become outbox rows in the
-- same transaction, with only the changed properties.

CREATE FUNCTION outbox_rows() RETURNS TABLE (object_type text, op text, changed text[], origin text, has_hs_id boolean)
LANGUAGE sql AS $$
	SELECT object_type, op, changed, origin, hs_object_id IS NOT NULL
	FROM hubsync.outbox ORDER BY id
$$;

-- INSERT enqueues a create
INSERT INTO hubspot.contacts (hubsync_id, email, firstname)
VALUES ('00000000-0000-0000-0000-000000000001', 'ann@example.com', 'Ann');
SELECT * FROM outbox_rows();

-- an UPDATE that changes nothing enqueues nothing
UPDATE hubspot.contacts SET firstname = 'Ann';
UPDATE hubspot.contacts SET properties = '{}';
SELECT count(*) FROM hubsync.outbox;

-- only the changed properties, typed columns and jsonb keys alike
UPDATE hubspot.contacts SET lastname = 'Lee', properties = '{"favourite_colour": "blue", "score": 10}';
UPDATE hubspot.contacts SET properties = '{"favourite_colour": "blue", "score": 11}';
UPDATE hubspot.contacts SET properties = '{"score": 11}';
SELECT * FROM outbox_rows();

-- a row that already has a HubSpot id mirrors an existing record: no create
INSERT INTO hubspot.deals (dealname, hs_object_id) VALUES ('Existing', 512);
UPDATE hubspot.deals SET amount = 1500.50 WHERE hs_object_id = 512;
DELETE FROM hubspot.deals WHERE hs_object_id = 512;
SELECT * FROM outbox_rows() WHERE object_type = 'deals';

-- a rolled-back transaction enqueues nothing
TRUNCATE hubsync.outbox;
BEGIN;
INSERT INTO hubspot.deals (dealname) VALUES ('rolled back');
ROLLBACK;
SELECT count(*) FROM hubsync.outbox;

-- the origin tag of the session is recorded
BEGIN;
SET LOCAL hubsync.origin = 'billing';
INSERT INTO hubspot.invoices (hs_currency, hs_amount_billed) VALUES ('EUR', 20.00);
COMMIT;
SELECT * FROM outbox_rows();

-- the guard against accidental mass changes
TRUNCATE hubsync.outbox;
SET hubsync.max_changes_per_xact = 3;
INSERT INTO hubspot.products (name) SELECT 'p' || g FROM generate_series(1, 4) g;
SELECT count(*) FROM hubsync.outbox;
INSERT INTO hubspot.products (name) SELECT 'p' || g FROM generate_series(1, 3) g;
BEGIN;
SET LOCAL hubsync.max_changes_per_xact = 0;
UPDATE hubspot.products SET price = 9.99;
COMMIT;
RESET hubsync.max_changes_per_xact;
SELECT op, count(*) FROM hubsync.outbox GROUP BY op ORDER BY op;

-- a property owned by HubSpot cannot be changed by application SQL
TRUNCATE hubsync.outbox;
SELECT hubsync.set_owner('contacts', 'lifecyclestage', 'hubspot');
SELECT hubsync.set_owner('contacts', 'hs_analytics_source', 'hubspot');
UPDATE hubspot.contacts SET lifecyclestage = 'customer';
UPDATE hubspot.contacts SET properties = properties || '{"hs_analytics_source": "ads"}';
INSERT INTO hubspot.contacts (email, lifecyclestage) VALUES ('bob@example.com', 'lead');
UPDATE hubspot.contacts SET firstname = 'Annie';
SELECT * FROM outbox_rows();
SELECT hubsync.set_owner('contacts', 'lifecyclestage', 'latest');
UPDATE hubspot.contacts SET lifecyclestage = 'customer';
SELECT hubsync.set_owner('contacts', 'lifecyclestage', 'nobody');
SELECT hubsync.set_owner('widgets', 'lifecyclestage', 'hubspot');

-- DELETE enqueues an archive
TRUNCATE hubsync.outbox;
DELETE FROM hubspot.contacts;
SELECT * FROM outbox_rows();

-- an application role writes the mirror without any right on the outbox
TRUNCATE hubsync.outbox;
CREATE ROLE hubsync_regress_writer;
GRANT INSERT, UPDATE, SELECT ON hubspot.deals TO hubsync_regress_writer;
SET ROLE hubsync_regress_writer;
INSERT INTO hubspot.deals (dealname, amount) VALUES ('From the app', 100);
SELECT count(*) FROM hubsync.outbox;
SELECT hubsync.set_owner('deals', 'amount', 'postgres');
RESET ROLE;
SELECT * FROM outbox_rows();
DROP OWNED BY hubsync_regress_writer;
DROP ROLE hubsync_regress_writer;

TRUNCATE hubsync.outbox;
DELETE FROM hubspot.deals;
DELETE FROM hubspot.invoices;
DELETE FROM hubspot.products;
TRUNCATE hubsync.outbox;
TRUNCATE hubsync.field_owners;
DROP FUNCTION outbox_rows();
