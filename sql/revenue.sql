-- revenue: BI views against hand-computed fixtures, strict conversion of
-- values handed to hubsync.upsert, unconvertible values reported

-- fixtures (dates and amounts chosen so every sum below can be checked by hand)
INSERT INTO hubspot.deals (dealname, amount, dealstage, pipeline, closedate, deal_currency_code, hs_object_id, properties) VALUES
 ('A', 1000.10, 'closedwon',  'default', '2025-01-15 10:00Z', 'EUR', 101, '{}'),
 ('B', 2000.20, 'closedwon',  'default', '2025-01-31 23:30Z', 'EUR', 102, '{}'),  -- still January in UTC
 ('C',  500,    'closedwon',  'default', '2025-02-01 00:00Z', 'EUR', 103, '{}'),
 ('D',  700,    'closedlost', 'default', '2025-01-20 00:00Z', 'EUR', 104, '{}'),  -- lost: not counted
 ('E',  300,    'custom_won', 'partner', '2025-01-10 00:00Z', 'EUR', 105, '{}'),
 ('F', 99999,   'closedwon',  'default', '2025-01-12 00:00Z', 'EUR', 106, '{}'),  -- merged away below
 ('G',   12.5,  'closedwon',  'default', '2025-01-05 00:00Z', 'USD', 107, '{}');
INSERT INTO hubsync.merges (object_type, merged_id, survivor_id) VALUES ('deals', 106, 101);
-- a custom pipeline's won stage is known from its stage metadata
INSERT INTO hubspot.pipeline_stages (object_type, pipeline_id, stage_id, label, probability, closed) VALUES
 ('deals', 'partner', 'custom_won', 'Signed', 1, true);
-- January default EUR: 1000.10 + 2000.20 = 3000.30 (2 deals); February 500;
-- partner 300; USD 12.5
SELECT * FROM hubspot.revenue_by_month ORDER BY month, pipeline, currency;

INSERT INTO hubspot.subscriptions (hs_name, hs_status, hs_recurring_revenue, hs_recurring_billing_frequency,
                                   hs_start_date, hs_end_date, hs_currency_code) VALUES
 ('monthly', 'canceled', 100,  'monthly',   '2025-01-20', '2025-03-10', 'EUR'),  -- Jan, Feb, Mar: 100
 ('annual',  'expired',  1200, 'annually',  '2025-02-01', '2025-04-30', 'EUR'),  -- Feb..Apr: 100
 ('quarter', 'canceled', 300,  'quarterly', '2025-03-15', '2025-03-31', 'EUR'),  -- Mar: 100
 ('weekly',  'expired',  10,   'weekly',    '2025-01-01', '2025-01-31', 'USD'),  -- Jan: 10*52/12 = 43.33
 ('never',   'canceled', 500,  'monthly',   '2025-01-01', NULL,         'EUR'),  -- canceled, no end: never
 ('later',   'scheduled', 500, 'monthly',   '2025-01-01', '2025-12-31', 'EUR');  -- scheduled: never
-- EUR: Jan 100, Feb 200, Mar 300, Apr 100; USD Jan 43.33
SELECT * FROM hubspot.mrr ORDER BY month, currency;

INSERT INTO hubspot.invoices (hs_invoice_status, hs_balance_due, hs_due_date, hs_currency) VALUES
 ('open', 100.01, '2025-10-15', 'EUR'),   -- not yet due on 2025-09-30: 0-30
 ('open',  50,    '2025-08-31', 'EUR'),   -- 30 days: 0-30
 ('open',  20,    '2025-08-30', 'EUR'),   -- 31 days: 31-60
 ('open',  30,    '2025-07-02', 'EUR'),   -- 90 days: 61-90
 ('open',  40,    '2025-07-01', 'EUR'),   -- 91 days: 90+
 ('open',   0,    '2025-01-01', 'EUR'),   -- nothing due: not listed
 ('paid', 999,    '2025-01-01', 'EUR'),   -- paid: not listed
 ('open',   7.5,  NULL,         'USD');   -- no due date: 0-30
SELECT * FROM hubsync.invoice_aging('2025-09-30');
SELECT count(*) >= 0 AS view_works FROM hubspot.invoice_aging;

INSERT INTO hubspot.commerce_payments (hs_initial_amount, hs_initiated_date, hs_latest_status, hs_refunds_amount, hs_currency_code) VALUES
 (100,    '2025-05-03 12:00Z', 'succeeded',          NULL, 'EUR'),
 (250.50, '2025-05-31 23:59Z', 'partially_refunded', 50.25, 'EUR'),
 (80,     '2025-05-10 00:00Z', 'refunded',           80,   'EUR'),
 (60,     '2025-05-11 00:00Z', 'failed',             NULL, 'EUR'),   -- failed: not counted
 (40,     '2025-06-01 00:00Z', 'succeeded',          NULL, 'EUR');
-- May: gross 430.50, refunds 130.25, net 300.25; June 40
SELECT * FROM hubspot.payments_by_month ORDER BY month, currency;

-- strict conversion for hubsync.upsert: exact numbers, dates, epoch ms
SELECT hubsync._from_wire('123456789012345678901234567890.123456789', 'numeric') AS big,
       hubsync._from_wire('-0.000000001', 'numeric') AS tiny,
       hubsync._from_wire('', 'numeric') AS empty,
       hubsync._from_wire('1751284800000', 'date') AS date_ms,
       hubsync._from_wire('true', 'boolean') AS bool,
       hubsync._from_wire('a;b c;"d"', 'text[]') AS multi;
SET TIME ZONE 'UTC';
SELECT hubsync._from_wire('1751284800123', 'timestamptz') AS ts_ms,
       hubsync._from_wire('2025-06-30T14:00:00.5+02:00', 'timestamptz') AS ts_iso;
RESET TIME ZONE;
SELECT hubsync._from_wire('12,50', 'numeric');
SELECT hubsync._from_wire('2025-02-30', 'date');
SELECT hubsync._from_wire('maybe', 'boolean');
SELECT hubsync._from_wire('NaN', 'numeric');
-- an upsert with a bad value fails whole: nothing written
SELECT hubsync.upsert('invoices', 'hs_number', 'INV-9', '{"hs_amount_billed": "1.2.3", "hs_currency": "EUR"}');
SELECT count(*) FROM hubspot.invoices WHERE hs_number = 'INV-9';
-- a multi-select may come as a JSON array
SELECT hubsync.map_property('deals', 'deal_tags', 'text[]');
SELECT hubsync.upsert('deals', 'dealname', 'Tagged', '{"deal_tags": ["a", "b;c"]}') IS NOT NULL AS ok;
SELECT deal_tags FROM hubspot.deals WHERE dealname = 'Tagged';

DELETE FROM hubspot.deals;
DELETE FROM hubspot.subscriptions;
DELETE FROM hubspot.invoices;
DELETE FROM hubspot.commerce_payments;
DELETE FROM hubsync.merges;
DELETE FROM hubspot.pipeline_stages;
TRUNCATE hubsync.outbox;

-- an application role (not the owner) writes associations; they queue
CREATE ROLE revenue_app;
GRANT SELECT, INSERT, DELETE ON hubspot.associations TO revenue_app;
GRANT SELECT, INSERT ON hubspot.invoices, hubspot.commerce_payments TO revenue_app;
SET ROLE revenue_app;
INSERT INTO hubspot.invoices (hubsync_id, hs_currency) VALUES ('00000000-0000-0000-0000-00000000a001', 'EUR');
INSERT INTO hubspot.commerce_payments (hubsync_id, hs_initial_amount) VALUES ('00000000-0000-0000-0000-00000000a002', 1);
INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id, type_id)
VALUES ('commerce_payments', '00000000-0000-0000-0000-00000000a002', 'invoices', '00000000-0000-0000-0000-00000000a001', 542);
INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id) VALUES ('deals', 1, 'contacts', 2, 3);
RESET ROLE;
SELECT op, from_type, from_id, from_hubsync_id IS NOT NULL AS by_hubsync_id, to_type, to_id, type_id, origin, state
FROM hubsync.association_outbox ORDER BY id;
-- deleted before they were sent: nothing is left to send
SET ROLE revenue_app;
DELETE FROM hubspot.associations;
RESET ROLE;
SELECT count(*) FROM hubsync.association_outbox;
-- once sent (the queue entry gone), a DELETE queues the removal
INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id) VALUES ('deals', 1, 'contacts', 2, 3);
DELETE FROM hubsync.association_outbox;
DELETE FROM hubspot.associations;
SELECT op, from_id, to_id, type_id FROM hubsync.association_outbox;
DELETE FROM hubsync.association_outbox;
-- an association between unknown object types is refused
INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id) VALUES ('nope', 1, 'deals', 2, 3);
-- type ids from the cached labels endpoint
SELECT hubsync._assoc_types_store('commerce_payments', 'invoices',
	'[{"category": "HUBSPOT_DEFINED", "typeId": 542, "label": null}, {"category": "USER_DEFINED", "typeId": 5001, "label": "Settles"}]');
SELECT hubsync.association_type('commerce_payments', 'invoices') AS unlabeled,
       hubsync.association_type('commerce_payments', 'invoices', 'Settles') AS settles,
       hubsync.association_type('commerce_payments', 'invoices', 'nope') AS unknown;
INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, label) VALUES ('commerce_payments', 1, 'invoices', 2, 'Settles');
INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id) VALUES ('commerce_payments', 3, 'invoices', 4, 5001);
SELECT from_id, type_id, category, label FROM hubspot.associations ORDER BY from_id;
DELETE FROM hubspot.associations;
TRUNCATE hubsync.association_outbox, hubsync.association_types;
DELETE FROM hubspot.invoices;
DELETE FROM hubspot.commerce_payments;
TRUNCATE hubsync.outbox;
DROP OWNED BY revenue_app;
DROP ROLE revenue_app;
