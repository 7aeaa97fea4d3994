-- revenue: BI views against hand-computed fixtures, strict conversion of
-- values handed to hubsync.upsert, unconvertible values reported

-- fixtures (dates and amounts chosen so every sum below can be checked by hand)
INSERT INTO hubspot.deals (dealname, amount, dealstage, pipeline, closedate, deal_currency_code, hs_object_id, properties) VALUES
 ('A', 1000.10, 'closedwon',  'default', '2025-01-15 10:00Z', 'EUR', 101, '{}'),
 ('B', 2000.20, 'closedwon',  'default', '2025-01-31 23:30Z', 'EUR', 102, '{}'),  -- still January in UTC
 ('C',  500,    'closedwon',  'default', '2025-02-01 00:00Z', 'EUR', 103, '{}'),
 ('D',  700,    'closedlost', 'default', '2025-01-20 00:00Z', 'EUR', 104, '{}'),  -- lost: not counted
 ('E',  300,    'custom_won', 'partner', '2025-01-10 00:00Z', 'EUR', 105, '{"hs_is_closed_won": "true"}'),
 ('F', 99999,   'closedwon',  'default', '2025-01-12 00:00Z', 'EUR', 106, '{}'),  -- merged away below
 ('G',   12.5,  'closedwon',  'default', '2025-01-05 00:00Z', 'USD', 107, '{}');
INSERT INTO hubsync.merges (object_type, merged_id, survivor_id) VALUES ('deals', 106, 101);
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
TRUNCATE hubsync.outbox;
